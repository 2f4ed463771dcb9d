"""What annotators are served from a round: the mix in every prefix, no double work, a hidden control slice.

Selector scores are written straight onto the candidates (the selection does not care how a score was
made), so these rounds run without a model: every stage up to selection finds nothing to do.
"""
import random
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from labeling.models import Annotator, Assignment, RoundSelection, Task, VerifierScore
from labeling.services.annotation.accounts import annotator_create
from labeling.services.annotation.queue import queue_next, tasks_enqueue
from labeling.services.annotation.submission import annotation_submit
from labeling.services.rounds.stages import RoundParameters, round_start
from tests.api_client import api_as
from tests.label_factories import annotation_make
from tests.round_factories import make_candidates, register_selector


@pytest.fixture
def start(committed):
    return lambda **params: committed(round_start, params=RoundParameters(**params))


def scored_candidates(rng, *, n_problems, per_problem, wrong_every=2, prefix="p"):
    problems = make_candidates(n_problems=n_problems, per_problem=per_problem, wrong_every=wrong_every,
                               prefix=prefix)
    selector = register_selector("/nonexistent/selector-never-loaded")
    VerifierScore.objects.bulk_create([VerifierScore(solution=s, model_version=selector, score=rng.random())
                                       for p in problems for s in p.solutions.all()])
    return problems, selector


def annotators(*names):
    return [Annotator.objects.get(user=annotator_create(username=n, password=f"{n}-pw-long-enough").user)
            for n in names]


def serve_all(people, limit=1000):
    """Lease and submit in turn until nobody is served anything; the solution ids in the order served."""
    served, idle = [], 0
    turn = 0
    while idle < len(people) and len(served) < limit:
        person = people[turn % len(people)]
        turn += 1
        assignment = queue_next(annotator=person)
        if assignment is None:
            idle += 1
            continue
        idle = 0
        served.append((person.pk, assignment.task.solution_id))
        steps = assignment.task.solution.steps
        annotation_submit(assignment=assignment, annotator=person, client_id=uuid.uuid4(), finish_reason="solution",
                          ratings=[{"step": i, "rating": 1, "flagged": None} for i in range(len(steps))],
                          total_time_ms=1000)
    return served


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(6))
def test_every_prefix_served_keeps_the_rounds_mix(start, seed):
    rng = random.Random(seed)
    scored_candidates(rng, n_problems=rng.randint(3, 7), per_problem=rng.randint(4, 9),
                      wrong_every=rng.choice([2, 3]))
    round_ = start(per_problem=rng.randint(2, 4), wrong_fraction=rng.choice([0.5, 0.75, 0.8]),
                   control_fraction=rng.choice([0.0, 0.2]), seed=seed)
    assert round_.status == "done", round_.error
    reasons = dict(RoundSelection.objects.filter(round=round_).values_list("solution_id", "reason"))
    served = serve_all(annotators("ann1", "ann2", "ann3"))
    order = [reasons[sid] for _, sid in served]
    assert Counter(order) == Counter(r for r in reasons.values() if r != "qc")
    share = Counter(order)
    for n in range(1, len(order) + 1):
        seen = Counter(order[:n])
        for reason, total in share.items():
            assert abs(seen[reason] - n * total / len(order)) <= 1, (n, reason, order)
    # Round-robin over problems, highest score first within a problem and reason: each task served went to
    # a problem served least so far among those with picks of its reason left, and was that problem's best.
    rows = {sid: (pid, reason, score) for sid, pid, reason, score in RoundSelection.objects.filter(round=round_)
            .exclude(reason="qc").values_list("solution_id", "problem_id", "reason", "score")}
    left = dict(rows)
    served_per_problem = Counter()
    for _, sid in served:
        pid, reason, score = left.pop(sid)
        rivals = {p for p, r, _ in left.values() if r == reason} | {pid}
        assert served_per_problem[pid] == min(served_per_problem[p] for p in rivals)
        assert all(sc <= score for p, r, sc in left.values() if (p, r) == (pid, reason))
        served_per_problem[pid] += 1


@pytest.mark.django_db
def test_the_first_tasks_served_follow_a_three_to_one_request(start):
    scored_candidates(random.Random(1), n_problems=6, per_problem=8, wrong_every=2)
    round_ = start(per_problem=4, wrong_fraction=0.75)
    reasons = dict(RoundSelection.objects.filter(round=round_).values_list("solution_id", "reason"))
    order = [reasons[sid] for _, sid in serve_all(annotators("solo"))]
    for n in (4, 8, 12):
        assert order[:n].count("convincing_wrong") == n * 3 // 4


