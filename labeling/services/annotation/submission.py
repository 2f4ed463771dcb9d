"""Submitting a leased task: one annotation stored exactly as PRM800K phase 2 stores it.

For each rated step, completion 0 is the solution's own step with the annotator's rating and flag;
`chosen_completion` is 0 for steps rated 0 or +1 and null at the -1 step, where the task's
alternatives (if it has any for that step) follow as completions 1.. with their ratings, and a
human completion (where the round takes them) fills the step's human_* fields.

The annotation's round (PRM800K's generation) is the lease's: a QC task mixed into a round is
labeled as part of it.

Submitting is idempotent by `client_id`: the same submission sent again returns the annotation it
made, whatever the lease has become since; the same client_id with another body is a conflict (a
stale tab must not be told its different labels were stored). Everything happens in one transaction, quality scoring
included: a refused or failed submission writes nothing.
"""
import functools
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from labeling.models import Annotation, Assignment, Completion, FinishReason, RoundSelection, StepLabel, Task
from labeling.errors import AssignmentNotFound, InvalidInput, LeaseConflict, LeaseExpired
from labeling.services.annotation.checks import text_check
from labeling.services.annotation.queue import assignment_q
from labeling.services.quality import gold as quality
from labeling.services.training.retraining import retrain_after_submission, wants_retrain

RATINGS = (-1, 0, 1)
STOPPED = (FinishReason.BAD_PROBLEM, FinishReason.GIVE_UP)


@dataclass(frozen=True)
class Submitted:
    annotation: Annotation
    created: bool  # False when this was a replay of an earlier submission


def annotation_submit(*, assignment, annotator, client_id, ratings, finish_reason, total_time_ms,
                      alternative_ratings=None, human_completion=None, reason=None, now=None) -> Submitted:
    """Store the annotator's ratings of their leased task (an Assignment, its pk, or its public UUID).

    `ratings` is [{"step": i, "rating": r, "flagged": bool | None}] for steps 0..k-1 in order;
    `alternative_ratings` is [{"index": j, "rating": r, "flagged": bool | None}] for the task's
    alternatives at the -1 step. Raises AssignmentNotFound, LeaseExpired, LeaseConflict, InvalidInput.
    """
    now = now or timezone.now()
    client_id = _uuid(client_id)
    assignment_id = getattr(assignment, "pk", assignment)
    body = _Body(ratings=ratings, finish_reason=finish_reason, alternative_ratings=alternative_ratings or [],
                 human_completion=_blank_none(human_completion), reason=_blank_none(reason))
    try:
        with transaction.atomic():
            return _submit(assignment_id=assignment_id, annotator=annotator, client_id=client_id, body=body,
                           total_time_ms=total_time_ms, now=now)
    except IntegrityError:
        # A concurrent request inserted this client_id first (the unique index decided).
        earlier = Annotation.objects.filter(client_id=client_id).first()
        if earlier is None:
            raise
        return _replay(earlier, assignment_id, body)


@dataclass(frozen=True)
class _Body:
    ratings: list
    finish_reason: str
    alternative_ratings: list
    human_completion: str | None
    reason: str | None


def _blank_none(text):
    return text if text and text.strip() else None


def _uuid(value):
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(f"not a UUID: {value!r}", field="client_id") from None


def _replay(earlier, assignment_id, body) -> Submitted:
    reason = Assignment.objects.filter(assignment_q(assignment_id), annotation_id=earlier.pk).values_list(
        "reason", flat=True)
    if not reason.exists():
        raise LeaseConflict("this client_id was already used for another submission", field="client_id")
    if not _same_body(earlier, reason.get(), body):
        raise LeaseConflict("this client_id was already used for a submission with other labels; "
                            "reload the task to see what was stored", field="client_id")
    return Submitted(earlier, created=False)


def _same_body(earlier, stored_reason, body) -> bool:
    """Whether a replay says what the stored annotation says (total_time_ms aside: it was clamped).
    A missing flag and `false` mean the same, as they do when stored."""
    steps, alternatives = [], {}
    for step, index, rating, flagged in (earlier.completions.order_by("step_index", "index")
                                         .values_list("step_index", "index", "rating", "flagged")):
        if index == 0:
            steps.append((step, rating, bool(flagged)))
        elif rating is not None:
            alternatives[index - 1] = (rating, bool(flagged))
    human = earlier.step_labels.exclude(human_text=None).values_list("human_text", flat=True).first()
    try:
        asked = [(r["step"], r["rating"], bool(r.get("flagged"))) for r in body.ratings]
        asked_alternatives = {a["index"]: (a["rating"], bool(a.get("flagged"))) for a in body.alternative_ratings}
    except (KeyError, TypeError):
        return False
    return (asked == steps and asked_alternatives == alternatives and body.finish_reason == earlier.finish_reason
            and body.human_completion == human and body.reason == stored_reason)


