"""The queue service: order of service, overlap, screening, QC mixing, expiry, enqueue."""
import datetime as dt
import itertools
import math
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.utils import timezone

from labeling.models import Assignment, ModelVersion, Task, VerifierScore
from labeling.services.annotation.queue import (assignment_draft_save, assignment_get, leases_expire, qc_turn, queue_next,
                                               queue_summary, tasks_enqueue, tasks_open_for)
from labeling.errors import AssignmentNotFound, InvalidInput, LeaseConflict, LeaseExpired
from labeling.services.annotation.submission import annotation_submit
from tests.queue_factories import annotator_make, ratings, round_make, solution_make, task_make

pytestmark = pytest.mark.django_db


def submit_all_good(assignment):
    n = len(assignment.task.solution.steps)
    return annotation_submit(assignment=assignment, annotator=assignment.annotator, client_id=f"{assignment.pk:032x}",
                             ratings=ratings(*[1] * n), finish_reason="solution", total_time_ms=5).annotation


def kinds_served(annotator, n):
    """The kinds of the next `n` tasks served to `annotator`, each submitted all good before the next lease."""
    kinds = []
    for _ in range(n):
        a = queue_next(annotator=annotator)
        kinds.append(a.task.kind)
        submit_all_good(a)
    return kinds


def later(minutes):
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_it_serves_highest_priority_first_then_lowest_id(settings):
    settings.STEPWISE_QC_RATE = 0
    low, high, tie_first, tie_second = (task_make(priority=p) for p in (0.1, 0.9, 0.5, 0.5))
    served = []
    for _ in range(4):
        a = queue_next(annotator=annotator_make())
        served.append(a.task_id)
    assert served == [high.id, tie_first.id, tie_second.id, low.id]
    assert queue_next(annotator=annotator_make()) is None


def test_it_resumes_a_live_lease():
    task_make(priority=1)
    task_make(priority=0)
    bob = annotator_make()
    first = queue_next(annotator=bob)
    again = queue_next(annotator=bob)
    assert again.pk == first.pk and Assignment.objects.filter(annotator=bob).count() == 1
    assert Task.objects.get(pk=first.task_id).taken == 1


def test_it_leases_a_task_to_overlap_annotators_at_most_and_never_twice_to_one():
    task = task_make(overlap=3)
    people = [annotator_make() for _ in range(4)]
    leases = [queue_next(annotator=p) for p in people]
    assert [a.task_id if a else None for a in leases] == [task.id, task.id, task.id, None]
    submit_all_good(leases[0])
    task.refresh_from_db()
    assert (task.taken, task.submitted) == (3, 1)


def test_nobody_gets_the_same_task_twice_even_with_slots_free():
    task = task_make(overlap=3)
    bob = annotator_make()
    submit_all_good(queue_next(annotator=bob))
    assert Task.objects.filter(pk=task.pk, taken=1).exists()  # two slots still free
    assert queue_next(annotator=bob) is None
    assert queue_next(annotator=annotator_make()).task_id == task.id


def test_a_submitted_slot_stays_taken_and_an_expired_one_comes_back():
    task = task_make(overlap=2)
    alice_, bob_, carol = annotator_make(), annotator_make(), annotator_make()
    submit_all_good(queue_next(annotator=alice_))
    lease = queue_next(annotator=bob_)
    assert queue_next(annotator=carol) is None
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    again = queue_next(annotator=carol)  # expiry runs first, then carol gets bob's slot
    assert again.task_id == task.id
    assert Assignment.objects.get(pk=lease.pk).status == Assignment.Status.EXPIRED
    task.refresh_from_db()
    assert (task.taken, task.submitted) == (2, 1)
    assert queue_next(annotator=bob_) is None  # bob had it once: never again


def test_leases_expire_returns_each_slot_exactly_once():
    tasks = [task_make(overlap=2) for _ in range(3)]
    leases = [queue_next(annotator=annotator_make()) for _ in range(3)]
    assert leases_expire(now=later(29)) == 0
    assert leases_expire(now=later(31)) == 3
    assert leases_expire(now=later(31)) == 0
    assert [Task.objects.get(pk=t.pk).taken for t in tasks] == [0, 0, 0]
    assert set(Assignment.objects.values_list("status", flat=True)) == {"expired"}


def test_leases_expire_in_bounded_batches():
    for _ in range(5):
        task_make()
        queue_next(annotator=annotator_make())
    assert leases_expire(now=later(31), limit=2) == 2
    assert leases_expire(now=later(31)) == 3


def test_lease_length_comes_from_settings_or_the_round(settings):
    settings.STEPWISE_LEASE_MINUTES = 7
    task_make(priority=1)
    task_make(priority=0, round=round_make(parameters={"lease_minutes": 90}))
    first, second = queue_next(annotator=annotator_make()), queue_next(annotator=annotator_make())
    assert first.expires_at - first.leased_at == dt.timedelta(minutes=7)
    assert second.expires_at - second.leased_at == dt.timedelta(minutes=90)


