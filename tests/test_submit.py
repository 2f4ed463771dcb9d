"""Submitting: PRM800K phase-2 storage, export round trip, idempotency, the rules, all-or-nothing."""
import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone

from labeling.formats import prm800k
from labeling.models import Annotation, Assignment, Completion, StepLabel, Task
from labeling.services.quality import gold as quality
from labeling.services.data.prm800k_export import ExportFilters, prm800k_lines
from labeling.services.annotation.queue import queue_next
from labeling.errors import AssignmentNotFound, InvalidInput, LeaseConflict, LeaseExpired
from labeling.services.annotation.submission import annotation_submit
from tests.dbstate import snapshot
from tests.queue_factories import annotator_make, ratings, round_make, task_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def lease(settings):
    """Bob's lease on a 5-step solution with two alternatives at step 2, in a round taking human text."""
    settings.STEPWISE_QC_RATE = 0
    rnd = round_make(allow_human_completion=True)
    task_make(n_steps=5, priority=0.25, round=rnd, alternatives={"2": ["Alt A", "Alt B"], "4": ["Alt C"]})
    return queue_next(annotator=annotator_make())


def submit(lease, **kw):
    kw.setdefault("client_id", uuid.uuid4())
    kw.setdefault("ratings", ratings(1, 1, 1, 1, 1))
    kw.setdefault("finish_reason", "solution")
    kw.setdefault("total_time_ms", 1000)
    return annotation_submit(assignment=lease, annotator=lease.annotator, **kw)


def exported(annotation):
    lines = [line for line, _ in prm800k_lines(ExportFilters())]
    assert len(lines) == Annotation.objects.count()
    line = lines[list(Annotation.objects.order_by("id").values_list("id", flat=True)).index(annotation.pk)]
    prm800k.parse(json.loads(line))  # raises on anything PRM800K does not allow
    return json.loads(line)


def test_found_error_is_stored_and_exported_as_prm800k_phase_2(lease):
    result = submit(lease, ratings=ratings(1, 0, -1), finish_reason="found_error", total_time_ms=4321,
                    alternative_ratings=[{"index": 1, "rating": 1, "flagged": False},
                                         {"index": 0, "rating": -1, "flagged": True}],
                    human_completion="Step 2, done right.")
    assert result.created
    line = exported(result.annotation)
    steps = lease.task.solution.steps
    assert line["labeler"] == str(lease.annotator.labeler)
    assert (line["generation"], line["is_quality_control_question"], line["is_initial_screening_question"]) == (
        lease.task.round.number, False, False)
    assert line["question"]["pre_generated_steps"] == steps
    assert line["question"]["pre_generated_verifier_score"] == 0.25
    assert line["question"]["ground_truth_answer"] == "42"
    assert line["label"]["finish_reason"] == "found_error" and 0 <= line["label"]["total_time"] <= 4321
    assert line["label"]["steps"] == [
        {"completions": [{"text": steps[0], "rating": 1, "flagged": False}], "human_completion": None,
         "chosen_completion": 0},
        {"completions": [{"text": steps[1], "rating": 0, "flagged": False}], "human_completion": None,
         "chosen_completion": 0},
        {"completions": [{"text": steps[2], "rating": -1, "flagged": False},
                         {"text": "Alt A", "rating": -1, "flagged": True},
                         {"text": "Alt B", "rating": 1, "flagged": False}],
         "human_completion": {"text": "Step 2, done right.", "rating": None, "source": "human", "flagged": False},
         "chosen_completion": None},
    ]
    a = Assignment.objects.get(pk=lease.pk)
    assert (a.status, a.annotation_id) == ("submitted", result.annotation.pk) and a.submitted_at is not None
    assert Task.objects.filter(pk=lease.task_id, taken=1, submitted=1).exists()


def test_a_solution_rated_through_and_unrated_alternatives(lease):
    steps = lease.task.solution.steps
    line = exported(submit(lease, ratings=[{"step": i, "rating": 1} for i in range(5)]).annotation)
    assert [s["completions"] for s in line["label"]["steps"]] == [
        [{"text": t, "rating": 1, "flagged": None}] for t in steps]  # flagged not sent: null, as in PRM800K
    assert {s["chosen_completion"] for s in line["label"]["steps"]} == {0}


def test_alternatives_left_unrated_keep_a_null_rating(lease):
    line = exported(submit(lease, ratings=ratings(1, 1, -1), finish_reason="found_error").annotation)
    assert [(c["text"], c["rating"]) for c in line["label"]["steps"][2]["completions"][1:]] == [
        ("Alt A", None), ("Alt B", None)]


