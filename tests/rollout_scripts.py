"""A scripted prover for rollout tests: each prefix's success probability is known in closed form.

`ScriptedSampler(probability)` answers `rollouts(requests, n, seed=...)` like workers/ml/rollouts.RolloutSampler:
continuation j of prefix k of solution `key` succeeds when a uniform draw seeded from (seed, key, k, j) falls
below probability(key, k), so the same prefix gives the same outcomes in every run, method and batch.
`first_error_curve` is the closed form used by most tests: before the first error the prover succeeds
with a probability that drifts from p0 by `drift` per step; from the first error on it cannot succeed.
"""
import hashlib
import random
from dataclasses import dataclass


@dataclass
class Result:
    key: object
    k: int
    n: int
    n_correct: int
    tokens: int


def draw(seed, key, k, j) -> float:
    digest = hashlib.blake2b(f"{seed}:{key}:{k}:{j}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big")).random()


def first_error_curve(first_error, p0=0.8, drift=-0.01, floor=0.6, last=None):
    """Q(k) for k = 0..K: max(floor, p0 + drift * k) before `first_error` (1-based; None: no error), 0 from it
    on; 1 at k = `last` (the whole solution, its correct answer written) when there is no error."""
    def q(k):
        if first_error is not None and k >= first_error:
            return 0.0
        if k == last:
            return 1.0
        return min(1.0, max(floor, p0 + drift * k))
    return q


class ScriptedSampler:
    TOKENS_PER_ROLLOUT = 10

    def __init__(self, probability):
        self.probability = probability  # (key, k) -> success probability
        self.calls = []

    def rollouts(self, requests, n, *, seed=0, **_):
        self.calls.append([(r.key, r.k) for r in requests])
        out = []
        for r in requests:
            p = self.probability(r.key, r.k)
            correct = sum(draw(seed, r.key, r.k, j) < p for j in range(n))
            out.append(Result(r.key, r.k, n, correct, self.TOKENS_PER_ROLLOUT * n))
        return out