def test_screening_comes_first_and_all_of_it():
    round_task = task_make(priority=5)
    screens = [task_make(kind=Task.Kind.SCREENING, priority=p) for p in (0, 1)]
    bob = annotator_make()
    a = queue_next(annotator=bob)
    assert a.task_id == screens[1].id
    submit_all_good(a)
    b = queue_next(annotator=bob)
    assert b.task_id == screens[0].id
    submit_all_good(b)
    assert queue_next(annotator=bob).task_id == round_task.id


def test_an_expired_screening_lease_is_offered_again():
    screen = task_make(kind=Task.Kind.SCREENING)
    task_make()
    bob = annotator_make()
    lease = queue_next(annotator=bob)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1), draft={"x": 1})
    again = queue_next(annotator=bob)
    assert (again.pk, again.task_id, again.status, again.draft) == (lease.pk, screen.id, "leased", {"x": 1})
    assert Task.objects.get(pk=screen.pk).taken == 1


def test_failed_screening_gets_nothing_until_an_admin_clears():
    task_make()
    bob = annotator_make()
    bob.screening_passed = False
    bob.save()
    assert queue_next(annotator=bob) is None
    bob.cleared_by_admin = True
    bob.save()
    assert queue_next(annotator=bob) is not None


def labeler_for(turns, rate):
    """A labeler UUID whose first leases at `rate` fall as `turns` (True = QC turn) under the seeded draw."""
    return next(u for u in (uuid.UUID(int=i) for i in itertools.count())
                if [qc_turn(u, n, rate) for n in range(1, len(turns) + 1)] == list(turns))


def qc_positions(labeler, rate, leases):
    return [n for n in range(1, leases + 1) if qc_turn(labeler, n, rate)]


def test_qc_turns_are_drawn_at_the_rate():
    rate, leases = 0.1, 2000
    share = len(qc_positions(uuid.uuid4(), rate, leases)) / leases
    # 4.5 binomial standard deviations: a correct draw fails about once in 150,000 runs
    assert abs(share - rate) <= 4.5 * math.sqrt(rate * (1 - rate) / leases)
    assert qc_positions(uuid.uuid4(), 0.0, leases) == [] and len(qc_positions(uuid.uuid4(), 1.0, 100)) == 100


def test_qc_turns_are_not_periodic_and_differ_between_annotators():
    bob, carol = uuid.uuid4(), uuid.uuid4()
    mine, theirs = qc_positions(bob, 0.1, 2000), qc_positions(carol, 0.1, 2000)
    assert mine != theirs and len(set(mine) ^ set(theirs)) > 200
    assert len({b - a for a, b in zip(mine, mine[1:])}) > 5  # the gaps vary: no period to count
    assert qc_positions(bob, 0.1, 2000) == mine  # seeded: the same annotator draws the same turns


@pytest.mark.parametrize("rate", [0.25, 0.5])
def test_qc_is_mixed_in_on_the_annotators_seeded_turns(settings, rate):
    settings.STEPWISE_QC_RATE = rate
    for p in range(10):
        task_make(priority=p)
    qc = [task_make(kind=Task.Kind.QC) for _ in range(2)]
    # three QC turns in twelve leases, at uneven gaps: the third finds both QC tasks done and gets a round task
    turns = [n in (2, 5, 7) for n in range(1, 13)]
    bob = annotator_make()
    bob.labeler = labeler_for(turns, rate)
    bob.save()
    expected = ["qc" if n in (2, 5) else "round" for n in range(1, 13)]
    assert kinds_served(bob, 12) == expected
    assert Task.objects.filter(pk__in=[t.pk for t in qc], taken=1).count() == 2


def test_qc_rate_comes_from_the_round_of_the_task_served(settings):
    settings.STEPWISE_QC_RATE = 0
    rnd = round_make(qc_rate=0.5)
    for _ in range(4):
        task_make(round=rnd)
    task_make(kind=Task.Kind.QC)
    task_make(kind=Task.Kind.QC)
    bob = annotator_make()
    bob.labeler = labeler_for([False, True, False, True], 0.5)
    bob.save()
    assert kinds_served(bob, 4) == ["round", "qc", "round", "qc"]


def test_a_qc_task_follows_the_rules_of_the_round_it_is_mixed_into(settings):
    settings.STEPWISE_QC_RATE = 0
    rnd = round_make(qc_rate=1.0, show_answer_hint=False, allow_human_completion=True,
                     parameters={"lease_minutes": 90})
    task_make(round=rnd)
    qc = task_make(kind=Task.Kind.QC)
    lease = queue_next(annotator=annotator_make())
    assert (lease.task_id, lease.round_id) == (qc.id, rnd.id)
    assert lease.expires_at - lease.leased_at == dt.timedelta(minutes=90)
    annotation = annotation_submit(assignment=lease, annotator=lease.annotator, client_id=uuid.uuid4(),
                                   ratings=ratings(1, 1, -1), finish_reason="found_error", total_time_ms=5,
                                   human_completion="allowed: the round takes them")
    assert annotation.annotation.round_id == rnd.id and annotation.annotation.is_quality_control


