"""The selection rule of an active-learning round, as pure functions (no database, no ML imports).

A round scores every candidate solution of a problem with the active selector PRM and queues K of
them, as in "Let's Verify Step by Step": most are *convincing wrong-answer* solutions (the highest
scores among those whose final answer was graded wrong, i.e. where the selector is most wrong), the
rest the most convincing solutions of any kind. The round service loads rows, calls
`select_for_round`, and turns the result into tasks; everything here is plain Python so the rule can
be tested on hand-made scores. The scores themselves come from labeling.core.step_scores.
"""
import math
import random
from collections import defaultdict
from numbers import Real
from typing import Any, Hashable, Iterable, NamedTuple, Optional

from labeling.core.agreement import NO_ERROR
from labeling.core.step_scores import p_not_negative

CONVINCING_WRONG = "convincing_wrong"
CONVINCING_ANY = "convincing_any"
CONTROL = "control"
RANDOM_WRONG = "random_wrong"
QC = "qc"


class Selected(NamedTuple):
    solution_id: Hashable
    problem_id: Hashable
    score: float
    is_correct: Optional[bool]
    reason: str  # CONVINCING_WRONG, CONVINCING_ANY, RANDOM_WRONG, CONTROL or QC


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



def _slots(per_problem, wrong_fraction) -> int:
    """The wrong slots of K, after checking both arguments."""
    if isinstance(per_problem, bool) or not isinstance(per_problem, int) or per_problem < 1:
        raise ValueError(f"per_problem must be a positive integer, got {per_problem!r}")
    if (isinstance(wrong_fraction, bool) or not isinstance(wrong_fraction, Real)
            or not 0.0 <= wrong_fraction <= 1.0):
        raise ValueError(f"wrong_fraction must be a number in [0, 1], got {wrong_fraction!r}")
    return wrong_slots(per_problem, wrong_fraction)


def _partition(candidates, qc) -> tuple[dict, list]:
    """(candidates by problem, the QC ones marked "qc"); a solution listed twice is refused."""
    by_problem: dict[Any, list[Selected]] = defaultdict(list)
    seen = set()
    reserved: list[Selected] = []
    for raw in candidates:
        c = _normalise(raw)
        if c.solution_id in seen:
            raise ValueError(f"solution {c.solution_id!r} appears twice among the candidates")
        seen.add(c.solution_id)
        if c.solution_id in qc:
            reserved.append(c._replace(reason=QC))
        else:
            by_problem[c.problem_id].append(c)
    return by_problem, reserved

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
    n_wrong = _slots(per_problem, wrong_fraction)
    by_problem, result = _partition(candidates, set(qc_ids))

    for pool in by_problem.values():
        pool.sort(key=_rank)
        wrong = [c for c in pool if c.is_correct is False][:n_wrong]
        taken = {c.solution_id for c in wrong}
        rest = [c for c in pool if c.solution_id not in taken][:per_problem - len(wrong)]
        result += [c._replace(reason=CONVINCING_WRONG) for c in wrong]
        result += [c._replace(reason=CONVINCING_ANY) for c in rest]

    result.sort(key=_rank)
    return result


def select_random_wrong(candidates: Iterable, *, per_problem: int, wrong_fraction: float = 0.8, seed: int = 0,
                        qc_ids: Iterable = ()) -> list[Selected]:
    """The fallback of a round whose selector did not beat chance: the same slots, filled at random.

    A selector no better than chance cannot say which wrong answer is convincing, so its scores are
    not used to choose (they are kept on the picks, for the record). For each problem, with the
    candidates and `qc_ids` handled as in `select_for_round`:

    1. `wrong_slots(K, wrong_fraction)` slots go to wrong answers (`is_correct is False`) drawn
       uniformly at random: reason "random_wrong".
    2. The remaining slots, including wrong slots left empty, go to candidates of any kind drawn
       uniformly at random from those not taken: reason "control". That is exactly what the round's
       control slice is (a uniform draw from the candidates not picked), so these picks count in
       the control yield instead of posing as "convincing" ones.

    Seeded: the same candidates and `seed` give the same picks whatever their input order (problems
    and their candidates are visited in sorted order). The result is ordered like `select_for_round`'s.
    """
    n_wrong = _slots(per_problem, wrong_fraction)
    by_problem, result = _partition(candidates, set(qc_ids))

    rng = random.Random(seed)
    for problem_id in sorted(by_problem, key=_sortable):
        pool = sorted(by_problem[problem_id], key=lambda c: _sortable(c.solution_id))
        wrong = [c for c in pool if c.is_correct is False]
        wrong = rng.sample(wrong, min(n_wrong, len(wrong)))
        taken = {c.solution_id for c in wrong}
        rest = [c for c in pool if c.solution_id not in taken]
        rest = rng.sample(rest, min(per_problem - len(wrong), len(rest)))
        result += [c._replace(reason=RANDOM_WRONG) for c in wrong]
        result += [c._replace(reason=CONTROL) for c in rest]

    result.sort(key=_rank)
    return result