@pytest.mark.django_db
def test_a_round_never_selects_solutions_already_worked_on(start):
    problems, _ = scored_candidates(random.Random(2), n_problems=2, per_problem=6)
    (ann,) = annotators("early")
    labeled, leased, queued = [p.solutions.order_by("id")[0] for p in problems] + [problems[0].solutions.order_by("id")[1]]
    annotation_make(annotator=ann, solution=labeled, ratings=[1] * len(labeled.steps))
    leased_task = Task.objects.create(solution=leased, kind=Task.Kind.ROUND)
    Assignment.objects.create(task=leased_task, annotator=ann, status=Assignment.Status.LEASED,
                              leased_at=timezone.now(), expires_at=timezone.now() + timezone.timedelta(hours=1))
    Task.objects.create(solution=queued, kind=Task.Kind.ROUND, taken=1, submitted=0)  # an open task elsewhere
    round_ = start(per_problem=6, wrong_fraction=0.5)
    picked = set(RoundSelection.objects.filter(round=round_).values_list("solution_id", flat=True))
    assert picked and not picked & {labeled.pk, leased.pk, queued.pk}
    assert round_.stats["already_worked_on"] == 3
    relabel = start(per_problem=6, wrong_fraction=0.5, relabel=True)
    assert {labeled.pk, leased.pk, queued.pk} <= set(
        RoundSelection.objects.filter(round=relabel).values_list("solution_id", flat=True))


@pytest.mark.django_db
def test_labels_taken_before_a_round_are_never_served_again_to_the_same_annotator(start):
    problems, _ = scored_candidates(random.Random(3), n_problems=3, per_problem=4)
    early, other = annotators("early", "other")
    # `early` labels every solution of problem 0 outside any round (plain queue), and one imported label.
    tasks_enqueue(overlap=1)
    before = {sid for _, sid in serve_all([early], limit=4)}
    imported = problems[1].solutions.order_by("id")[0]
    annotation_make(annotator=early, solution=imported, ratings=[1] * len(imported.steps))
    Task.objects.filter(submitted=0).delete()  # the rest of the plain queue goes away; rounds decide now
    round_ = start(per_problem=4, wrong_fraction=0.5, overlap=2, relabel=True)
    picked = set(RoundSelection.objects.filter(round=round_).values_list("solution_id", flat=True))
    assert before | {imported.pk} <= picked  # relabel asked for more overlap on them
    served = serve_all([early, other])
    mine = [sid for who, sid in served if who == early.pk]
    assert not set(mine) & (before | {imported.pk})
    assert len(mine) == len(set(mine))
    assert {sid for who, sid in served if who == other.pk} == picked


@pytest.mark.django_db
def test_one_solution_in_two_tasks_reaches_one_person_once(start):
    scored_candidates(random.Random(4), n_problems=2, per_problem=4)
    first = start(per_problem=2, wrong_fraction=0.5)
    second = start(per_problem=2, wrong_fraction=0.5, relabel=True)
    both = set(RoundSelection.objects.filter(round=first).values_list("solution_id", flat=True)) & set(
        RoundSelection.objects.filter(round=second).values_list("solution_id", flat=True))
    assert both  # the second round picked the same solutions again (relabel)
    (solo,) = annotators("solo")
    served = [sid for _, sid in serve_all([solo])]
    assert len(served) == len(set(served))


@pytest.mark.django_db
@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_newer_rounds_are_served_first_unless_configured(start, settings, order):
    settings.STEPWISE_ROUND_ORDER = order
    scored_candidates(random.Random(5), n_problems=2, per_problem=6)
    old = start(per_problem=2, wrong_fraction=0.5)
    new = start(per_problem=2, wrong_fraction=0.5)
    served = serve_all(annotators("solo"))
    rounds = dict(RoundSelection.objects.values_list("solution_id", "round_id"))
    sequence = [rounds[sid] for _, sid in served]
    first, second = (new.pk, old.pk) if order == "newest" else (old.pk, new.pk)
    assert sequence == [first] * sequence.count(first) + [second] * sequence.count(second)


@pytest.mark.django_db
def test_the_control_slice_is_drawn_at_random_and_looks_like_any_task(start):
    scored_candidates(random.Random(6), n_problems=5, per_problem=8)
    round_ = start(per_problem=2, wrong_fraction=0.5, control_fraction=0.2)
    reasons = Counter(RoundSelection.objects.filter(round=round_).values_list("reason", flat=True))
    assert reasons["control"] == round(0.2 * 10 / 0.8) and round_.stats["selected"]["control"] == reasons["control"]
    # Not the leftovers by score: control picks are drawn uniformly from candidates not picked otherwise.
    control = set(RoundSelection.objects.filter(round=round_, reason="control").values_list("solution_id", flat=True))
    assert Task.objects.filter(round=round_, solution_id__in=control).count() == len(control)
    (person,) = annotators("viewer")
    client = api_as(person.user)
    payloads = {}
    while True:
        response = client.post("/api/queue/next/")
        if response.status_code == 204:
            break
        assert response.status_code == 200, response.content
        payload = response.json()
        sid = Assignment.objects.get(public_id=payload["assignment_id"]).task.solution_id
        kind = "control" if sid in control else "picked"
        payloads.setdefault(kind, payload)
        steps = len(payload["steps"])
        response = client.post(f"/api/assignments/{payload['assignment_id']}/submit/", {
            "client_id": str(uuid.uuid4()), "finish_reason": "solution", "total_time_ms": 500,
            "ratings": [{"step": i, "rating": 1} for i in range(steps)]}, format="json")
        assert response.status_code in (200, 201), response.content
        if len(payloads) == 2:
            break
    assert set(payloads) == {"control", "picked"}
    assert payloads["control"].keys() == payloads["picked"].keys()
    text = str(payloads["control"]).lower()
    assert "control" not in text and "reason" not in text and "score" not in text