def test_give_up_keeps_its_reason_and_stops_where_it_stopped(lease):
    result = submit(lease, ratings=ratings(1), finish_reason="give_up", reason="too long for me")
    assert Assignment.objects.get(pk=lease.pk).reason == "too long for me"
    assert len(exported(result.annotation)["label"]["steps"]) == 1


def test_fields_of_the_annotation(lease):
    before = timezone.now()
    annotation = submit(lease, total_time_ms=10 ** 30).annotation
    assert annotation.phase == 2 and annotation.round_id == lease.task.round_id
    assert annotation.solution_id == lease.task.solution_id and annotation.problem_id == lease.task.solution.problem_id
    assert annotation.selector_score == 0.25 and annotation.timestamp >= before
    assert annotation.total_time_ms <= (annotation.timestamp - lease.leased_at).total_seconds() * 1000


@pytest.mark.parametrize("kind,flag", [(Task.Kind.QC, "is_quality_control"), (Task.Kind.SCREENING, "is_screening")])
def test_gold_task_annotations_say_what_they_were(settings, kind, flag):
    settings.STEPWISE_QC_RATE = 1.0  # every lease a QC turn
    task_make()
    task_make(kind=kind)
    lease = queue_next(annotator=annotator_make())
    assert lease.task.kind == kind
    annotation = submit(lease, ratings=ratings(1, 1, 1, 1)).annotation
    other = ({"is_quality_control", "is_screening"} - {flag}).pop()
    assert getattr(annotation, flag) and not getattr(annotation, other)
    assert exported(annotation)["is_quality_control_question" if kind == "qc" else "is_initial_screening_question"]


def test_negative_time_is_clamped_to_zero(lease):
    assert submit(lease, total_time_ms=-100).annotation.total_time_ms == 0


def test_a_replay_returns_the_same_annotation_and_writes_nothing(lease):
    client_id = uuid.uuid4()
    body = dict(ratings=ratings(1, 0, -1), finish_reason="found_error", human_completion="Mine instead.",
                alternative_ratings=[{"index": 1, "rating": 1, "flagged": True}])
    first = submit(lease, client_id=client_id, **body)
    state = snapshot()
    again = submit(lease, client_id=str(client_id), total_time_ms=1, **body)  # the time was clamped: not compared
    assert (again.created, again.annotation.pk) == (False, first.annotation.pk)
    assert snapshot() == state


@pytest.mark.parametrize("change", [
    dict(ratings=ratings(1, 0, -1, flagged=True)),
    dict(ratings=ratings(1, 1, -1)),
    dict(ratings=ratings(1, 0, 0, 0, 1), finish_reason="solution", human_completion=None, alternative_ratings=None),
    dict(human_completion="Another text."),
    dict(alternative_ratings=[{"index": 1, "rating": 0, "flagged": True}]),
    dict(alternative_ratings=[]),
    dict(finish_reason="give_up", reason="stuck"),
])
def test_a_replay_with_another_body_conflicts_and_writes_nothing(lease, change):
    client_id = uuid.uuid4()
    body = dict(ratings=ratings(1, 0, -1), finish_reason="found_error", human_completion="Mine instead.",
                alternative_ratings=[{"index": 1, "rating": 1, "flagged": True}])
    submit(lease, client_id=client_id, **body)
    state = snapshot()
    with pytest.raises(LeaseConflict) as exc:
        submit(lease, client_id=client_id, **{**body, **change})
    assert exc.value.field == "client_id" and snapshot() == state


def test_a_replay_is_honoured_after_the_lease_would_have_expired(lease):
    client_id = uuid.uuid4()
    first = submit(lease, client_id=client_id)
    later = timezone.now() + dt.timedelta(hours=2)
    assert submit(lease, client_id=client_id, now=later).annotation.pk == first.annotation.pk


def test_a_client_id_used_for_another_assignment_conflicts(lease):
    client_id = uuid.uuid4()
    submit(lease, client_id=client_id)
    task_make()
    other = queue_next(annotator=lease.annotator)
    with pytest.raises(LeaseConflict) as exc:
        annotation_submit(assignment=other, annotator=other.annotator, client_id=client_id,
                          ratings=ratings(1, 1, 1, 1), finish_reason="solution", total_time_ms=1)
    assert exc.value.field == "client_id"


def test_a_second_submission_with_a_new_client_id_conflicts(lease):
    submit(lease)
    with pytest.raises(LeaseConflict):
        submit(lease)


def test_an_expired_lease_refuses(lease):
    with pytest.raises(LeaseExpired):
        submit(lease, now=lease.expires_at)
    Assignment.objects.filter(pk=lease.pk).update(status="expired")
    with pytest.raises(LeaseExpired):
        submit(lease)


