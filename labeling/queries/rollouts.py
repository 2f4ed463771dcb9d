"""Reads of rollout step labels (`RolloutEstimate` rows): per solution, Q and A per step and the estimated
first error, for the admin's solution page, exports, selection, the annotator hint and the dashboard.

One solution may have been rolled out by several provers and both methods. A read picks one estimate set
per solution: the asked prover's (or, with none asked, the first prover in name order), Monte Carlo before
binary search (it estimates every step). First errors use labeling.core.agreement's outcome convention:
the 0-based index of the first wrong step, NO_ERROR, or None when the estimates do not decide it.
"""
from dataclasses import dataclass, field

from labeling.core import rollout_values
from labeling.core.agreement import NO_ERROR, outcome
from labeling.core.rollout_values import first_error_from_estimates
from labeling.models import Annotation, Completion, RolloutEstimate

IN_BATCH = 500
VALUES = ("solution_id", "prover", "method", "step_index", "n", "n_correct", "seed", "q_soft", "q_hard", "ci_low",
          "ci_high", "tokens")
METHOD_ORDER = {"mc": 0, "binary": 1}


@dataclass(frozen=True)
class StepEstimate:
    k: int  # prefix length: steps 1..k (0: the bare problem)
    n: int
    n_correct: int
    q_soft: float
    q_hard: bool
    ci_low: float
    ci_high: float
    seed: int = 0
    tokens: int = 0


@dataclass
class SolutionRollouts:
    solution_id: int
    prover: str
    method: str
    estimates: dict = field(default_factory=dict)  # k -> StepEstimate

    def q(self, k):
        e = self.estimates.get(k)
        return None if e is None else e.q_soft

    def first_error(self, n_steps):
        return estimated_first_error(self.estimates, n_steps)

    def step_values(self, n_steps, alpha=0.0):
        """rollout_values.step_values for steps 1..n_steps: q, q_hard, a, effective, n, n_correct, interval."""
        return rollout_values.step_values([rollout_values.StepEstimate(k, e.n, e.n_correct)
                                           for k, e in self.estimates.items()], alpha=alpha, num_steps=n_steps)

    def complete(self, n_steps):
        """Whether every step 1..n_steps was rolled out (what soft labels need)."""
        return all(k in self.estimates for k in range(1, n_steps + 1))

    def hard_labels(self, n_steps):
        """One bool per step: Q_k hard where every step was rolled out (Math-Shepherd, all steps kept);
        otherwise (binary search) True before the estimated first error, False at it, later steps dropped;
        None when neither decides."""
        if self.complete(n_steps):
            return [self.estimates[k].q_hard for k in range(1, n_steps + 1)]
        first = self.first_error(n_steps)
        if first is None:
            return None
        if first == NO_ERROR:
            return [True] * n_steps
        return [True] * first + [False]

    def soft_labels(self, n_steps):
        if not self.complete(n_steps):
            return None
        return [self.estimates[k].q_soft for k in range(1, n_steps + 1)]

    @property
    def n(self):
        return max((e.n for e in self.estimates.values()), default=0)

    @property
    def rollouts(self):
        return sum(e.n for e in self.estimates.values())


def estimated_first_error(estimates: dict, n_steps: int):
    """The estimated first error as a 0-based step index, NO_ERROR, or None when the estimates decide nothing.

    `estimates` maps prefix lengths to StepEstimates. The step is rollout_values.first_error_from_estimates's
    (the first prefix with no correct continuation), kept only when the prefix just before it is known to
    reach the answer (for step 1, the bare problem when rolled out): what full Monte Carlo and a finished
    binary search establish, and a stopped search does not. NO_ERROR when the whole solution still reaches
    the answer; None for a prover that cannot solve the bare problem."""
    q_hard = {k: e.n_correct > 0 for k, e in estimates.items()}
    if q_hard.get(0) is False:
        return None
    first = first_error_from_estimates(rollout_values.StepEstimate(k, e.n, e.n_correct) for k, e in estimates.items())
    if first is not None:
        if first > n_steps:
            return None
        before = q_hard.get(first - 1)
        return first - 1 if before is True or (first == 1 and before is None) else None
    return NO_ERROR if q_hard.get(n_steps) is True else None


