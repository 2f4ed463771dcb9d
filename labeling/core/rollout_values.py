"""Step values from rollouts: Math-Shepherd Q, PAV advantages, and the OmegaPRM binary search for the first error.

A rollout estimate is made for one *prefix* of a solution: the problem and its steps 1..k (k = 0: the bare
problem), continued n times by a prover policy, each continuation graded on its final answer. From the
count of correct continuations:

- Math-Shepherd (Wang et al. 2024): Q_k soft = n_correct / n, Q_k hard = (n_correct > 0); a binomial
  interval (Wilson, 95 %) says how far the soft value may be from the prover's true success probability.
- PAV, "Rewarding Progress" (Setlur et al. 2024): the advantage of step k is A_k = Q_k - Q_{k-1}, Q_0 from
  the bare problem, so the advantages of steps 1..K sum to Q_K - Q_0. A Best-of-K prover succeeds when any
  of K attempts does: Q_BoK = 1 - (1 - Q)^K (applied to Q before the difference). The effective reward
  Q_k + alpha * A_k is a selector score option.
- First error: the first step whose prefix the prover can no longer complete correctly, i.e. the smallest
  k >= 1 whose estimate has no correct continuation (Math-Shepherd's hard label False). When the bare
  problem itself was estimated with no correct continuation (the prover cannot solve the problem at all),
  no step is to blame and the first error is None; it is None too when no estimated prefix failed.
- Binary search (OmegaPRM, Luo et al. 2024): roll out the bare problem and the whole solution; if the
  problem is solvable and the whole solution is not, bisect between the last prefix known to reach the
  answer and the first known not to: about log2(K) prefixes instead of K + 1. The planner is stateless:
  it reads what was already estimated (by this search, a resumed one, or full Monte Carlo) and says
  which prefixes to roll out next, so nothing is rolled out twice.

Estimates are read from anything with `step_index`, `n` and `n_correct`, as attributes (a RolloutEstimate
row) or keys (a dict); `StepEstimate` is the plain form. No Django, no torch.
"""
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, NamedTuple

from labeling.core.intervals import Z95, wilson_interval

METHODS = ("mc", "binary")


class PrefixRequest(NamedTuple):
    """Roll out problem + steps[:k] (what a sampler is asked); `key` names the solution, seeds its draws and
    comes back with the result; `ground_truth` grades the continuations' final answers."""
    key: object
    problem: str
    steps: tuple
    k: int
    ground_truth: "str | None"


@dataclass(frozen=True)
class StepEstimate:
    """n continuations of prefix 1..step_index, n_correct of them graded correct."""
    step_index: int
    n: int
    n_correct: int

    def __post_init__(self):
        if self.step_index < 0 or self.n < 1 or not 0 <= self.n_correct <= self.n:
            raise ValueError(f"bad estimate: step {self.step_index}, {self.n_correct} correct of {self.n}")


def as_estimate(item) -> StepEstimate:
    """A StepEstimate from a row, a dict or a StepEstimate."""
    if isinstance(item, StepEstimate):
        return item
    if isinstance(item, Mapping):
        return StepEstimate(int(item["step_index"]), int(item["n"]), int(item["n_correct"]))
    return StepEstimate(int(item.step_index), int(item.n), int(item.n_correct))


def by_step(estimates: Iterable) -> dict[int, StepEstimate]:
    """Estimates keyed by prefix length; two estimates of one prefix are an error (mixing provers or methods)."""
    out = {}
    for item in estimates:
        e = as_estimate(item)
        if e.step_index in out:
            raise ValueError(f"two estimates of prefix {e.step_index}: keep one prover and method per call")
        out[e.step_index] = e
    return out


# --- one prefix ------------------------------------------------------------------------------------

def estimate_fields(*, n: int, n_correct: int, z: float = Z95) -> dict:
    """What a RolloutEstimate row stores beside its counts: q_soft, q_hard, ci_low, ci_high."""
    if n < 1 or not 0 <= n_correct <= n:
        raise ValueError(f"n_correct must be within 0..n and n at least 1, got {n_correct} of {n}")
    low, high = wilson_interval(n_correct, n, z)
    return {"q_soft": n_correct / n, "q_hard": n_correct > 0, "ci_low": low, "ci_high": high}


def best_of_k(q: float, k: int) -> float:
    """Success probability of a Best-of-K prover whose single attempt succeeds with probability q."""
    if k < 1:
        raise ValueError(f"K must be at least 1, got {k}")
    return 1.0 - (1.0 - q) ** k


# --- per solution ----------------------------------------------------------------------------------

