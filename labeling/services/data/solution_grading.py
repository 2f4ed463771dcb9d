"""Grade stored solutions' final answers against their problems' ground truth."""
from dataclasses import dataclass

from django.db import transaction

from labeling.models import Solution

BATCH = 1000


@dataclass
class GradeResult:
    graded: int = 0
    correct: int = 0


def solutions_grade(*, solution_ids=None, mode="prm800k", regrade=False) -> GradeResult:
    """Grade the given solutions (default: all ungraded). A solution or problem without an answer stays null.

    Identical (answer, ground truth) pairs are graded once: generated solutions repeat answers a lot.
    """
    from labeling.core.grading import grade_answer  # sympy is slow to import; only graders pay for it

    qs = Solution.objects.all()
    if solution_ids is not None:
        qs = qs.filter(id__in=solution_ids)
    if not regrade:
        qs = qs.filter(is_correct__isnull=True)
    qs = qs.exclude(final_answer__isnull=True).exclude(problem__answer__isnull=True)
    verdicts = {}
    result = GradeResult()
    last = 0
    while True:
        rows = list(qs.filter(id__gt=last).order_by("id").values_list("id", "final_answer", "problem__answer")[:BATCH])
        if not rows:
            return result
        last = rows[-1][0]
        updates = []
        for sid, given, truth in rows:
            key = (given, truth)
            if key not in verdicts:
                verdicts[key] = grade_answer(given, truth, mode=mode)
            updates.append(Solution(id=sid, is_correct=verdicts[key], graded_mode=mode))
            result.graded += 1
            result.correct += verdicts[key]
        with transaction.atomic():
            Solution.objects.bulk_update(updates, ["is_correct", "graded_mode"])