def rollout_summaries(solution_ids, *, prover: str = "") -> dict:
    """solution id -> SolutionRollouts (one estimate set each; see the module docstring), for the ids that
    have estimates. Reads IN_BATCH ids per query."""
    ids = sorted(set(solution_ids))
    sets = {}
    for start in range(0, len(ids), IN_BATCH):
        qs = RolloutEstimate.objects.filter(solution_id__in=ids[start:start + IN_BATCH])
        if prover:
            qs = qs.filter(prover=prover)
        for sid, prov, method, k, n, n_correct, seed, q_soft, q_hard, lo, hi, tokens in qs.order_by().values_list(
                *VALUES):
            sets.setdefault(sid, {}).setdefault((prov, METHOD_ORDER.get(method, 9), method), {})[k] = StepEstimate(
                k=k, n=n, n_correct=n_correct, q_soft=q_soft, q_hard=q_hard, ci_low=lo, ci_high=hi, seed=seed,
                tokens=tokens)
    out = {}
    for sid, by_set in sets.items():
        (prov, _, method), estimates = min(by_set.items(), key=lambda item: item[0])
        out[sid] = SolutionRollouts(solution_id=sid, prover=prov, method=method, estimates=estimates)
    return out


def solution_rollouts(solution, *, prover: str = ""):
    return rollout_summaries([solution.id], prover=prover).get(solution.id)


# --- one solution, for the admin's solution page ---------------------------------------------------------

@dataclass
class StepRow:
    k: int  # 1-based step (0: the bare problem)
    text: str
    human: list  # one rating (or None) per annotation, in the order of SolutionLabels.annotations
    value: "dict | None"  # rollout_values.step_values's row (q, q_hard, a, n, n_correct, ci_low, ci_high)


@dataclass
class SolutionLabels:
    """A solution's human labels and rollout estimates step by step, and the first error each gives."""
    solution_id: int
    rollouts: "SolutionRollouts | None"
    annotations: list  # (annotation id, annotator name, outcome)
    steps: list  # StepRow, k = 0..K
    rollout_first_error: object  # agreement outcome: 0-based index, NO_ERROR, or None


def solution_labels(solution, *, prover: str = "") -> SolutionLabels:
    """Per step: every annotation's rating of the solution's own step (completion 0), and Q, A and the
    interval of the chosen rollout estimates; the rollouts' and each annotation's first error."""
    n_steps = len(solution.steps)
    rollouts = solution_rollouts(solution, prover=prover)
    annotations = list(Annotation.objects.filter(solution=solution).select_related("annotator__user").order_by("id"))
    ratings = {a.id: [None] * n_steps for a in annotations}
    for aid, step, rating in Completion.objects.filter(annotation__in=annotations, index=0).order_by() \
            .values_list("annotation_id", "step_index", "rating"):
        if step < n_steps:
            ratings[aid][step] = rating
    values = {row["step_index"]: row for row in rollouts.step_values(n_steps)} if rollouts else {}
    bare = rollouts and rollouts.estimates.get(0)
    steps = [StepRow(k=0, text="", human=[None] * len(annotations), value=bare and {
        "q": bare.q_soft, "q_hard": bare.q_hard, "a": None, "n": bare.n, "n_correct": bare.n_correct,
        "ci_low": bare.ci_low, "ci_high": bare.ci_high})]
    for k in range(1, n_steps + 1):
        steps.append(StepRow(k=k, text=solution.steps[k - 1], human=[ratings[a.id][k - 1] for a in annotations],
                             value=values.get(k) if values.get(k, {}).get("q") is not None else None))
    return SolutionLabels(
        solution_id=solution.id, rollouts=rollouts,
        annotations=[(a.id, str(a.annotator), outcome(ratings[a.id], n_steps)) for a in annotations],
        steps=steps, rollout_first_error=rollouts.first_error(n_steps) if rollouts else None)