def test_someone_elses_assignment_is_not_found(lease):
    with pytest.raises(AssignmentNotFound):
        annotation_submit(assignment=lease.pk, annotator=annotator_make(), client_id=uuid.uuid4(),
                          ratings=ratings(1, 1, 1, 1, 1), finish_reason="solution", total_time_ms=1)


INVALID = [
    ("ratings[1].step", dict(ratings=[{"step": 0, "rating": 1}, {"step": 2, "rating": 1}])),
    ("ratings[0].step", dict(ratings=[{"step": 1, "rating": 1}])),
    ("ratings[0].step", dict(ratings=[{"step": -1, "rating": 1}])),
    ("ratings[5].step", dict(ratings=ratings(1, 1, 1, 1, 1, 1))),
    ("ratings[1].step", dict(ratings=[{"step": 0, "rating": 1}, {"step": 10 ** 40, "rating": 1}])),
    ("ratings[2].rating", dict(ratings=ratings(1, 1, 2, 1, 1))),
    ("ratings[3]", dict(ratings=ratings(1, 1, -1, 1), finish_reason="found_error")),
    ("finish_reason", dict(finish_reason="done")),
    ("finish_reason", dict(ratings=ratings(1, -1), finish_reason="give_up", reason="x")),
    ("finish_reason", dict(ratings=ratings(1, 1), finish_reason="found_error")),
    ("finish_reason", dict(ratings=ratings(1, 1), finish_reason="solution")),
    ("finish_reason", dict(ratings=ratings(1, 1, 1, 1, 1), finish_reason="give_up", reason="x")),
    ("reason", dict(ratings=ratings(1), finish_reason="bad_problem")),
    ("reason", dict(ratings=ratings(1), finish_reason="give_up", reason="   ")),
    ("reason", dict(ratings=ratings(1), finish_reason="give_up", reason="nul \x00")),
    ("alternative_ratings", dict(alternative_ratings=[{"index": 0, "rating": 1}])),
    ("alternative_ratings", dict(ratings=ratings(-1), finish_reason="found_error",
                                 alternative_ratings=[{"index": 0, "rating": 1}])),
    ("alternative_ratings[0].index", dict(ratings=ratings(1, 1, -1), finish_reason="found_error",
                                          alternative_ratings=[{"index": 2, "rating": 1}])),
    ("alternative_ratings[1].index", dict(ratings=ratings(1, 1, -1), finish_reason="found_error",
                                          alternative_ratings=[{"index": 0, "rating": 1}, {"index": 0, "rating": 1}])),
    ("alternative_ratings[0].rating", dict(ratings=ratings(1, 1, -1), finish_reason="found_error",
                                           alternative_ratings=[{"index": 0, "rating": 5}])),
    ("human_completion", dict(human_completion="no error was found")),
    ("human_completion", dict(ratings=ratings(-1), finish_reason="found_error", human_completion="\ud800")),
    ("client_id", dict(client_id="not-a-uuid")),
]


@pytest.mark.parametrize("field,change", INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_invalid_submissions_name_the_field_and_write_nothing(lease, field, change):
    state = snapshot()
    with pytest.raises(InvalidInput) as exc:
        submit(lease, **change)
    assert exc.value.field == field, exc.value.message
    assert snapshot() == state


def test_human_completions_only_where_the_round_takes_them(settings):
    settings.STEPWISE_QC_RATE = 0
    task_make(round=round_make(allow_human_completion=False))
    lease = queue_next(annotator=annotator_make())
    with pytest.raises(InvalidInput) as exc:
        submit(lease, ratings=ratings(-1), finish_reason="found_error", human_completion="better")
    assert exc.value.field == "human_completion"


def test_quality_control_scores_inside_the_transaction(lease, monkeypatch):
    Task.objects.filter(pk=lease.task_id).update(gold_ratings=[1] * 5)  # only a task with gold is scored
    seen = []
    monkeypatch.setattr(quality, "annotation_scored", lambda *, annotation: seen.append(annotation.pk))
    result = submit(lease)
    assert seen == [result.annotation.pk]
    submit(lease, client_id=result.annotation.client_id)
    assert seen == [result.annotation.pk]  # a replay is not scored again


def test_a_failure_after_the_first_write_leaves_nothing_behind(lease, monkeypatch):
    def boom(*, annotation):
        raise RuntimeError("scoring failed")
    monkeypatch.setattr(quality, "annotation_scored", boom)
    Task.objects.filter(pk=lease.task_id).update(gold_ratings=[1] * 5)  # only a task with gold is scored
    state = snapshot()
    with pytest.raises(RuntimeError):
        submit(lease)
    assert snapshot() == state
    assert not StepLabel.objects.exists() and not Completion.objects.exists()
