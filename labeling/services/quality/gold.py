"""Quality control: gold tasks (QC and screening), scoring submissions against gold, clearing annotators.

Scoring (definitions in labeling.core.agreement): each annotation of a gold task stores its step agreement
and whether it found the gold first error; the annotator's aggregates are then recomputed from
those stored values in one SQL aggregate, so scoring the same annotation twice changes nothing.

- qc_step_agreement: mean over the annotator's QC annotations of the share of gold steps rated
  exactly as gold (0 and +1 are different ratings); annotations that rated no gold step are left out.
- qc_first_error_agreement: share of QC annotations whose first -1 is the gold first -1, or that rated
  every step without a -1 where gold has none.
- qc_score = the mean of the two (labeling.core.agreement.quality_score).
- screening_score: the same formula over screening annotations (the qc_* fields leave those out).
  Once an annotator has answered every screening task, screening_passed = screening_score >=
  settings.STEPWISE_SCREENING_PASS. The queue withholds round tasks while screening_passed is False
  and not cleared_by_admin; an admin clears with the annotator admin's "Clear for round tasks".
"""
from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Case, Count, FloatField, Value, When

from labeling.core import agreement as metrics
from labeling.errors import DataError
from labeling.formats.qc import alternatives_validate, gold_validate, kind_validate
from labeling.models import Annotation, Annotator, Assignment, Completion, Task

# Every annotator may answer every gold task once (never_the_same_task_twice), so a gold task must
# never fill up: its overlap is far above any team's size (and within a PostgreSQL smallint).
GOLD_TASK_OVERLAP = 10_000


@transaction.atomic
def qc_task_create(*, solution, gold_ratings, kind=Task.Kind.QC, alternatives=None) -> Task:
    """A QC or screening task for `solution` with validated gold. One per solution and kind."""
    kind_validate(kind)
    n_steps = len(solution.steps)
    gold_validate(gold_ratings, n_steps)
    alternatives = alternatives_validate(alternatives, n_steps)
    existing = Task.objects.filter(solution=solution, kind=kind, round=None).first()
    if existing is not None:
        raise DataError(f"solution {solution.pk} already has {kind} task {existing.pk}", field="gold")
    return Task.objects.create(solution=solution, kind=kind, gold_ratings=gold_ratings, alternatives=alternatives,
                               overlap=GOLD_TASK_OVERLAP)


def annotation_ratings(annotation_id):
    """The annotation's rating of each solution step (completion 0 of the step), None where unrated."""
    rated = dict(Completion.objects.filter(annotation_id=annotation_id, index=0).values_list("step_index", "rating"))
    return [rated.get(i) for i in range(max(rated) + 1)] if rated else []


def annotation_scored(*, annotation) -> "metrics.GoldScore | None":
    """Score a submitted annotation against its task's gold, then refresh its annotator's aggregates.

    The submission service calls this inside its transaction after every submission of a task with gold;
    for a task without gold it costs one query and returns None.
    """
    assignment = Assignment.objects.filter(annotation_id=annotation.pk).select_related("task__solution").first()
    if assignment is None or assignment.task.gold_ratings is None:
        return None
    task = assignment.task
    score = metrics.gold_score(task.gold_ratings, annotation_ratings(annotation.pk), len(task.solution.steps))
    annotation.gold_step_agreement = score.step_agreement
    annotation.gold_first_error_match = score.first_error_match
    Annotation.objects.filter(pk=annotation.pk).update(gold_step_agreement=score.step_agreement,
                                                      gold_first_error_match=score.first_error_match)
    refreshed = annotator_quality_refresh(annotator_id=annotation.annotator_id)
    if Annotation.annotator.is_cached(annotation):
        # The caller's copy must not carry stale aggregates into a later save().
        for name in AGGREGATE_FIELDS + ["screening_passed"]:
            setattr(annotation.annotator, name, getattr(refreshed, name))
    return score


AGGREGATE_FIELDS = ["qc_count", "qc_step_agreement", "qc_first_error_agreement", "qc_score", "screening_score"]
_MATCH = Avg(Case(When(gold_first_error_match=True, then=Value(1.0)), default=Value(0.0),
                  output_field=FloatField()))


@transaction.atomic
def annotator_quality_refresh(*, annotator_id) -> Annotator:
    """Recompute an annotator's QC and screening aggregates from their scored annotations."""
    # The row lock orders concurrent submissions of one annotator: the later one aggregates after
    # the earlier one commits, so neither overwrites the other's score with a stale aggregate.
    annotator = Annotator.objects.select_for_update().get(pk=annotator_id)
    scored = Annotation.objects.filter(annotator_id=annotator_id, gold_first_error_match__isnull=False)
    qc = scored.filter(assignment__task__kind=Task.Kind.QC).aggregate(
        n=Count("id"), step=Avg("gold_step_agreement"), first_error=_MATCH)
    screening = scored.filter(assignment__task__kind=Task.Kind.SCREENING).aggregate(
        n=Count("assignment__task", distinct=True), step=Avg("gold_step_agreement"), first_error=_MATCH)
    annotator.qc_count = qc["n"]
    annotator.qc_step_agreement = qc["step"]
    annotator.qc_first_error_agreement = qc["first_error"] if qc["n"] else None
    annotator.qc_score = metrics.quality_score(annotator.qc_step_agreement, annotator.qc_first_error_agreement)
    annotator.screening_score = (metrics.quality_score(screening["step"], screening["first_error"])
                                 if screening["n"] else None)
    fields = list(AGGREGATE_FIELDS)
    screening_tasks = Task.objects.filter(kind=Task.Kind.SCREENING).count()
    if screening_tasks and screening["n"] >= screening_tasks:
        annotator.screening_passed = annotator.screening_score >= settings.STEPWISE_SCREENING_PASS
        fields.append("screening_passed")
    annotator.save(update_fields=fields)
    return annotator


def annotators_clear(*, annotators) -> int:
    """Let annotators who failed screening take round tasks anyway (an admin's decision)."""
    return annotators.filter(cleared_by_admin=False).update(cleared_by_admin=True)
