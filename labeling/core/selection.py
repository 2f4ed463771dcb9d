"""The selection rule of an active-learning round, as pure functions (no database, no ML imports).

A round scores every candidate solution of a problem with the active selector PRM and queues K of
them, as in "Let's Verify Step by Step": most are *convincing wrong-answer* solutions (the highest
scores among those whose final answer was graded wrong, i.e. where the selector is most wrong), the
rest the most convincing solutions of any kind. The round service loads rows, calls
`select_for_round`, and turns the result into tasks; everything here is plain Python so the rule can
be tested on hand-made scores.
"""
import math
from collections import defaultdict
from numbers import Real
from typing import Any, Hashable, Iterable, NamedTuple, Optional

CONVINCING_WRONG = "convincing_wrong"
CONVINCING_ANY = "convincing_any"
QC = "qc"

SCORE_MODES = ("product", "min", "last")

# A (p_negative, p_neutral, p_positive) triple must sum to 1 within this; loose enough for a softmax
# computed in bf16, tight enough to catch logits or a single class probability passed by mistake.
TRIPLE_SUM_TOLERANCE = 1e-2


class Selected(NamedTuple):
    solution_id: Hashable
    problem_id: Hashable
    score: float
    is_correct: Optional[bool]
    reason: str  # CONVINCING_WRONG, CONVINCING_ANY or QC


# ---------------------------------------------------------------------------------------------------
# Solution score from per-step probabilities


def _probability(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{where}: expected a probability, got {value!r}")
    p = float(value)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{where}: probability {p!r} is outside [0, 1]")
    return p


def _p_not_negative(step, index: int) -> float:
    """P(rating != -1) of one step: a float as given, or P(0) + P(+1) of a triple."""
    if isinstance(step, Real) and not isinstance(step, bool):
        return _probability(step, f"step {index}")
    try:
        triple = tuple(step)
    except TypeError:
        raise ValueError(f"step {index}: expected a probability or a (p_negative, p_neutral, p_positive) "
                         f"triple, got {step!r}") from None
    if len(triple) != 3:
        raise ValueError(f"step {index}: expected 3 probabilities (negative, neutral, positive), "
                         f"got {len(triple)}")
    p_neg, p_neu, p_pos = (_probability(p, f"step {index}") for p in triple)
    if abs(p_neg + p_neu + p_pos - 1.0) > TRIPLE_SUM_TOLERANCE:
        raise ValueError(f"step {index}: probabilities {triple!r} sum to {p_neg + p_neu + p_pos!r}, not 1")
    return min(1.0, p_neu + p_pos)


def solution_score(step_probs: Iterable, how: str = "product") -> float:
    """The selector's score of a whole solution from its per-step probabilities.

    Each step is either P(not negative) as one float, or a (p_negative, p_neutral, p_positive)
    triple, whose P(not negative) is p_neutral + p_positive (the PRM800K convention: a neutral step
    does not make a solution wrong). `how` combines the steps: "product" (the paper's score: the
    probability that every step is fine), "min" (the weakest step) or "last" (the final step).
    Raises ValueError on an empty solution, a probability outside [0, 1] or NaN, a triple that does
    not sum to 1, or an unknown `how`.
    """
    if how not in SCORE_MODES:
        raise ValueError(f"unknown score mode {how!r}; expected one of {', '.join(SCORE_MODES)}")
    if isinstance(step_probs, (str, bytes)):
        raise ValueError("step_probs must be a sequence of per-step probabilities, not a string")
    ok = [_p_not_negative(step, i) for i, step in enumerate(step_probs)]
    if not ok:
        raise ValueError("step_probs is empty: a solution needs at least one step to be scored")
    if how == "product":
        return math.prod(ok)
    if how == "min":
        return min(ok)
    return ok[-1]


# ---------------------------------------------------------------------------------------------------
# Selection of K solutions per problem


def wrong_slots(per_problem: int, wrong_fraction: float) -> int:
    """How many of K slots go to convincing wrong answers: K * wrong_fraction rounded half up.

    Half up, not Python's round() (which rounds half to even): K=1 at 0.8 gives 1, K=5 at 0.5 gives
    3 and K=2 at 0.25 gives 1, so a tie between the two kinds of slot goes to the wrong answers,
    which are the point of a round. A tiny epsilon keeps float products that should be exactly .5
    but land a hair below it (25 * 0.58 == 14.499999999999998) on the intended side.
    """
    return min(per_problem, math.floor(per_problem * wrong_fraction + 0.5 + 1e-9))


def _field(candidate, name: str) -> Any:
    if isinstance(candidate, dict):
        try:
            return candidate[name]
        except KeyError:
            raise ValueError(f"candidate {candidate!r} has no {name!r}") from None
    try:
        return getattr(candidate, name)
    except AttributeError:
        raise ValueError(f"candidate {candidate!r} has no {name!r}") from None


def _normalise(candidate) -> Selected:
    solution_id = _field(candidate, "solution_id")
    problem_id = _field(candidate, "problem_id")
    score = _field(candidate, "score")
    is_correct = _field(candidate, "is_correct")
    if isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score):
        raise ValueError(f"solution {solution_id!r}: score must be a finite number, got {score!r}")
    if is_correct is not None and not isinstance(is_correct, bool):
        raise ValueError(f"solution {solution_id!r}: is_correct must be True, False or None (ungraded), "
                         f"got {is_correct!r}")
    return Selected(solution_id, problem_id, float(score), is_correct, "")


