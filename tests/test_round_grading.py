"""Grading for selection (issue 10): rounds and evaluation grade in STEPWISE_SELECTION_GRADING's mode
(fixed by default, `start_round --grading` per round), regrading what an import graded in the reference
mode; so a correct `2^{10}` for 1024, which the reference grader rejects, is not queued as a wrong answer.
Rounds run end to end in the embedded mode with a tiny step-head selector (tests/test_rounds.py)."""
import json

import pytest
from django.core.management import call_command

from labeling.models import Problem, Round, RoundSelection, Solution, Task
from labeling.services.data.problem_import import problems_import
from labeling.services.data.solution_grading import solutions_grade_in_mode
from labeling.services.data.solution_import import solutions_import
from labeling.services.rounds.stages import RoundParameters, round_start
from tests.round_factories import register_selector
from tests.tiny_models import build_token_classifier

pytest.importorskip("torch")

WRONG_REASONS = {RoundSelection.Reason.CONVINCING_WRONG, RoundSelection.Reason.RANDOM_WRONG}
ANSWERS = ("2^{10}", "1000", "1024", "1024")  # a reference false reject, a wrong answer, two right ones


@pytest.fixture(scope="module")
def tiny_prm_dir(tmp_path_factory):
    return build_token_classifier(tmp_path_factory.mktemp("tiny_step_prm"))


@pytest.fixture
def imported(write_lines):
    """One problem (answer 1024) and four imported candidates, graded at import in the reference mode."""
    problems_import(path=write_lines([json.dumps({
        "problem": "What is $2^{10}$?", "solution": "$2^{10} = 1024$.", "answer": "1024",
        "subject": "Algebra", "level": 1, "unique_id": "g/1.json"})], name="p.jsonl"), split="train")
    lines = [json.dumps({"unique_id": "g/1.json", "generator": "g",
                         "steps": [f"Attempt {k}: we double ten times.", f"So we get ${a}$.\n\n# Answer\n\n{a}"]})
             for k, a in enumerate(ANSWERS)]
    assert solutions_import(path=write_lines(lines, name="s.jsonl")).created == 4
    return {s.final_answer if s.final_answer != "1024" else f"1024/{s.pk}": s
            for s in Solution.objects.order_by("id")}


def _wrong_picks(round_):
    return set(RoundSelection.objects.filter(round=round_, reason__in=WRONG_REASONS)
               .values_list("solution_id", flat=True))


@pytest.mark.django_db
def test_a_fixed_mode_round_does_not_queue_a_correct_power_as_wrong(postgres, tiny_prm_dir, imported, committed):
    power, wrong = imported["2^{10}"], imported["1000"]
    assert (power.is_correct, power.graded_mode) == (False, "prm800k")  # the reference's false reject
    register_selector(tiny_prm_dir)
    round_ = committed(round_start, params=RoundParameters(per_problem=2, wrong_fraction=1.0))
    assert round_.status == Round.Status.DONE, round_.error
    assert round_.parameters["grading"] == "fixed"  # the default setting
    power.refresh_from_db()
    assert (power.is_correct, power.graded_mode) == (True, "fixed")
    assert set(Solution.objects.values_list("graded_mode", flat=True)) == {"fixed"}
    assert _wrong_picks(round_) == {wrong.pk}
    assert not RoundSelection.objects.filter(round=round_, solution=power, is_correct=False).exists()
    assert round_.stats["wrong_among_candidates"] == 1


@pytest.mark.django_db(transaction=True)  # the command's sends run on a real commit
def test_grading_prm800k_queues_it_as_convincing_wrong(postgres, tiny_prm_dir, imported, capsys):
    power, wrong = imported["2^{10}"], imported["1000"]
    register_selector(tiny_prm_dir)
    call_command("start_round", "--per-problem", "2", "--wrong-fraction", "1.0", "--grading", "prm800k", "--sync")
    assert "round 1 done" in capsys.readouterr().out
    round_ = Round.objects.get()
    assert round_.parameters["grading"] == "prm800k"
    assert _wrong_picks(round_) == {power.pk, wrong.pk}
    assert Task.objects.filter(round=round_, solution=power).exists()
    power.refresh_from_db()
    assert (power.is_correct, power.graded_mode) == (False, "prm800k")


