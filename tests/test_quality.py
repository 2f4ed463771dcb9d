"""QC and screening: gold validation, gold tasks, scoring submissions, screening verdicts, clearing."""
import json

import pytest
from django.core.management import CommandError, call_command

from labeling.errors import DataError
from labeling.models import Annotator, Problem, Solution, Task
from labeling.services.quality.gold import (GOLD_TASK_OVERLAP, annotation_scored, annotators_clear, gold_validate,
                                       qc_task_create)
from tests import factories_quality as f
from tests.dbstate import snapshot


def scored(task, annotator, ratings):
    annotation = f.submit(task, annotator, ratings)
    score = annotation_scored(annotation=annotation)
    annotator.refresh_from_db()
    return annotation, score


@pytest.fixture
def bob_annotator(bob):
    return bob.annotator


@pytest.mark.parametrize("gold, field", [
    ([], "gold"),
    ("1,1,1,1", "gold"),
    ([1, 2, 1, 1], "gold[1]"),
    ([1, True, 1, 1], "gold[1]"),
    ([1.0, 1, 1, 1], "gold[0]"),
    ([1, -1, 1], "gold[2]"),
    ([1, 1, 1, 1, 1], "gold"),
    ([1, 0], "gold"),
])
def test_it_rejects_bad_gold(gold, field):
    with pytest.raises(DataError) as info:
        gold_validate(gold, 4)
    assert info.value.field == field


@pytest.mark.parametrize("gold", [[1, 0, -1], [-1], [1, 1, 0, 1], [1, 1, 1, -1]])
def test_it_accepts_gold_up_to_the_first_error_or_over_every_step(gold):
    assert gold_validate(gold, 4) == gold


@pytest.mark.django_db
def test_it_creates_one_gold_task_per_solution_and_kind():
    solution = f.solution(3)
    task = qc_task_create(solution=solution, gold_ratings=[1, -1], alternatives={"1": ["A better step."]})
    assert (task.kind, task.gold_ratings, task.round, task.overlap) == ("qc", [1, -1], None, GOLD_TASK_OVERLAP)
    screening = qc_task_create(solution=solution, gold_ratings=[1, 1, 1], kind="screening")
    assert screening.kind == "screening"
    with pytest.raises(DataError, match="already has qc task"):
        qc_task_create(solution=solution, gold_ratings=[1, 1, 1])
    with pytest.raises(DataError) as info:
        qc_task_create(solution=f.solution(3), gold_ratings=[1, 1, 1], kind="round")
    assert info.value.field == "kind"
    with pytest.raises(DataError) as info:
        qc_task_create(solution=f.solution(3), gold_ratings=[1, 1, 1], alternatives={"3": ["past the end"]})
    assert info.value.field == "alternatives.3"


@pytest.mark.django_db
def test_it_scores_qc_answers_and_keeps_running_aggregates(bob_annotator):
    first = f.task(4, kind="qc", gold=[1, 0, 1, -1])
    annotation, score = scored(first, bob_annotator, [1, 1, 1, -1])
    # 3 of 4 gold steps equal (gold's neutral step 1 rated +1 is a disagreement); the first error found.
    assert (score.step_agreement, score.first_error_match) == (0.75, True)
    annotation.refresh_from_db()
    assert (annotation.gold_step_agreement, annotation.gold_first_error_match) == (0.75, True)
    a = bob_annotator
    assert (a.qc_count, a.qc_step_agreement, a.qc_first_error_agreement, a.qc_score) == (1, 0.75, 1.0, 0.875)

    second = f.task(3, kind="qc", gold=[1, 1, 1])
    _, score = scored(second, bob_annotator, [1, -1])  # a false alarm at step 1
    assert (score.step_agreement, score.first_error_match) == (0.5, False)
    assert (a.qc_count, a.qc_step_agreement, a.qc_first_error_agreement) == (2, 0.625, 0.5)
    assert a.qc_score == pytest.approx(0.5625)

    annotation_scored(annotation=annotation)  # scoring again changes nothing
    a.refresh_from_db()
    assert (a.qc_count, a.qc_step_agreement, a.qc_first_error_agreement) == (2, 0.625, 0.5)


@pytest.mark.django_db
def test_the_callers_annotator_is_kept_current(bob_annotator, settings):
    settings.STEPWISE_SCREENING_PASS = 0.8
    annotation = f.submit(f.task(3, kind="screening", gold=[1, 1, 1]), bob_annotator, [1, 1, 1])
    annotation_scored(annotation=annotation)
    assert (annotation.annotator.screening_score, annotation.annotator.screening_passed) == (1.0, True)