def _rank(c: Selected):
    return (-c.score, c.solution_id)


def select_for_round(candidates: Iterable, *, per_problem: int, wrong_fraction: float = 0.8,
                     qc_ids: Iterable = ()) -> list[Selected]:
    """Pick up to K=`per_problem` solutions per problem for a labeling round.

    `candidates` are dicts or objects with `solution_id`, `problem_id`, `score` (the selector's
    solution score) and `is_correct` (True, False, or None while ungraded). For each problem:

    1. `wrong_slots(K, wrong_fraction)` slots (K * wrong_fraction rounded half up) go to the
       highest-scoring candidates graded wrong (`is_correct is False`): reason "convincing_wrong".
    2. The remaining slots, including any wrong slots left empty because the problem has too few
       wrong answers, go to the highest-scoring candidates not yet taken, of any kind, ungraded
       ones included: reason "convincing_any".

    A problem with fewer than K candidates has them all selected. Ties are broken by score
    descending, then solution_id ascending, so the same input always gives the same selection.

    QC: solution ids in `qc_ids` are reserved for quality control. They are never selected and do
    not use a slot; those found among the candidates are appended with reason "qc" so the round can
    report them (ids that are not candidates are ignored). The result is ordered by score
    descending, then solution_id, across problems and reasons.
    """
    if isinstance(per_problem, bool) or not isinstance(per_problem, int) or per_problem < 1:
        raise ValueError(f"per_problem must be a positive integer, got {per_problem!r}")
    if (isinstance(wrong_fraction, bool) or not isinstance(wrong_fraction, Real)
            or not 0.0 <= wrong_fraction <= 1.0):
        raise ValueError(f"wrong_fraction must be a number in [0, 1], got {wrong_fraction!r}")
    qc = set(qc_ids)
    n_wrong = wrong_slots(per_problem, wrong_fraction)

    by_problem: dict[Any, list[Selected]] = defaultdict(list)
    seen = set()
    result: list[Selected] = []
    for raw in candidates:
        c = _normalise(raw)
        if c.solution_id in seen:
            raise ValueError(f"solution {c.solution_id!r} appears twice among the candidates")
        seen.add(c.solution_id)
        if c.solution_id in qc:
            result.append(c._replace(reason=QC))
        else:
            by_problem[c.problem_id].append(c)

    for pool in by_problem.values():
        pool.sort(key=_rank)
        wrong = [c for c in pool if c.is_correct is False][:n_wrong]
        taken = {c.solution_id for c in wrong}
        rest = [c for c in pool if c.solution_id not in taken][:per_problem - len(wrong)]
        result += [c._replace(reason=CONVINCING_WRONG) for c in wrong]
        result += [c._replace(reason=CONVINCING_ANY) for c in rest]

    result.sort(key=_rank)
    return result
