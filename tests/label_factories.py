"""Step labels written straight through the ORM, as submission stores a phase-2 annotation: completion 0 of
each rated step, and no chosen completion at a -1 (the step the labeler found wrong)."""
from django.utils import timezone

from labeling.models import Annotation, Completion, StepLabel


def annotation_make(*, annotator, solution, ratings, finish_reason=None, timestamp=None, **fields):
    """`ratings[i]` rates `solution.steps[i]`; the finish reason is the ratings' (found_error at a -1, else
    solution) unless given."""
    annotation = Annotation.objects.create(
        annotator=annotator, solution=solution, problem=solution.problem, timestamp=timestamp or timezone.now(),
        finish_reason=finish_reason or ("found_error" if -1 in ratings else "solution"), **fields)
    StepLabel.objects.bulk_create([StepLabel(annotation=annotation, index=i, chosen_completion=None if r == -1 else 0)
                                   for i, r in enumerate(ratings)])
    Completion.objects.bulk_create([Completion(annotation=annotation, step_index=i, index=0,
                                               text=solution.steps[i], rating=r) for i, r in enumerate(ratings)])
    return annotation