@pytest.mark.django_db
def test_the_setting_decides_when_the_round_does_not(postgres, tiny_prm_dir, imported, committed, settings):
    settings.STEPWISE_SELECTION_GRADING = "prm800k"
    register_selector(tiny_prm_dir)
    round_ = committed(round_start, params=RoundParameters(per_problem=2, wrong_fraction=1.0))
    assert round_.parameters["grading"] == "prm800k"
    assert imported["2^{10}"].pk in _wrong_picks(round_)


@pytest.mark.django_db
def test_only_candidates_graded_in_another_mode_are_regraded(postgres, imported):
    power, wrong = imported["2^{10}"], imported["1000"]
    # A verdict already made in fixed mode is kept as it is (here a deliberately odd one, to see it untouched).
    Solution.objects.filter(pk=wrong.pk).update(is_correct=True, graded_mode="fixed")
    ungraded = Solution.objects.create(problem=power.problem, steps=["x", "# Answer\n\n1024.0"], final_answer="1024.0")
    no_answer = Solution.objects.create(problem=power.problem, steps=["x"], final_answer=None)
    result = solutions_grade_in_mode(solutions=Solution.objects.all(), mode="fixed")
    assert (result.graded, result.correct) == (4, 4)  # the power, the two 1024s, the ungraded one
    got = dict(Solution.objects.values_list("id", "is_correct"))
    assert got[power.pk] is True and got[wrong.pk] is True and got[ungraded.pk] is True
    assert got[no_answer.pk] is None
    assert solutions_grade_in_mode(solutions=Solution.objects.all(), mode="fixed").graded == 0  # nothing left
    back = solutions_grade_in_mode(solutions=Solution.objects.filter(pk=power.pk), mode="prm800k")
    assert (back.graded, back.correct) == (1, 0)
    with pytest.raises(ValueError):
        solutions_grade_in_mode(solutions=Solution.objects.all(), mode="lenient")


class _ConstantScorer:
    """Every step 0.5: this test is about which candidates count as correct, not about scores."""

    def score(self, items, batch_size=16, max_length=1024):
        return [[(0.25, 0.25, 0.5) for _ in steps] for _problem, steps in items]

    def solution_score(self, values):
        return 0.5


@pytest.mark.django_db
def test_evaluation_grades_held_out_candidates_in_the_selection_mode(postgres, imported, settings):
    from labeling.models import ModelVersion
    from labeling.services.rounds.registry import model_version_register
    from labeling.services.training.evaluation import evaluate_version

    Problem.objects.update(split="test")
    version = model_version_register(name="prm-g", kind=ModelVersion.Kind.PRM, path="/nonexistent",
                                     config={"architecture": "step_head"})
    metrics = evaluate_version(version=version, scorer=_ConstantScorer())
    assert metrics["held_out"]["grading"] == "fixed"
    assert metrics["counts"]["solutions"] == 4
    assert metrics["best_of_n"]["oracle"][-1][1] == 1.0
    assert set(Solution.objects.values_list("graded_mode", "is_correct")) == {("fixed", True), ("fixed", False)}
    assert Solution.objects.filter(is_correct=True).count() == 3  # 2^{10} counts as right
    settings.STEPWISE_SELECTION_GRADING = "prm800k"
    again = evaluate_version(version=version, scorer=_ConstantScorer())
    assert again["held_out"]["grading"] == "prm800k"
    assert Solution.objects.filter(is_correct=True).count() == 2
    assert again["held_out"]["digest"] != metrics["held_out"]["digest"]  # a different held-out verdict set
