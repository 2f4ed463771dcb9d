"""Grade stored solutions' final answers against their problems' ground truth.

A solution keeps one verdict and the mode that made it (`Solution.graded_mode`). Imports grade in
the reference mode (``prm800k``, what PRM800K's own labels agree with); rounds and evaluation regrade
what they read in ``settings.STEPWISE_SELECTION_GRADING`` (``fixed`` by default) with
`solutions_grade_in_mode`, so a correct ``2^{10}`` for 1024 is not selected as a wrong answer.
"""
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
    from labeling.core.grading import MODES, grade_answer  # sympy is slow to import; only graders pay for it

    if mode not in MODES:
        raise ValueError(f"unknown grading mode {mode!r}; expected one of {MODES}")
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


def solutions_grade_in_mode(*, solutions, mode: str) -> GradeResult:
    """Grade, in `mode`, every solution of the queryset `solutions` not already graded in it.

    Ungraded solutions and those graded in the other mode (an import's ``prm800k`` verdict, for a round
    that selects in ``fixed`` mode) get `mode`'s verdict; those already graded in `mode` are not touched.
    """
    stale = solutions.exclude(graded_mode=mode).exclude(final_answer__isnull=True) \
        .exclude(problem__answer__isnull=True).values("id")
    return solutions_grade(solution_ids=stale, mode=mode, regrade=True)
