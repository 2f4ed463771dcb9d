"""Error yield: per round and reason, the share of the solutions a round served in which annotators found an error.

Served: a round task (kind "round") of the round whose solution has at least one submitted annotation in
that round, quality control and screening left out; its reason is the round's RoundSelection of that
solution. Found an error: some such annotation's trajectory, read as the training exports read it
(formats.training.annotation_steps: the chosen completion, else a human step, else the first rated
completion), reaches a step rated -1. A -1 on an alternative completion the annotator did not take is
not an error in the solution. Comparing the convincing-wrong yield with the random control's is how a
team sees whether selection pays ("Let's Verify Step by Step" reports about 2.6x).
"""
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Subquery

from labeling.core.intervals import wilson_interval
from labeling.formats.training import annotation_steps
from labeling.models import Annotation, RoundSelection, Task
from labeling.services.data.training_exports import annotation_pages

Reason = RoundSelection.Reason
YIELD_REASONS = (Reason.CONVINCING_WRONG, Reason.CONVINCING_ANY, Reason.CONTROL, Reason.RANDOM_WRONG)
REASON_LABELS = {Reason.CONVINCING_WRONG: "convincing wrong", Reason.CONVINCING_ANY: "convincing any",
                 Reason.CONTROL: "control (random)", Reason.RANDOM_WRONG: "random wrong (fallback)",
                 Reason.DISAGREEMENT: "rollouts disagree"}


@dataclass(frozen=True)
class Yield:
    reason: str
    served: int
    found: int

    @property
    def label(self):
        return REASON_LABELS.get(self.reason, self.reason)

    @property
    def share(self):
        return self.found / self.served if self.served else None

    @property
    def interval(self):
        """The 95% Wilson interval of the share; None with nothing served."""
        return wilson_interval(self.found, self.served)


def _served_annotations(round_ids):
    task = Task.objects.filter(kind=Task.Kind.ROUND, round_id=OuterRef("round_id"), solution_id=OuterRef("solution_id"))
    reason = RoundSelection.objects.filter(round_id=OuterRef("round_id"), solution_id=OuterRef("solution_id"))
    return (Annotation.objects.filter(round_id__in=round_ids, solution__isnull=False, is_quality_control=False,
                                      is_screening=False)
            .filter(Exists(task)).annotate(reason=Subquery(reason.values("reason")[:1]))
            .filter(reason__in=YIELD_REASONS))


def round_yields(round_ids) -> dict:
    """{round id: {reason: Yield}} for the given rounds, every reason of YIELD_REASONS present (served 0
    where the round served none of it)."""
    round_ids = list(round_ids)
    found = {}  # (round id, solution id) -> (reason, an error found)
    for rows, steps, completions in annotation_pages(_served_annotations(round_ids),
                                                     ("round_id", "solution_id", "reason")):
        for annotation_id, round_id, solution_id, reason in rows:
            path = annotation_steps(steps.get(annotation_id, []), completions.get(annotation_id, {}))
            error = any(rating == -1 for _, rating in path)
            _, before = found.get((round_id, solution_id), (reason, False))
            found[(round_id, solution_id)] = (reason, before or error)
    counts = {(r, reason): [0, 0] for r in round_ids for reason in YIELD_REASONS}
    for (round_id, _), (reason, error) in found.items():
        counts[(round_id, reason)][0] += 1
        counts[(round_id, reason)][1] += error
    return {r: {reason: Yield(reason, *counts[(r, reason)]) for reason in YIELD_REASONS} for r in round_ids}


def yield_ratio(yields: dict):
    """Convincing-wrong yield over the control's, when both were served and the control found an error."""
    wrong, control = yields.get(Reason.CONVINCING_WRONG), yields.get(Reason.CONTROL)
    if not wrong or not control or not wrong.served or not control.found:
        return None
    return wrong.share / control.share
