"""Selector PRM scoring: a 3-way step head (negative / neutral / positive) on any causal backbone.

Input layout (as TRL's PRMTrainer builds it, and as Qwen2.5-Math-PRM reads it):

    [prefix] problem SEP step_1 SEP step_2 SEP ... step_n SEP

`prefix` is whatever the tokenizer puts before text (a BOS token for Llama/SmolLM2, nothing for
Qwen). The step head's logits are read at the last token of the SEP after each step; the SEP after
the problem only delimits it and is not read.

The separator choice. The default is the plain string "\\n\\n" (PRM800K's step delimiter, TRL's
default), which every vocabulary can already encode, so any backbone or trained PRM loads without an
embedding resize. A dedicated token (e.g. Qwen2.5-Math-PRM's "<extra_0>", or "<|step|>" with
`add_separator_token=True`, which adds it as a special token and resizes the embeddings; only useful
before training) gives a single unambiguous id. Either way positions are never found by searching the
text: each piece is tokenised on its own and the separator ids are inserted between pieces, so a step
that itself contains "\\n\\n" (or the literal special-token text, which is tokenised with
`split_special_tokens=True`) cannot shift or add label positions, and BPE cannot merge the separator
into a neighbouring step's tokens.

Truncation. A solution longer than `max_length` tokens keeps the prefix, the problem (cut to its head
only when it leaves no room for the first step, and never below half of `max_length`) and the
longest run of leading steps that fits whole; the steps after it get `None` instead of a probability
triple. A step is never cut in the middle, and later steps are never scored without the steps before
them, since a step's label depends on everything before it. The kept steps' values are exact (what
the untruncated solution gives them), but the solution is *unscorable*: `solution_score` returns None
for it, never a product over the steps that fit (see labeling.core.step_scores). Training (prm_training)
and scoring take the same `max_length`: the one a version was trained with (its config), by default
settings.STEPWISE_MAX_LENGTH.

Padding. Batches are padded on the right, whatever the tokenizer's `padding_side`: with a causal mask
and default position ids (0..n-1), right padding leaves every real token's logits exactly as in an
unpadded forward pass; left padding would shift the position ids.
"""
from itertools import islice

from labeling.core.step_scores import scorable_solution_score
from workers.ml.loading import ModelCache, cache_size

LABELS = ("negative", "neutral", "positive")
DEFAULT_SEPARATOR = "\n\n"

# Two step-head PRMs: an evaluation with promote_if_better scores the active selector and the new version,
# and rounds score with the active one, so the pair stays loaded while older versions are dropped.
_CACHE = ModelCache(cache_size(2))


