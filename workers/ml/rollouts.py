"""Rollouts from a step prefix: n continuations of problem + steps 1..k by a prover, each graded on its answer.

The prover is any generator spec (workers/ml/generator.py loads it). A prefix's prompt is the generator's
prompt for the problem followed by steps 1..k, each followed by the step delimiter, so a continuation
starts where step k+1 would. Prefixes are batched; each is encoded ONCE: one forward pass over the
left-padded batch of prefixes (all but its last token) fills a KV cache, which is repeated n times along
the batch and handed to `generate` with the full ids, so generation starts at the prefix's last token for
its n rows. `share_prefix=False` re-encodes every prefix for every row instead (the bench's baseline).

Reproducibility as in the generator: each continuation draws from its own torch.Generator seeded from
(seed, the request's key, k, sample index), so a continuation does not depend on the batch it ran in nor
on whether the prefix cache was shared; padded and cached forward passes agree to rounding only, so a
draw within rounding of a token boundary can, rarely, differ.

A prefix that already ends in a final answer (the whole solution, "# Answer" in its last step) is not
continued: all n rollouts are that answer, graded once, 0 tokens.

Grading is the fixed mode of labeling/core/grading.py on the final answer of prefix + continuation
(core/solution_text.extract_answer: after the last "# Answer" line, else the last \\boxed{}).
"""
import time
from dataclasses import dataclass, field

from labeling.core.grading import grade_answer
from labeling.core.rollout_values import PrefixRequest
from labeling.core.solution_text import DEFAULT_DELIMITER, extract_answer
from workers.ml.generator import Generator, _RowSampler, left_padded, row_seed


@dataclass
class PrefixRollouts:
    key: object
    k: int
    n: int
    n_correct: int
    tokens: int                 # generated tokens, end tokens included
    answers: list = field(default_factory=list)
    texts: list = field(default_factory=list)  # the continuations ("" where nothing was continued)
    prefix_tokens: int = 0      # prompt tokens encoded for this prefix (once shared, n times re-encoded)


def prefix_text(steps, k: int, delimiter: str = DEFAULT_DELIMITER) -> str:
    """Steps 1..k as the assistant wrote them so far: each followed by the delimiter ("" for k = 0)."""
    return "".join(f"{step}{delimiter}" for step in list(steps)[:k])


def graded(answer, ground_truth) -> bool:
    return answer is not None and ground_truth is not None and grade_answer(answer, ground_truth, mode="fixed")


__all__ = ["PrefixRequest", "PrefixRollouts", "RolloutSampler", "prefix_text"]


class RolloutSampler:
    """Continuations of step prefixes by one prover; see the module docstring."""

    def __init__(self, generator: Generator):
        self.generator = generator
        self.last_stats = {"tokens": 0, "prefix_tokens": 0, "rollouts": 0, "seconds": 0.0}

    @classmethod
    def load(cls, spec):
        return cls(Generator.load(spec))

    def rollouts(self, requests, n, *, temperature=0.7, top_p=0.95, max_new_tokens=256, seed=0,
                 batch_prefixes=4, share_prefix=True, step_delimiter=DEFAULT_DELIMITER) -> list[PrefixRollouts]:
        """n graded continuations of each request, in the requests' order; totals go to self.last_stats."""
        if n < 1 or batch_prefixes < 1 or max_new_tokens < 1:
            raise ValueError("n, batch_prefixes and max_new_tokens must be at least 1")
        if temperature <= 0:
            raise ValueError("rollouts sample: temperature must be > 0 (greedy continuations are all alike)")
        requests = list(requests)
        start = time.perf_counter()
        results: list = [None] * len(requests)
        open_ = []
        for i, r in enumerate(requests):
            text = prefix_text(r.steps, r.k, step_delimiter)
            if r.k == len(r.steps) and extract_answer(text) is not None:  # nothing left to continue
                answer = extract_answer(text)
                ok = graded(answer, r.ground_truth)
                results[i] = PrefixRollouts(r.key, r.k, n, n if ok else 0, 0, [answer] * n, [""] * n)
            else:
                open_.append((i, self._encode(r.problem, text)))
        for first in range(0, len(open_), batch_prefixes):
            batch = open_[first:first + batch_prefixes]
            seeds = [row_seed(seed, f"{requests[i].key}:{requests[i].k}", j) for i, _ in batch for j in range(n)]
            generated = self._generate([ids for _, ids in batch], n, seeds, temperature, top_p, max_new_tokens,
                                       share_prefix)
            for b, (i, ids) in enumerate(batch):
                r = requests[i]
                head = prefix_text(r.steps, r.k, step_delimiter)
                rows = generated[b * n:(b + 1) * n]
                texts, tokens = zip(*(self._decode(row) for row in rows))
                answers = [extract_answer(head + t) for t in texts]
                results[i] = PrefixRollouts(r.key, r.k, n, sum(graded(a, r.ground_truth) for a in answers),
                                            sum(tokens), answers, list(texts), len(ids) * (1 if share_prefix else n))
        self.last_stats = {"tokens": sum(x.tokens for x in results),
                           "prefix_tokens": sum(x.prefix_tokens for x in results),
                           "rollouts": n * len(results), "seconds": time.perf_counter() - start}
        return results

    # --- internals ---------------------------------------------------------------------------

    def _encode(self, problem, head):
        g = self.generator
        return g.tokenizer(g.prompt(problem) + head, add_special_tokens=not g.chat)["input_ids"]

    def _decode(self, ids):
        stops = set(self.generator.stop_ids)
        end = next((k for k, token in enumerate(ids) if token in stops), None)
        kept = ids if end is None else ids[:end]
        return (self.generator.tokenizer.decode(kept, skip_special_tokens=True),
                len(ids) if end is None else end + 1)

    def _generate(self, prompts, n, seeds, temperature, top_p, max_new_tokens, share_prefix):
        """Generated ids per row, rows ordered prefix by prefix, n rows each."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        g = self.generator
        input_ids, attention = left_padded(prompts, g.pad_id)
        width = input_ids.shape[1]
        input_ids, attention = input_ids.to(g.device), attention.to(g.device)
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  pad_token_id=g.pad_id, eos_token_id=g.stop_ids or None)
        processors = LogitsProcessorList([_RowSampler(seeds, temperature, top_p)])
        with torch.inference_mode():
            extra = {}
            if share_prefix and width > 1:
                extra["past_key_values"] = self._prefix_cache(input_ids, attention, n)
            output = g.model.generate(input_ids=input_ids.repeat_interleave(n, dim=0),
                                      attention_mask=attention.repeat_interleave(n, dim=0),
                                      generation_config=config, logits_processor=processors,
                                      use_model_defaults=False, **extra)
        return output[:, width:].cpu().tolist()

    def _prefix_cache(self, input_ids, attention, n):
        """One forward pass over every prefix but its last token, its KV cache repeated n times per prefix."""
        from transformers import DynamicCache

        # The positions generate gives a left-padded row (attention cumsum), so the cache matches its own.
        positions = (attention.long().cumsum(-1) - 1).clamp_(min=0)
        cache = DynamicCache()
        self.generator.model(input_ids=input_ids[:, :-1], attention_mask=attention[:, :-1],
                             position_ids=positions[:, :-1], past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(n)
        return cache
