"""Sampling step-by-step solutions from a causal LM, in PRM800K's shape (steps, then "# Answer").

Reproducibility. Each sample has its own random stream, seeded from (seed, problem index, sample
index), so a sample's text does not depend on `batch_size` or on what else shares its batch. HF
`generate` draws every row of a batch from one global generator, so the draw is done here instead: a
logits processor applies temperature and top-p, draws one token per row from that row's
`torch.Generator` (on the CPU, so the stream is the same on every device) and leaves only that token
finite; `generate` then runs in greedy mode and its argmax picks it. What stays outside our control
is arithmetic: a batch pads its prompts to a common length, and padded and unpadded forward passes
agree only to rounding (more loosely in bf16 on a GPU), so a draw that falls within rounding of a
token boundary can, rarely, pick the neighbouring token. Across devices or dtypes texts differ.

temperature == 0 is plain greedy decoding; the seed then plays no part.
"""
import hashlib
import time
from dataclasses import dataclass, field

from labeling.core import prompts
from labeling.core.prompts import generator_message, plain_prompt
from labeling.core.solution_text import DEFAULT_DELIMITER, extract_answer, split_into_steps
from workers.ml.loading import ModelCache, cache_size, load_causal_lm, load_tokenizer

INSTRUCTION = prompts.INSTRUCTION  # the template lives in labeling.core.prompts, shared with the RPO pairs

# One generator: a round samples with one model, and a worker that moves on to another spec need not
# keep the last one's weights.
_CACHE = ModelCache(cache_size(1))


@dataclass
class Sample:
    text: str
    steps: list
    final_answer: "str | None"
    finish_reason: str  # "stop": an end token was generated; "length": cut at max_new_tokens
    tokens: int  # generated tokens, the end token included
    sampling: dict = field(default_factory=dict)


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def build_prompt(tokenizer, problem: str) -> str:
    """The prompt text: the tokenizer's chat template around one user message, else plain text
    (the template: labeling.core.prompts; RPO pairs train on the same text, workers.ml.rpo_training)."""
    return wrap_message(tokenizer, generator_message(problem))


def wrap_message(tokenizer, message: str) -> str:
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                             add_generation_prompt=True)
    return plain_prompt(message)


def row_seed(seed: int, problem_index: int, sample_index: int) -> int:
    """A stable 63-bit seed per sample (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(f"{seed}:{problem_index}:{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def left_padded(prompts, pad_id):
    """(input ids, attention mask) of token-id lists padded on the left: every row's next token is at the end."""
    import torch

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids):] = 1
    return input_ids, attention


class Generator:
    def __init__(self, model, tokenizer, *, spec=None, device="cpu"):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.device = device
        if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.stop_ids = self._stop_ids()
        self.chat = has_chat_template(tokenizer)
        self.last_stats = {"tokens": 0, "seconds": 0.0}

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, spec):
        """Load model + tokenizer for a model spec, cached (see _CACHE); eval mode, device from pick_device."""
        return _CACHE.get(str(spec), lambda: cls._load(str(spec)))

    @classmethod
    def _load(cls, spec):
        from workers.ml.device import pick_device

        device, dtype = pick_device()
        model = load_causal_lm(spec, dtype, device).eval()
        return cls(model, load_tokenizer(spec), spec=spec, device=device)

    def _stop_ids(self):
        # A GGUF tokenizer can name a different end token than the model's generation config
        # (SmolLM2: <|im_start|> vs <|im_end|>); either one ends a turn.
        ids = set()
        config = getattr(self.model, "generation_config", None)
        for value in (self.tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
            if isinstance(value, int):
                ids.add(value)
            elif value is not None:
                ids.update(value)
        return sorted(ids)

    # --- sampling --------------------------------------------------------------------------

    def prompt(self, problem: str) -> str:
        return build_prompt(self.tokenizer, problem)

    def sample(self, problems, n, *, temperature=0.7, top_p=0.95, max_new_tokens=512, batch_size=8,
               seed=0, step_delimiter=DEFAULT_DELIMITER):
        """n samples per problem, as results[problem][sample]; throughput goes to self.last_stats."""
        if n < 1 or batch_size < 1 or max_new_tokens < 1:
            raise ValueError("n, batch_size and max_new_tokens must be at least 1")
        if temperature < 0 or not 0 < top_p <= 1:
            raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
        if not step_delimiter:
            raise ValueError("step delimiter must not be empty")
        problems = list(problems)
        prompts = self._encode_prompts(problems)
        jobs = [(i, j) for i in range(len(problems)) for j in range(n)]
        settings = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
                    "seed": seed, "step_delimiter": step_delimiter, "model": self.spec,
                    "chat_template": self.chat}
        results = [[None] * n for _ in problems]
        total, start = 0, time.perf_counter()
        for first in range(0, len(jobs), batch_size):
            batch = jobs[first:first + batch_size]
            seeds = [row_seed(seed, i, j) for i, j in batch]
            generated = self._generate([prompts[i] for i, _ in batch], seeds, temperature, top_p, max_new_tokens)
            for (i, j), ids in zip(batch, generated):
                sample = self._to_sample(ids, step_delimiter, {**settings, "sample_index": j})
                total += sample.tokens
                results[i][j] = sample
        self.last_stats = {"tokens": total, "seconds": time.perf_counter() - start}
        return results

    def _encode_prompts(self, problems):
        texts = [self.prompt(p) for p in problems]
        # A chat template writes its own BOS; a plain prompt gets the tokenizer's.
        return self.tokenizer(texts, add_special_tokens=not self.chat)["input_ids"] if texts else []

    def _generate(self, prompts, seeds, temperature, top_p, max_new_tokens):
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        input_ids, attention = left_padded(prompts, self.pad_id)
        width = input_ids.shape[1]
        # Greedy in generate's eyes; sampling, when asked for, happens in _RowSampler.
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  pad_token_id=self.pad_id, eos_token_id=self.stop_ids or None)
        processors = LogitsProcessorList()
        if temperature > 0:
            processors.append(_RowSampler(seeds, temperature, top_p))
        with torch.inference_mode():
            output = self.model.generate(input_ids=input_ids.to(self.device),
                                         attention_mask=attention.to(self.device),
                                         generation_config=config, logits_processor=processors,
                                         use_model_defaults=False)
        return output[:, width:].cpu().tolist()

    def _to_sample(self, ids, delimiter, sampling):
        stops = set(self.stop_ids)
        end = next((k for k, token in enumerate(ids) if token in stops), None)
        # Without an end token the row ran to max_new_tokens, so no padding follows it.
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Sample(text=text, steps=split_into_steps(text, delimiter), final_answer=extract_answer(text),
                      finish_reason="length" if end is None else "stop",
                      tokens=len(ids) if end is None else end + 1, sampling=sampling)


class _RowSampler:
    """Temperature + top-p, then one draw per row from that row's own generator.

    Returns scores that are -inf everywhere but the drawn token, for generate's greedy argmax.
    """

    def __init__(self, seeds, temperature, top_p):
        import torch

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest head whose mass reaches top_p (the most likely token always stays).
        keep = (sorted_probs.cumsum(-1) - sorted_probs) < self.top_p
        cdf = (sorted_probs * keep).cumsum(-1)
        draws = torch.stack([torch.rand((), generator=g) for g in self.generators]).to(scores.device)
        picks = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None]).clamp_(max=cdf.shape[-1] - 1)
        chosen = order.gather(-1, picks)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, chosen, 0.0)
