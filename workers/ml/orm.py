"""The outcome reward model (ORM) baseline: one score per solution, P(its final answer is correct).

A value head (a one-output token-classification head) on any causal backbone, read at one place: the
separator after the last step, in exactly the layout the step-head PRM uses (`workers.ml.prm.StepPRM`:
`[prefix] problem SEP step_1 SEP ... step_n SEP`, same tokenisation, same truncation). So the ORM and the
PRM see the same text and differ only in supervision: the ORM learns from the final-answer grade of
the whole solution (binary cross-entropy on the last step's logit), the PRM from step labels. A
solution whose last step does not fit `max_length` is unscorable (None), as it is for a PRM.

`score` returns per solution a one-element list `[p]` (or `[None]`), so the registry, `scores_write` and
evaluation treat an ORM like any scorer: its solution score is that value (`solution_score`).

Training writes its folder whole or not at all (the same temp-folder rename as prm_training).
"""
from pathlib import Path

from workers.ml.loading import ModelCache, cache_size
from workers.ml.prm import DEFAULT_SEPARATOR, StepPRM, right_padded

_CACHE = ModelCache(cache_size(1))


class OutcomeRM(StepPRM):
    """An ORM: the PRM's layout and loader, one logit read at the last step's separator."""

    @classmethod
    def load(cls, path, gguf_file=None, *, step_separator=DEFAULT_SEPARATOR, add_separator_token=False):
        return _CACHE.get((str(path), gguf_file, step_separator),
                          lambda: cls._load(path, gguf_file, step_separator, False))

    @classmethod
    def _load(cls, path, gguf_file, step_separator, add_separator_token):
        from workers.ml.device import pick_device

        device, dtype = pick_device()
        model, tokenizer = load_value_head(path, gguf_file, dtype)
        model.to(device).eval()
        return cls(model, tokenizer, step_separator=step_separator, device=device)

    def encode_outcomes(self, items, max_length):
        """(input_ids, [position of the last step's separator, or None when it was cut]) per item."""
        return [(ids, [positions[-1] if positions else None]) for ids, positions in self._encode_batch(items, max_length)]

    def score(self, problems_and_steps, batch_size=16, max_length=1024):
        """Per solution: [P(correct)] as a float, or [None] when its last step does not fit."""
        return self._per_step(self.encode_outcomes(list(problems_and_steps), max_length), batch_size,
                              self._forward_value, lambda probs, row, pos: float(probs[row, pos]))

    def _forward_value(self, sequences):
        import torch

        input_ids, attention = right_padded(sequences, self.pad_id)
        mask = None if self.causal else attention.to(self.device)
        logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask).logits
        return torch.sigmoid(logits[..., 0].float()).cpu()


def solution_score(values, how="last"):
    """The ORM's solution score: its one value, None when unscorable."""
    return values[-1] if values and values[-1] is not None else None


def load_value_head(path, gguf_file, dtype):
    """(model, tokenizer) with a one-output head: an ORM's own, or a new one on a causal LM's backbone."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=1, id2label={0: "correct"},
                                                            label2id={"correct": 0}, dtype=dtype, **extra)
    return model, tokenizer


# --- training ---------------------------------------------------------------------------------------

def train_orm(*, base_spec, items, out_dir, learning_rate=2e-5, epochs=1, batch_size=4, max_length=512, seed=0,
              step_separator=DEFAULT_SEPARATOR, progress=None, stop=None) -> dict:
    """Train the value head (plus backbone) on `items` = (problem, steps, is_correct) and save to `out_dir`.

    progress(step, total_steps, loss) after each optimizer step; stop() before each (truthy: TrainingStopped).
    Returns the run's figures (loss curve, tokens per second, counts).
    """
    import torch

    from workers.ml.device import pick_device
    from workers.ml.prm_training import _check_hyperparameters, _save, optimize

    _check_hyperparameters(learning_rate, epochs, batch_size, max_length, 1)
    items = _check_items(items)
    out = Path(out_dir)
    if out.exists():
        raise ValueError(f"out_dir {out} already exists")
    device, compute_dtype = pick_device()
    torch.manual_seed(seed)
    model, tokenizer = _load(base_spec)
    model.to(device)
    orm = OutcomeRM(model, tokenizer, step_separator=step_separator, device=device)
    encoded = orm.encode_outcomes([(p, s) for p, s, _ in items], max_length)
    examples = [(ids, [(marks[0], float(bool(correct)))]) for (ids, marks), (_, _, correct) in zip(encoded, items)
                if marks[0] is not None]
    if not examples:
        raise ValueError(f"items: no solution fits max_length={max_length}")
    curve, step_tokens, step, seconds = optimize(
        model, examples, lambda batch: _batch_loss(model, batch, orm.pad_id, device, causal=orm.causal),
        device=device, learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, seed=seed,
        progress=progress, stop=stop)
    model.config.step_separator = step_separator
    _save(model, tokenizer, out)
    positives = sum(int(label) for _, ((_, label),) in examples)
    return {"loss_curve": curve, "steps": step, "items": len(examples), "correct": positives,
            "incorrect": len(examples) - positives, "truncated": len(items) - len(examples),
            "tokens": sum(step_tokens), "seconds": seconds,
            "tokens_per_second": sum(step_tokens) / seconds if seconds > 0 else 0.0,
            "parameters": sum(p.numel() for p in model.parameters()), "device": device,
            "dtype": str(compute_dtype).removeprefix("torch."), "base_spec": str(base_spec), "out_dir": str(out),
            "learning_rate": learning_rate, "epochs": epochs, "batch_size": batch_size, "max_length": max_length,
            "seed": seed, "step_separator": step_separator}


def _batch_loss(model, batch, pad_id, device, *, causal=True):
    """Binary cross-entropy of the value logit at each solution's last separator, summed over the batch."""
    import torch

    input_ids, attention = right_padded([ids for ids, _ in batch], pad_id)
    mask = None if causal else attention.to(device)
    logits = model(input_ids=input_ids.to(device), attention_mask=mask).logits[..., 0]
    rows = torch.arange(len(batch), device=device)
    cols = torch.tensor([targets[0][0] for _, targets in batch], device=device)
    labels = torch.tensor([targets[0][1] for _, targets in batch], device=device)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[rows, cols].float(), labels,
                                                                reduction="sum")


def _check_items(items):
    items = list(items)
    if not items:
        raise ValueError("items: no graded solutions to train on")
    for n, item in enumerate(items):
        try:
            problem, steps, correct = item
        except (TypeError, ValueError):
            raise ValueError(f"items[{n}]: expected (problem, steps, is_correct)") from None
        if not isinstance(steps, (list, tuple)) or not steps:
            raise ValueError(f"items[{n}]: steps must be a non-empty list")
        if not isinstance(correct, bool):
            raise ValueError(f"items[{n}]: is_correct must be True or False, got {correct!r}")
    return items


def _load(base_spec):
    import torch

    from workers.ml.sources import resolve

    path, gguf_file = resolve(base_spec)
    return load_value_head(path, gguf_file, torch.float32)
