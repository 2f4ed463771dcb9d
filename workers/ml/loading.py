"""Loading a model spec's weights, and keeping the few most recently used models of each kind.

A long-lived GPU worker evaluates one version after another; a cache that never forgets would keep
every model it ever loaded until the GPU runs out of memory. Each kind keeps a small LRU instead
(sizes beside each cache: `Generator.load`, `StepPRM.load`, `ImplicitPRM.load`). The environment
variable STEPWISE_MODEL_CACHE_SIZE, when set, is the number kept for every kind.
"""
import os
import sys
import threading
from collections import OrderedDict


def cache_size(default: int) -> int:
    raw = os.environ.get("STEPWISE_MODEL_CACHE_SIZE", "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"STEPWISE_MODEL_CACHE_SIZE must be a positive integer, got {raw!r}")
    return int(raw)


class ModelCache:
    """The `size` most recently used models, by key; loading one more drops the least recently used."""

    def __init__(self, size: int):
        self.size = size
        self._models = OrderedDict()
        self._lock = threading.Lock()  # guards the dict only: a load runs unlocked, so a slow one blocks no hit

    def get(self, key, load):
        """The model cached under `key`, else `load()`'s result, cached."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = load()
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            evicted = [self._models.popitem(last=False) for _ in range(len(self._models) - self.size)]
        if evicted:
            del evicted
            _release_gpu_memory()
        return model

    def clear(self):
        with self._lock:
            self._models.clear()
        _release_gpu_memory()


def _release_gpu_memory():
    # A dropped model's CUDA blocks stay reserved by torch's allocator until emptied; without CUDA
    # (or before torch was ever imported) there is nothing to give back.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        import gc

        gc.collect()
        torch.cuda.empty_cache()


def load_causal_lm(spec, dtype, device):
    from transformers import AutoModelForCausalLM

    from workers.ml.sources import resolve

    path, gguf_file = resolve(spec)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra).to(device)


def load_tokenizer(spec):
    from transformers import AutoTokenizer

    from workers.ml.sources import resolve

    path, gguf_file = resolve(spec)
    return AutoTokenizer.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