def _submit(*, assignment_id, annotator, client_id, body, total_time_ms, now) -> Submitted:
    ratings, finish_reason, alternative_ratings = body.ratings, body.finish_reason, body.alternative_ratings
    human_completion, reason = body.human_completion, body.reason
    assignment = (Assignment.objects.select_for_update(of=("self",))
                  .select_related("round", "task__round", "task__solution")
                  .filter(assignment_q(assignment_id), annotator_id=annotator.pk).first())
    if assignment is None:
        raise AssignmentNotFound(f"no assignment {assignment_id} of yours")
    if assignment.status == Assignment.Status.SUBMITTED:
        earlier = Annotation.objects.filter(pk=assignment.annotation_id, client_id=client_id).first()
        if earlier is not None:
            return _replay(earlier, assignment_id, body)
        raise LeaseConflict(f"assignment {assignment_id} was already submitted (with another client_id)")
    if assignment.status == Assignment.Status.EXPIRED or assignment.expires_at <= now:
        raise LeaseExpired(f"the lease on assignment {assignment_id} expired at {assignment.expires_at.isoformat()}")

    task = assignment.task
    rules = assignment.round if assignment.round_id else task.round  # a QC task follows its host round
    steps = task.solution.steps
    ratings_validate(ratings, n_steps=len(steps))
    finish_validate(finish_reason, ratings, n_steps=len(steps), reason=reason)
    error_step = len(ratings) - 1 if ratings and ratings[-1]["rating"] == -1 else None
    alternatives = (task.alternatives or {}).get(str(error_step), []) if error_step is not None else []
    rated_alternatives = alternatives_validate(alternative_ratings, alternatives=alternatives, error_step=error_step)
    human_validate(human_completion, rnd=rules, error_step=error_step)
    if reason is not None:
        text_check(reason, "reason")

    leased_ms = max(0, int((now - assignment.leased_at).total_seconds() * 1000))
    annotation = Annotation.objects.create(
        annotator_id=annotator.pk, solution_id=task.solution_id, problem_id=task.solution.problem_id,
        round_id=rules.pk if rules else None, phase=2, timestamp=now,
        is_quality_control=task.kind == Task.Kind.QC, is_screening=task.kind == Task.Kind.SCREENING,
        finish_reason=finish_reason,
        total_time_ms=min(max(total_time_ms, 0), leased_ms), selector_score=_selector_score(task), client_id=client_id)
    StepLabel.objects.bulk_create([
        StepLabel(annotation=annotation, index=i, chosen_completion=None if i == error_step else 0,
                  **(_human_fields(human_completion) if i == error_step and human_completion else {}))
        for i in range(len(ratings))])
    completions = [Completion(annotation=annotation, step_index=i, index=0, text=steps[i], rating=r["rating"],
                              flagged=r.get("flagged")) for i, r in enumerate(ratings)]
    for j, text in enumerate(alternatives):  # unrated alternatives keep PRM800K's null rating
        rating, flagged = rated_alternatives.get(j, (None, False))
        completions.append(Completion(annotation=annotation, step_index=error_step, index=j + 1, text=text,
                                      rating=rating, flagged=flagged))
    Completion.objects.bulk_create(completions)

    closed = Assignment.objects.filter(id=assignment.pk, status=Assignment.Status.LEASED).update(
        status=Assignment.Status.SUBMITTED, submitted_at=now, annotation=annotation, reason=reason)
    if closed != 1:  # cannot happen under the row lock; a loud failure beats a double count
        raise LeaseConflict(f"assignment {assignment_id} changed while it was being submitted")
    Task.objects.filter(id=task.pk).update(submitted=F("submitted") + 1)
    if task.gold_ratings is not None:  # only gold tasks are scored: a round task costs no quality query
        _score(annotation)
    if task.kind == Task.Kind.ROUND and wants_retrain(rules):
        # After commit, so the label is counted and the request is not held up by the check.
        transaction.on_commit(functools.partial(retrain_after_submission, round_id=rules.pk))
    return Submitted(annotation, created=True)