def step_values(estimates: Iterable, alpha: float = 0.0, bok_k: int = 1, num_steps: int | None = None) -> list[dict]:
    """Per step k = 1..K: {"step_index", "q", "q_hard", "a", "effective", "n", "n_correct", "ci_low", "ci_high"}.

    q is the soft value under the prover (Best-of-`bok_k` when bok_k > 1, its interval mapped the same way);
    a = q_k - q_{k-1} with q_0 from the bare problem; effective = q + alpha * a. Values of a prefix that was
    not estimated (binary search, a stopped job) are None, and so are the advantages and effective rewards
    that need them (with alpha == 0 the effective reward is q itself). K is `num_steps`, else the largest
    estimated prefix. Where every step and the bare problem are estimated, the advantages sum to q_K - q_0.
    """
    known = by_step(estimates)
    last = num_steps if num_steps is not None else max([k for k in known if k > 0], default=0)
    q = {k: best_of_k(e.n_correct / e.n, bok_k) for k, e in known.items()}
    out = []
    for k in range(1, last + 1):
        e = known.get(k)
        a = q[k] - q[k - 1] if k in q and k - 1 in q else None
        if k not in q:
            effective = None
        elif alpha == 0:
            effective = q[k]
        else:
            effective = None if a is None else q[k] + alpha * a
        row = {"step_index": k, "q": q.get(k), "q_hard": None if e is None else e.n_correct > 0, "a": a,
               "effective": effective, "n": None if e is None else e.n,
               "n_correct": None if e is None else e.n_correct, "ci_low": None, "ci_high": None}
        if e is not None:
            low, high = wilson_interval(e.n_correct, e.n)
            row["ci_low"], row["ci_high"] = best_of_k(low, bok_k), best_of_k(high, bok_k)
        out.append(row)
    return out


def first_error_from_estimates(estimates: Iterable) -> int | None:
    """The estimated first error (1-based step), or None: see the module's rule.

    The smallest k >= 1 whose prefix had no correct continuation; None when there is none, or when the bare
    problem (k = 0) was estimated with no correct continuation (the prover cannot solve the problem).
    """
    known = by_step(estimates)
    bare = known.get(0)
    if bare is not None and bare.n_correct == 0:
        return None
    failed = [k for k, e in known.items() if k >= 1 and e.n_correct == 0]
    return min(failed) if failed else None


# --- which prefixes to roll out --------------------------------------------------------------------

def prefixes_to_estimate(num_steps: int, estimates: Iterable, method: str) -> list[int]:
    """The prefix lengths to roll out next for one solution of `num_steps` steps; [] when it is finished.

    "mc": every prefix 0..K not estimated yet, at once. "binary": see binary_search_plan.
    """
    if method == "mc":
        known = by_step(estimates)
        return [k for k in range(num_steps + 1) if k not in known]
    if method == "binary":
        return binary_search_plan(num_steps, estimates)
    raise ValueError(f"unknown rollout method {method!r}; expected one of {METHODS}")


def binary_search_plan(num_steps: int, estimates: Iterable) -> list[int]:
    """OmegaPRM's bisection, stateless: from what is already estimated, the prefixes to roll out next.

    First the bare problem and the whole solution (0 and K); then nothing when the problem is unsolvable
    for the prover (Q_0 has no correct continuation) or the whole solution still reaches the answer;
    otherwise the middle prefix between lo (the largest estimated prefix below hi with a correct
    continuation, 0 at least) and hi (the smallest estimated prefix k >= 1 with none), until they are
    adjacent: hi is then the first error (first_error_from_estimates reads it). An estimate made by full
    Monte Carlo counts like one made by the search.
    """
    if num_steps < 1:
        raise ValueError(f"a solution has at least one step, got {num_steps}")
    known = by_step(estimates)
    missing = [k for k in (0, num_steps) if k not in known]
    if missing:
        return missing
    if known[0].n_correct == 0 or known[num_steps].n_correct > 0:
        return []
    hi = min(k for k, e in known.items() if k >= 1 and e.n_correct == 0)
    lo = max([k for k, e in known.items() if k < hi and e.n_correct > 0], default=0)
    return [] if hi - lo <= 1 else [(lo + hi) // 2]


def run_search(num_steps: int, method: str, estimate: Callable[[list[int]], Iterable],
               known: Iterable = ()) -> list[StepEstimate]:
    """Roll out one solution to the end: `estimate(prefix_lengths)` returns their new estimates; `known`
    are estimates made before (reused, never repeated). Returns every estimate, old and new, by step."""
    have = by_step(known)
    while True:
        todo = prefixes_to_estimate(num_steps, have.values(), method)
        if not todo:
            return [have[k] for k in sorted(have)]
        for e in map(as_estimate, estimate(todo)):
            have[e.step_index] = e
        if any(k not in have for k in todo):
            raise ValueError(f"the estimator did not return every prefix asked for: {todo}")