class StepPRM:
    def __init__(self, model, tokenizer, *, step_separator=DEFAULT_SEPARATOR, device="cpu"):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.step_separator = step_separator
        self.sep_ids = self._encode_texts([step_separator], split_special=False)[0]
        if not self.sep_ids:
            raise ValueError(f"step separator {step_separator!r} encodes to no tokens")
        self.prefix_ids = self._special_prefix()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # With right padding and a causal mask no real token can see a pad, so a decoder needs no
        # padding mask; leaving it out keeps SDPA on its is_causal kernel instead of a materialised
        # (batch, heads, len, len) mask, which made padded batches slower than single ones on CPU.
        self.causal = any(getattr(m, "is_causal", False) for m in model.modules())

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path, gguf_file=None, *, step_separator=DEFAULT_SEPARATOR, add_separator_token=False):
        """Load model + tokenizer, cached per arguments (see _CACHE); eval mode, device from pick_device."""
        return _CACHE.get((str(path), gguf_file, step_separator, add_separator_token),
                          lambda: cls._load(path, gguf_file, step_separator, add_separator_token))

    @classmethod
    def _load(cls, path, gguf_file, step_separator, add_separator_token):
        from workers.ml.device import pick_device

        device, dtype = pick_device()
        model, tokenizer = load_token_classifier(path, gguf_file, dtype)
        if add_separator_token and step_separator not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [step_separator]})
            model.resize_token_embeddings(len(tokenizer))
        model.to(device).eval()
        return cls(model, tokenizer, step_separator=step_separator, device=device)

    # --- encoding --------------------------------------------------------------------------

    def _encode_texts(self, texts, split_special=True):
        if not texts:
            return []
        kwargs = {"split_special_tokens": True} if split_special else {}
        return self.tokenizer(list(texts), add_special_tokens=False, **kwargs)["input_ids"]

    def _special_prefix(self):
        # Whatever the tokenizer adds before text (BOS or nothing); trailing specials (EOS) are dropped.
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        for i in range(len(full) - len(plain) + 1):
            if full[i:i + len(plain)] == plain:
                return list(full[:i])
        return []

    def encode(self, problem, steps, max_length=1024):
        """Return (input_ids, label_positions); label_positions has one int, or None, per step."""
        pieces = self._encode_texts([problem, *steps])
        return self._assemble(pieces[0], pieces[1:], max_length)

    def _assemble(self, problem_ids, step_ids, max_length):
        sep = self.sep_ids
        fixed = len(self.prefix_ids) + len(sep)
        if max_length <= fixed:
            raise ValueError(f"max_length={max_length} leaves no room for any text")
        first_cost = len(step_ids[0]) + len(sep) if step_ids else 0
        avail = max_length - fixed
        if len(problem_ids) + first_cost > avail:
            # Cut the problem to its head so the first step still fits, but never below half the budget.
            problem_ids = problem_ids[:max(avail - first_cost, avail // 2)]
        ids = list(self.prefix_ids) + list(problem_ids) + list(sep)
        positions = []
        for piece in step_ids:
            if len(ids) + len(piece) + len(sep) > max_length:
                break
            ids.extend(piece)
            ids.extend(sep)
            positions.append(len(ids) - 1)
        positions.extend([None] * (len(step_ids) - len(positions)))
        return ids, positions

    # --- scoring ---------------------------------------------------------------------------

    def score(self, problems_and_steps, batch_size=16, max_length=1024):
        """Per solution, per step: (p_neg, p_neu, p_pos) as floats, or None for a truncated-away step."""
        return self._per_step(self._encode_batch(list(problems_and_steps), max_length), batch_size, self._forward,
                              lambda probs, row, pos: tuple(probs[row, pos].tolist()))

    @staticmethod
    def _per_step(encoded, batch_size, forward, read):
        """For (input_ids, marks) per solution, one mark per step (None for a step cut by truncation):
        `read(forward(batch of input_ids), row, mark)` per kept step, None per cut one."""
        import torch

        results = [[None] * len(marks) for _, marks in encoded]
        # Length-sorted so each batch pads only to its own longest; longest first so a batch that
        # would not fit in memory fails at once, not at the end.
        order = sorted((i for i, (_, marks) in enumerate(encoded) if any(m is not None for m in marks)),
                       key=lambda i: len(encoded[i][0]), reverse=True)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                output = forward([encoded[i][0] for i in batch])
                for row, i in enumerate(batch):
                    for k, mark in enumerate(encoded[i][1]):
                        if mark is not None:
                            results[i][k] = read(output, row, mark)
        return results

    def score_stream(self, iterable, chunk=2048, batch_size=16, max_length=1024):
        """Yield score() results one solution at a time, in input order, holding one chunk in memory."""
        it = iter(iterable)
        while True:
            block = list(islice(it, chunk))
            if not block:
                return
            yield from self.score(block, batch_size=batch_size, max_length=max_length)

    def _encode_batch(self, items, max_length):
        return [self._assemble(problem_ids, step_ids, max_length)
                for problem_ids, step_ids in self._encode_items(items)]

    def _encode_items(self, items):
        """(problem ids, [ids of each step]) per (problem, steps) item."""
        # One tokenizer call for every piece of the chunk: the fast tokenizer batches in Rust.
        flat, spans = [], []
        for problem, steps in items:
            spans.append((len(flat), len(steps)))
            flat.append(problem)
            flat.extend(steps)
        pieces = self._encode_texts(flat)
        return [(pieces[s], pieces[s + 1:s + 1 + n]) for s, n in spans]

    def _forward(self, sequences):
        import torch

        input_ids, attention = right_padded(sequences, self.pad_id)
        mask = None if self.causal else attention.to(self.device)
        logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask).logits
        return torch.softmax(logits.float(), dim=-1).cpu()


def right_padded(sequences, pad_id):
    """(input_ids, attention_mask) as long tensors, each sequence left-aligned and padded with pad_id."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention[row, :len(seq)] = 1
    return input_ids, attention


def load_token_classifier(path, gguf_file, dtype):
    """(model, tokenizer) with the 3-way step head: a PRM's own, or a new one on a causal LM's backbone."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)}, dtype=dtype, **extra)
    return model, tokenizer


def load(path, gguf_file=None, **kwargs):
    return StepPRM.load(path, gguf_file, **kwargs)


def solution_score(step_probs, how="product"):
    """Solution score of a solution's step triples; None when it is unscorable (a step is None: truncated).

    The aggregation itself (product of P(not negative), min or last) is labeling.core.step_scores'.
    """
    return scorable_solution_score(step_probs, how=how)