@pytest.mark.django_db
def test_neutral_is_not_positive_and_giving_up_finds_no_error(bob_annotator):
    _, neutral = scored(f.task(3, kind="qc", gold=[0, 0, 0]), bob_annotator, [1, 1, 1])
    assert (neutral.step_agreement, neutral.first_error_match) == (0.0, True)
    _, gave_up = scored(f.task(3, kind="qc", gold=[1, 1, 1]), bob_annotator, [1])
    assert (gave_up.step_agreement, gave_up.first_error_match) == (1.0, False)
    _, nothing = scored(f.task(3, kind="qc", gold=[1, -1]), bob_annotator, [])
    assert (nothing.step_agreement, nothing.first_error_match) == (None, False)
    # Step agreement averages the two annotations that rated gold steps; first-error agreement all three.
    assert bob_annotator.qc_count == 3
    assert bob_annotator.qc_step_agreement == 0.5
    assert bob_annotator.qc_first_error_agreement == pytest.approx(1 / 3)


@pytest.mark.django_db
def test_round_tasks_and_imported_annotations_are_not_scored(bob_annotator):
    _, score = scored(f.task(3), bob_annotator, [1, 1, -1])
    assert score is None
    assert (bob_annotator.qc_count, bob_annotator.qc_score, bob_annotator.screening_passed) == (0, None, None)
    annotation = f.submit(f.task(3, kind="qc", gold=[1, 1, 1]), bob_annotator, [1, 1, 1])
    annotation.assignment.delete()
    assert annotation_scored(annotation=annotation) is None


@pytest.mark.django_db
@pytest.mark.parametrize("threshold, passed", [(0.9375, True), (0.94, False), (0.5, True)])
def test_screening_verdict_waits_for_every_screening_task(bob_annotator, settings, threshold, passed):
    settings.STEPWISE_SCREENING_PASS = threshold
    perfect = f.task(3, kind="screening", gold=[1, 0, -1])
    neutral_slip = f.task(4, kind="screening", gold=[1, 1, 1, 1])
    scored(perfect, bob_annotator, [1, 0, -1])
    assert bob_annotator.screening_passed is None and bob_annotator.screening_score == 1.0
    scored(neutral_slip, bob_annotator, [1, 1, 1, 0])
    # step agreement (1 + 3/4) / 2 = 0.875, first error 1.0 -> score 0.9375
    assert bob_annotator.screening_score == 0.9375
    assert bob_annotator.screening_passed is passed
    assert bob_annotator.qc_count == 0, "screening answers are not QC answers"


@pytest.mark.django_db
def test_failing_screening_then_being_cleared(bob_annotator, settings):
    settings.STEPWISE_SCREENING_PASS = 0.8
    scored(f.task(3, kind="screening", gold=[1, 1, -1]), bob_annotator, [1, 1, 1])
    assert bob_annotator.screening_passed is False
    def withheld():  # the queue's test for withholding round tasks
        return list(Annotator.objects.filter(screening_passed=False, cleared_by_admin=False))
    assert withheld() == [bob_annotator]
    assert annotators_clear(annotators=Annotator.objects.filter(pk=bob_annotator.pk)) == 1
    assert withheld() == []
    assert annotators_clear(annotators=Annotator.objects.all()) == 0


@pytest.mark.django_db
def test_an_admin_clears_annotators_from_the_admin(client, alice, bob_annotator):
    Annotator.objects.filter(pk=bob_annotator.pk).update(screening_passed=False, screening_score=0.4)
    client.force_login(alice)
    listing = client.get("/admin/labeling/annotator/?screening_passed__exact=0")
    assert b"Clear for round tasks" in listing.content and b"qc_score" in listing.content
    response = client.post("/admin/labeling/annotator/", {"action": "clear_for_round_tasks",
                                                          "_selected_action": [bob_annotator.pk]}, follow=True)
    assert b"1 annotator(s) cleared for round tasks" in response.content
    bob_annotator.refresh_from_db()
    assert bob_annotator.cleared_by_admin and bob_annotator.screening_passed is False


@pytest.mark.django_db
def test_the_task_admin_validates_gold(client, alice):
    solution = f.solution(3)
    client.force_login(alice)
    form = {"solution": solution.pk, "kind": "qc", "priority": 0, "overlap": 100, "gold_ratings": "[1, -1, 1]",
            "alternatives": "{}"}
    response = client.post("/admin/labeling/task/add/", form)
    assert response.status_code == 200 and b"gold[2]: gold ends at the first -1" in response.content
    response = client.post("/admin/labeling/task/add/", dict(form, gold_ratings="[1, -1]"))
    assert response.status_code == 302 and Task.objects.get().gold_ratings == [1, -1]
    assert client.get("/admin/labeling/assignment/").status_code == 200


# --- create_qc_tasks ----------------------------------------------------------------------------------

@pytest.fixture
def problems(db):
    return [Problem.objects.create(text="What is $1+1$?", answer="2", source_id="t/1.json"),
            Problem.objects.create(text="What is $2+2$?", answer="4", source_id="t/2.json")]