def test_qc_is_never_served_alone(settings):
    settings.STEPWISE_QC_RATE = 1.0
    task_make(kind=Task.Kind.QC)
    assert queue_next(annotator=annotator_make()) is None


def test_assignment_get_refuses_other_annotators_and_expired_leases():
    task_make()
    bob, carol = annotator_make(), annotator_make()
    lease = queue_next(annotator=bob)
    assert assignment_get(assignment_id=lease.pk, annotator=bob).pk == lease.pk
    with pytest.raises(AssignmentNotFound):
        assignment_get(assignment_id=lease.pk, annotator=carol)
    with pytest.raises(LeaseExpired):
        assignment_get(assignment_id=lease.pk, annotator=bob, now=later(31))


def test_drafts_belong_to_the_lease_holder_while_the_lease_lasts():
    task_make()
    bob, carol = annotator_make(), annotator_make()
    lease = queue_next(annotator=bob)
    saved = assignment_draft_save(assignment_id=lease.pk, annotator=bob, draft={"ratings": [1, 0]})
    assert saved.draft == {"ratings": [1, 0]} and saved.draft_saved_at is not None
    with pytest.raises(AssignmentNotFound):
        assignment_draft_save(assignment_id=lease.pk, annotator=carol, draft={})
    with pytest.raises(LeaseExpired):
        assignment_draft_save(assignment_id=lease.pk, annotator=bob, draft={}, now=later(31))
    for bad in ([1], "x", {"a": "\x00"}, {"a": "\ud800"}, {"a": float("nan")}, {"x" * 70_000: 1}):
        with pytest.raises(InvalidInput):
            assignment_draft_save(assignment_id=lease.pk, annotator=bob, draft=bad)
    submit_all_good(lease)
    with pytest.raises(LeaseConflict):
        assignment_draft_save(assignment_id=lease.pk, annotator=bob, draft={})


def test_queue_summary_counts_tasks_and_leases(settings):
    settings.STEPWISE_QC_RATE = 0  # the lease must be the round task (QC turns are drawn at random)
    task_make(overlap=2)
    task_make(kind=Task.Kind.QC)
    served = queue_next(annotator=annotator_make())
    summary = queue_summary()
    # The first lease is a QC turn or not at random (per annotator): count whichever was served.
    if served.task.kind == Task.Kind.QC:
        assert summary["tasks"]["round"] == {"tasks": 1, "open": 1, "slots_taken": 0, "submitted": 0}
        assert summary["tasks"]["qc"]["slots_taken"] == 1
    else:
        assert summary["tasks"]["round"] == {"tasks": 1, "open": 1, "slots_taken": 1, "submitted": 0}
    assert summary["assignments"]["live"] == 1


def test_enqueue_queues_each_solution_once_by_latest_verifier_score(capsys):
    old, new = (ModelVersion.objects.create(name=n, kind="prm") for n in ("old", "new"))
    scored, unscored, already = solution_make(), solution_make(), solution_make()
    VerifierScore.objects.create(solution=scored, model_version=old, score=0.2)
    VerifierScore.objects.create(solution=scored, model_version=new, score=0.7)
    task_make(solution=already, kind=Task.Kind.QC)
    call_command("enqueue", "--overlap", "3")
    assert "queued 2 solutions (overlap 3)" in capsys.readouterr().out
    tasks = {t.solution_id: t for t in Task.objects.filter(kind="round")}
    assert set(tasks) == {scored.id, unscored.id}
    assert (tasks[scored.id].priority, tasks[unscored.id].priority) == (0.7, 0.0)
    assert {(t.round_id, t.overlap) for t in tasks.values()} == {(None, 3)}
    assert tasks_enqueue() == 0
    with pytest.raises(CommandError, match="overlap"):
        call_command("enqueue", "--overlap", "0")


def test_the_queue_reads_the_open_task_index_on_postgres(postgres):
    """With the top of a large queue full, the next task is still an index read, not a scan."""
    bob = annotator_make()
    solutions = [solution_make(n_steps=1) for _ in range(2000)]
    Task.objects.bulk_create([Task(solution=s, priority=i / 2000, overlap=1) for i, s in enumerate(solutions)])
    Task.objects.filter(priority__gte=0.5).update(taken=F("overlap"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_task")
        cursor.execute("ANALYZE labeling_assignment")
    plan = tasks_open_for(bob.pk, Task.Kind.ROUND)[:1].explain()
    assert "task_open_queue" in plan and "Seq Scan on labeling_task" not in plan, plan
    assert queue_next(annotator=bob).task.priority == pytest.approx(999 / 2000)
