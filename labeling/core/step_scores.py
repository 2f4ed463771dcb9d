"""Step scores of a PRM and the solution score made of them (no database, no ML imports).

A step-head PRM scores a step with a (p_negative, p_neutral, p_positive) triple, an implicit PRM with
one probability. Either way a step's P(not negative) is what selection, scoring and evaluation read:
p_neutral + p_positive of a triple (the PRM800K convention: a neutral step does not make a solution
wrong), or the probability itself. A step truncated away by the scorer has no score (None).

Unscorable solutions. A solution with a step that has no score (it did not fit the maximum length) has
no solution score either: `solution_score` refuses it and `scorable_solution_score` returns None. Skipping
the missing steps would score a long solution on its leading steps only (a product over fewer factors
is higher, and the cut-off steps are often where a wrong solution goes wrong), so a partial product is
never computed.

An implicit PRM's stored step values are sigmoid(q_k), q_k the prefix reward (workers.ml.implicit_prm);
`implicit_step_rewards` recovers its per-step rewards r_k = q_k - q_(k-1) from them.
"""
import math
from numbers import Real
from typing import Iterable, Optional

SCORE_MODES = ("product", "min", "last")

# A (p_negative, p_neutral, p_positive) triple must sum to 1 within this; loose enough for a softmax
# computed in bf16, tight enough to catch logits or a single class probability passed by mistake.
TRIPLE_SUM_TOLERANCE = 1e-2


def _probability(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{where}: expected a probability, got {value!r}")
    p = float(value)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{where}: probability {p!r} is outside [0, 1]")
    return p


def p_not_negative(step, index: Optional[int] = None) -> Optional[float]:
    """P(rating != -1) of one step: a float as given, P(0) + P(+1) of a triple, None for a truncated step.

    Raises ValueError on anything else: a probability outside [0, 1] or NaN, a triple that does not
    sum to 1, a string. `index` only names the step in the message.
    """
    where = "step" if index is None else f"step {index}"
    if step is None:
        return None
    if isinstance(step, Real) and not isinstance(step, bool):
        return _probability(step, where)
    try:
        triple = tuple(step)
    except TypeError:
        raise ValueError(f"{where}: expected a probability or a (p_negative, p_neutral, p_positive) "
                         f"triple, got {step!r}") from None
    if len(triple) != 3:
        raise ValueError(f"{where}: expected 3 probabilities (negative, neutral, positive), got {len(triple)}")
    p_neg, p_neu, p_pos = (_probability(p, where) for p in triple)
    if abs(p_neg + p_neu + p_pos - 1.0) > TRIPLE_SUM_TOLERANCE:
        raise ValueError(f"{where}: probabilities {triple!r} sum to {p_neg + p_neu + p_pos!r}, not 1")
    return min(1.0, p_neu + p_pos)


def solution_score(step_probs: Iterable, how: str = "product") -> float:
    """The selector's score of a whole solution from its per-step probabilities.

    Each step is either P(not negative) as one float, or a (p_negative, p_neutral, p_positive)
    triple (see p_not_negative). `how` combines the steps: "product" (the paper's score: the
    probability that every step is fine), "min" (the weakest step) or "last" (the final step).
    Raises ValueError on an empty solution, a step without a score (None: an unscorable solution, see
    the module docstring), a probability outside [0, 1] or NaN, a triple that does not sum to 1, or an
    unknown `how`.
    """
    if how not in SCORE_MODES:
        raise ValueError(f"unknown score mode {how!r}; expected one of {', '.join(SCORE_MODES)}")
    if isinstance(step_probs, (str, bytes)):
        raise ValueError("step_probs must be a sequence of per-step probabilities, not a string")
    ok = []
    for i, step in enumerate(step_probs):
        if step is None:
            raise ValueError(f"step {i}: expected a probability or a (p_negative, p_neutral, p_positive) "
                             f"triple, got None (a step cut by the maximum length: the solution is unscorable)")
        ok.append(p_not_negative(step, i))
    if not ok:
        raise ValueError("step_probs is empty: a solution needs at least one step to be scored")
    if how == "product":
        return math.prod(ok)
    if how == "min":
        return min(ok)
    return ok[-1]


def is_scorable(step_values) -> bool:
    """Whether every step has a value (none was cut by the maximum length) and there is at least one."""
    values = list(step_values)
    return bool(values) and all(v is not None for v in values)


def scorable_solution_score(step_values, how: str = "product") -> Optional[float]:
    """solution_score, or None for an unscorable solution (no steps, or a step without a value)."""
    values = list(step_values)
    if how not in SCORE_MODES:
        raise ValueError(f"unknown score mode {how!r}; expected one of {', '.join(SCORE_MODES)}")
    return solution_score(values, how=how) if is_scorable(values) else None


def implicit_step_rewards(prefix_values) -> list:
    """An implicit PRM's per-step rewards r_k from its stored step values sigmoid(q_k): r_k = q_k - q_(k-1),
    q_0 = 0. A step without a value (None) and every step after it give None. Stored values are rounded
    (6 decimals), so these are close to, not equal to, ImplicitPRM.step_rewards; a value of exactly 0 or
    1 (|q| above ~14) has no finite logit and raises ValueError.
    """
    rewards, previous = [], 0.0
    for k, value in enumerate(prefix_values):
        if value is None or previous is None:
            rewards.append(None)
            previous = None
            continue
        p = _probability(value, f"step {k}")
        if p in (0.0, 1.0):
            raise ValueError(f"step {k}: {p} has no finite logit")
        q = math.log(p / (1.0 - p))
        rewards.append(q - previous)
        previous = q
    return rewards
