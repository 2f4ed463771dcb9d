"""50 annotators x 200 next/submit cycles at once on PostgreSQL: nothing over-leased, lost or doubled.

The annotators are threads spread over a few forked processes, each thread with its own database
connection, so the row locks, SKIP LOCKED and the compare-and-sets are exercised for real. Afterwards,
leases forced past their expiry are expired by eight threads at once, exactly once each, and their
tasks are served again. On a 2-core box the 10,000 cycles take about 100 s: they are CPU-bound
(Django ORM + PostgreSQL on the same two cores), see bench/RESULTS.md "## queue".
"""
import datetime as dt
import multiprocessing
import random
import threading
import time
import uuid
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import Count, Q
from django.utils import timezone

from labeling.models import Annotation, Annotator, Assignment, Problem, Solution, Task, text_sha256
from labeling.services.annotation.queue import leases_expire, queue_next
from labeling.services.annotation.submission import annotation_submit

ANNOTATORS, CYCLES, TASKS = 50, 200, 10_000
PROCESSES = 4  # x 12-13 annotator threads each (more processes only thrash 2 cores)


def queue_fill(n_tasks, seed=3):
    rng = random.Random(seed)
    problems = Problem.objects.bulk_create(
        [Problem(text=f"Problem {i}", text_hash=text_sha256(f"Problem {i}"), answer="7") for i in range(100)])
    solutions = []
    for i in range(n_tasks):
        steps = [f"Solution {i}, step {k}." for k in range(3)]
        solutions.append(Solution(problem=problems[i % 100], steps=steps, steps_hash=Solution.hash_steps(steps)))
    Solution.objects.bulk_create(solutions, batch_size=2000)
    Task.objects.bulk_create([Task(solution=s, priority=rng.random(), overlap=rng.choice((1, 3)))
                              for s in solutions], batch_size=2000)


def annotators_make(prefix, n):
    """Annotators past screening (the steady state: round and QC work only)."""
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{prefix}{i}") for i in range(n)])
    return Annotator.objects.bulk_create([Annotator(user=u, screening_passed=True) for u in users])


def cycle_payload(i):
    kind = i % 3
    if kind == 0:
        return {"ratings": [{"step": k, "rating": 1, "flagged": False} for k in range(3)], "finish_reason": "solution"}
    if kind == 1:
        return {"ratings": [{"step": 0, "rating": 0}, {"step": 1, "rating": -1}], "finish_reason": "found_error"}
    return {"ratings": [{"step": 0, "rating": 1}], "finish_reason": "give_up", "reason": "stuck"}


def run_threads(target, args_list):
    """Run target(*args) for each args in its own thread with its own connection; re-raise failures."""
    errors = []

    def guarded(*args):
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=guarded, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]


def run_processes(target, args_list, processes):
    """Spread target(*args) calls over forked processes (threads inside each, one connection per
    thread): one process alone would serialize on its GIL and leave the second core to PostgreSQL.
    Returns the list of what the calls returned."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    chunks = [args_list[i::processes] for i in range(processes)]

    def child(chunk):
        out = []

        def call(*args):
            out.append(target(*args))
        try:
            run_threads(call, chunk)
            results.put(("ok", out))
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            results.put(("error", repr(exc)))
        finally:
            connections.close_all()

    connections.close_all()  # a forked child must not share its parent's connection
    children = [context.Process(target=child, args=(chunk,)) for chunk in chunks if chunk]
    for p in children:
        p.start()
    collected = [results.get(timeout=600) for _ in children]
    for p in children:
        p.join()
    errors = [detail for status, detail in collected if status == "error"]
    assert not errors, errors[:5]
    return [item for _, out in collected for item in out]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_annotators_two_hundred_cycles_each(postgres, settings):
    settings.STEPWISE_QC_RATE = 0
    queue_fill(TASKS)
    annotators = annotators_make("worker", ANNOTATORS)

    def work(annotator):
        served = []
        for i in range(CYCLES):
            assignment = queue_next(annotator=annotator)
            assert assignment is not None, f"{annotator} got nothing at cycle {i}"
            result = annotation_submit(assignment=assignment, annotator=annotator, client_id=uuid.uuid4(),
                                       total_time_ms=1000, **cycle_payload(i))
            assert result.created
            served.append(assignment.task_id)
        return served

    started = time.perf_counter()
    submitted = Counter(task_id for served in run_processes(work, [(a,) for a in annotators], PROCESSES)
                        for task_id in served)
    seconds = time.perf_counter() - started

    total = ANNOTATORS * CYCLES
    assert sum(submitted.values()) == total
    assert Annotation.objects.count() == total                       # none lost, none doubled
    assert Annotation.objects.values("client_id").distinct().count() == total
    assert Assignment.objects.filter(status="submitted").count() == total
    assert Assignment.objects.exclude(status="submitted").count() == 0
    tasks = Task.objects.annotate(
        n_submitted=Count("assignments", filter=Q(assignments__status="submitted")),
        n_annotations=Count("assignments__annotation"))
    over = [t.pk for t in tasks if not (t.taken == t.submitted == t.n_submitted == t.n_annotations
                                        == submitted[t.pk] <= t.overlap)]
    assert over == []
    per_annotator = Assignment.objects.values("annotator").annotate(n=Count("id"), tasks=Count("task", distinct=True))
    assert {(row["n"], row["tasks"]) for row in per_annotator} == {(CYCLES, CYCLES)}
    print(f"\n{total} next+submit cycles by {ANNOTATORS} annotators in {PROCESSES} processes: {seconds:.1f} s")

    # Expiry: 20 fresh annotators lease the top open tasks; their leases are forced past expiry and
    # expired by eight threads at once: each slot comes back exactly once and is served again.
    late = annotators_make("late", 20)
    leases = [queue_next(annotator=a) for a in late]
    leased_tasks = Counter(a.task_id for a in leases)
    taken_before = dict(Task.objects.filter(pk__in=leased_tasks).values_list("pk", "taken"))
    Assignment.objects.filter(pk__in=[a.pk for a in leases]).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    expired, gate = [], threading.Barrier(8)

    def expire():
        gate.wait()  # all eight read the same overdue leases, then race on each compare-and-set
        expired.append(leases_expire(now=timezone.now()))

    run_threads(expire, [()] * 8)
    assert sum(expired) == 20
    assert Assignment.objects.filter(pk__in=[a.pk for a in leases], status="expired").count() == 20
    taken_after = dict(Task.objects.filter(pk__in=leased_tasks).values_list("pk", "taken"))
    assert {pk: taken_before[pk] - taken_after[pk] for pk in leased_tasks} == dict(leased_tasks)
    again = [queue_next(annotator=a) for a in annotators_make("again", 20)]
    assert Counter(a.task_id for a in again) == leased_tasks