def _score(annotation):
    """Hand the annotation to quality control (gold scoring, screening verdicts) inside this transaction."""
    quality.annotation_scored(annotation=annotation)


def _human_fields(text):
    return {"human_text": text, "human_rating": None, "human_source": "human", "human_flagged": False}


# --- rules -----------------------------------------------------------------------------------------

def ratings_validate(ratings, *, n_steps):
    """Steps 0..k-1 in order, each rated -1, 0 or +1, nothing after the first -1."""
    for i, item in enumerate(ratings):
        step, rating = item["step"], item["rating"]
        if not 0 <= step < n_steps:
            raise InvalidInput(f"step {_short(step)} is out of range: the solution has {n_steps} steps "
                               f"(0 to {n_steps - 1})", field=f"ratings[{i}].step")
        if step != i:
            raise InvalidInput(f"ratings must list steps 0, 1, 2, ... in order: expected step {i}, got {step}",
                               field=f"ratings[{i}].step")
        if rating not in RATINGS:
            raise InvalidInput(f"a rating is -1, 0 or 1, got {_short(rating)}", field=f"ratings[{i}].rating")
        if i and ratings[i - 1]["rating"] == -1:
            raise InvalidInput(f"labeling stops at the first -1 (step {i - 1}): step {i} may not be rated",
                               field=f"ratings[{i}]")


def finish_validate(finish_reason, ratings, *, n_steps, reason):
    if finish_reason not in FinishReason.values:
        raise InvalidInput(f"finish_reason must be one of {', '.join(FinishReason.values)}, got {finish_reason!r}",
                           field="finish_reason")
    found_error = bool(ratings) and ratings[-1]["rating"] == -1
    complete = len(ratings) == n_steps and not found_error
    if found_error and finish_reason != FinishReason.FOUND_ERROR:
        raise InvalidInput(f"step {len(ratings) - 1} is rated -1, so finish_reason must be found_error",
                           field="finish_reason")
    if finish_reason == FinishReason.FOUND_ERROR and not found_error:
        raise InvalidInput("found_error needs the last rating to be -1", field="finish_reason")
    if complete and finish_reason != FinishReason.SOLUTION:
        raise InvalidInput(f"all {n_steps} steps are rated and none is -1, so finish_reason must be solution",
                           field="finish_reason")
    if finish_reason == FinishReason.SOLUTION and not complete:
        raise InvalidInput(f"solution needs all {n_steps} steps rated and none -1 ({len(ratings)} are rated)",
                           field="finish_reason")
    if finish_reason in STOPPED and not reason:
        raise InvalidInput(f"say why: a reason is required with finish_reason {finish_reason}", field="reason")


def alternatives_validate(alternative_ratings, *, alternatives, error_step) -> dict:
    """{alternative index: (rating, flagged)}; alternatives are only rated at the -1 step."""
    if alternative_ratings and not alternatives:
        where = "no step is rated -1" if error_step is None else f"the task has none at step {error_step}"
        raise InvalidInput(f"no alternatives to rate: {where}", field="alternative_ratings")
    rated = {}
    for k, item in enumerate(alternative_ratings):
        index, rating = item["index"], item["rating"]
        if not 0 <= index < len(alternatives):
            raise InvalidInput(f"index {_short(index)} is out of range: step {error_step} has {len(alternatives)} "
                               f"alternatives", field=f"alternative_ratings[{k}].index")
        if index in rated:
            raise InvalidInput(f"alternative {index} is rated twice", field=f"alternative_ratings[{k}].index")
        if rating not in RATINGS:
            raise InvalidInput(f"a rating is -1, 0 or 1, got {_short(rating)}",
                               field=f"alternative_ratings[{k}].rating")
        flagged = item.get("flagged")
        rated[index] = (rating, False if flagged is None else flagged)
    return rated


def human_validate(text, *, rnd, error_step):
    if not text:
        return
    if not (rnd and rnd.allow_human_completion):
        raise InvalidInput("this task does not take a human completion", field="human_completion")
    if error_step is None:
        raise InvalidInput("a human completion replaces the step rated -1; no step is rated -1",
                           field="human_completion")
    text_check(text, "human_completion")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _selector_score(task):
    """The score the round chose the solution by (a round task's priority is its serving order)."""
    chosen = None if task.round_id is None else (
        RoundSelection.objects.filter(round_id=task.round_id, solution_id=task.solution_id)
        .order_by().values_list("score", flat=True).first())  # one row at most: no join for the default ordering
    return task.priority if chosen is None else chosen  # a task queued by hand: its priority is its score
