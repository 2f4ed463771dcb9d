"""Reads: small query functions the views and admin share."""
from labeling.models import Annotation, Problem, Solution


def dataset_counts():
    return {
        "problems": Problem.objects.count(),
        "solutions": Solution.objects.count(),
        "wrong_solutions": Solution.objects.filter(is_correct=False).count(),
        "annotations": Annotation.objects.count(),
    }