def test_it_creates_qc_tasks_from_a_file_and_adds_nothing_twice(problems, write_lines, capsys):
    existing = Solution.objects.create(problem=problems[0], steps=["One plus one.", "It is 2.\n\n# Answer\n\n2"])
    path = write_lines([
        json.dumps({"unique_id": "t/1.json", "steps": existing.steps, "gold": [1, 1]}),
        json.dumps({"problem": "What is $2+2$?", "steps": ["Two plus two.", "It is 5.\n\n# Answer\n\n5"],
                    "gold": [1, -1], "kind": "screening", "alternatives": {"1": ["It is 4.\n\n# Answer\n\n4"]}}),
    ])
    call_command("create_qc_tasks", str(path))
    assert "2 gold tasks read: 2 new, 0 already present (1 solutions created)" in capsys.readouterr().out
    qc, screening = Task.objects.order_by("id")
    assert (qc.kind, qc.solution, qc.gold_ratings, qc.overlap) == ("qc", existing, [1, 1], GOLD_TASK_OVERLAP)
    assert (screening.kind, screening.gold_ratings) == ("screening", [1, -1])
    assert screening.alternatives == {"1": ["It is 4.\n\n# Answer\n\n4"]}
    created = screening.solution
    assert (created.problem, created.final_answer, created.is_correct) == (problems[1], "5", False)
    call_command("create_qc_tasks", str(path))
    assert "0 new, 2 already present (0 solutions created)" in capsys.readouterr().out
    assert Task.objects.count() == 2 and Solution.objects.count() == 2


def fails(path, *expected):
    before = snapshot()
    with pytest.raises(CommandError) as info:
        call_command("create_qc_tasks", str(path))
    assert snapshot() == before
    for part in expected:
        assert part in str(info.value), f"{part!r} not in {info.value}"


@pytest.mark.parametrize("line, field, message", [
    ({"unique_id": "t/1.json", "steps": ["a", "b"], "gold": [1, 1], "kind": "round"}, "kind", "must be one of"),
    ({"unique_id": "t/1.json", "steps": ["a", "b"], "gold": [-1, 1]}, "gold[1]", "nothing may follow"),
    ({"unique_id": "t/1.json", "steps": ["a", "b"]}, "gold", "missing"),
    ({"unique_id": "t/1.json", "steps": ["a", "b"], "gold": [1, 1], "labeler": "x"}, "labeler", "unknown field"),
    ({"unique_id": "t/9.json", "steps": ["a", "b"], "gold": [1, 1]}, "unique_id", "no imported problem"),
    ({"unique_id": "t/1.json", "steps": ["a", "b"], "gold": [1, 1], "alternatives": {"x": []}}, "alternatives.x",
     "not a step index"),
])
def test_a_bad_line_fails_the_whole_file(problems, write_lines, line, field, message):
    good = json.dumps({"unique_id": "t/2.json", "steps": ["c", "d"], "gold": [1, -1]})
    path = write_lines([good, json.dumps(line)])
    fails(path, str(path), "line 2", f"field '{field}'", message, "nothing was written")


def test_different_gold_for_an_existing_task_fails(problems, write_lines):
    call_command("create_qc_tasks", str(write_lines([json.dumps({"unique_id": "t/1.json", "steps": ["a", "b"],
                                                                 "gold": [1, 1]})], name="first.jsonl")))
    path = write_lines([json.dumps({"unique_id": "t/2.json", "steps": ["c", "d"], "gold": [1, -1]}),
                        json.dumps({"unique_id": "t/1.json", "steps": ["a", "b"], "gold": [1, -1]})])
    fails(path, "line 2", "field 'gold'", "already has a qc task")
    twice = write_lines([json.dumps({"unique_id": "t/2.json", "steps": ["c", "d"], "gold": [1, -1]}),
                         json.dumps({"unique_id": "t/2.json", "steps": ["c", "d"], "gold": [1, 1]})], name="t.jsonl")
    fails(twice, "line 2", "an earlier line")


@pytest.mark.django_db
def test_a_failed_screening_through_the_queue_withholds_round_tasks_until_cleared(bob_annotator, settings):
    """The seam with the queue and submission services: submit() scores, the queue reads the verdict."""
    import uuid

    from labeling.services.annotation.queue import queue_next
    from labeling.services.annotation.submission import annotation_submit

    settings.STEPWISE_SCREENING_PASS = 0.8
    screening = qc_task_create(solution=f.solution(3), gold_ratings=[1, 1, -1], kind="screening")
    f.task(3)  # a round task waiting
    lease = queue_next(annotator=bob_annotator)
    assert lease.task == screening
    annotation_submit(assignment=lease, annotator=bob_annotator, client_id=uuid.uuid4(), finish_reason="solution",
                      ratings=[{"step": i, "rating": 1} for i in range(3)], total_time_ms=30_000)
    bob_annotator.refresh_from_db()
    assert (bob_annotator.screening_score, bob_annotator.screening_passed) == (pytest.approx(1 / 3), False)
    assert queue_next(annotator=bob_annotator) is None
    annotators_clear(annotators=Annotator.objects.filter(pk=bob_annotator.pk))
    assert queue_next(annotator=bob_annotator).task.kind == "round"