def _sortable(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


# --- the disagreement rule -------------------------------------------------------------------------------

PRM800K_RULE = "prm800k"
DISAGREEMENT_RULE = "disagreement"
SELECTION_RULES = (PRM800K_RULE, DISAGREEMENT_RULE)
DISAGREEMENT = "disagreement"


def _optional(candidate, name):
    if isinstance(candidate, dict):
        return candidate.get(name)
    return getattr(candidate, name, None)


def disagreement(score: float, min_advantage=None, rollout_first_error=None, selector_first_error=None, *,
                 threshold: float = 0.5) -> float:
    """How much the rollouts contradict the selector on one solution: its selector score times the stronger of

    - a strongly negative process advantage somewhere: -min A_k, when min A_k <= -threshold (a step after
      which the prover's chance of reaching the answer fell by at least `threshold`);
    - 1 when the rollouts and the selector both name a first error (a step index, or "none") and differ.

    0 when neither holds (or the rollouts are missing): such a solution is not a disagreement pick.
    """
    strength = 0.0
    if min_advantage is not None and min_advantage <= -threshold:
        strength = -min_advantage
    if rollout_first_error is not None and selector_first_error is not None \
            and rollout_first_error != selector_first_error:
        strength = max(strength, 1.0)
    return max(0.0, score) * strength


def select_by_disagreement(candidates: Iterable, *, per_problem: int, wrong_fraction: float = 0.8,
                           qc_ids: Iterable = (), threshold: float = 0.5) -> list[Selected]:
    """The `disagreement` round rule: per problem, first the candidates the rollouts most contradict (see
    `disagreement`; candidates may carry `min_advantage`, `rollout_first_error`, `selector_first_error`),
    reason "disagreement", by disagreement descending, then score, then solution id; the slots left go by
    the PRM800K rule (`select_for_round`) over the rest. QC ids as in `select_for_round`.
    """
    _slots(per_problem, wrong_fraction)
    extra = {}
    plain = []
    for raw in candidates:
        c = _normalise(raw)
        extra[c.solution_id] = disagreement(c.score, _optional(raw, "min_advantage"),
                                            _optional(raw, "rollout_first_error"),
                                            _optional(raw, "selector_first_error"), threshold=threshold)
        plain.append(c)
    by_problem, result = _partition(plain, set(qc_ids))
    for pool in by_problem.values():
        contested = sorted((c for c in pool if extra[c.solution_id] > 0),
                           key=lambda c: (-extra[c.solution_id], -c.score, c.solution_id))[:per_problem]
        result += [c._replace(reason=DISAGREEMENT) for c in contested]
        left = per_problem - len(contested)
        if left:
            taken = {c.solution_id for c in contested}
            result += select_for_round([c._asdict() for c in pool if c.solution_id not in taken],
                                       per_problem=left, wrong_fraction=wrong_fraction)
    result.sort(key=_rank)
    return result


def selector_first_error(step_scores, n_steps: int, *, cut: float = 0.5):
    """The selector's first error: the first step whose P(not negative) is below `cut` (0-based), "none"
    (labeling.core.agreement.NO_ERROR) when every one of `n_steps` steps is at or above it, None when the
    step scores are missing, truncated or not probabilities (an implicit PRM's rewards)."""
    if not step_scores or len(step_scores) < n_steps:
        return None
    try:
        probs = [p_not_negative(s, i) for i, s in enumerate(step_scores[:n_steps])]
    except ValueError:
        return None
    if any(p is None for p in probs):
        return None
    return next((i for i, p in enumerate(probs) if p < cut), NO_ERROR)
