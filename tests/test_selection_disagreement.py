"""The `disagreement` selection rule: solutions whose rollouts contradict a convincing selector score first."""
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from labeling.core.agreement import NO_ERROR
from labeling.core.selection import disagreement, select_by_disagreement, selector_first_error
from labeling.errors import InvalidInput
from labeling.models import ModelVersion, Problem, Round, RoundSelection, Solution, VerifierScore
from labeling.services.rounds.selecting import round_select
from labeling.services.rounds.stages import RoundParameters
from tests.rollout_factories import estimates_make


def c(sid, score, correct, pid=1, **extra):
    return {"solution_id": sid, "problem_id": pid, "score": score, "is_correct": correct, **extra}


def test_disagreement_is_the_score_times_how_strongly_the_rollouts_contradict_it():
    assert disagreement(0.8, min_advantage=-0.75) == pytest.approx(0.6)
    assert disagreement(0.8, min_advantage=-0.25) == 0  # not strongly negative
    assert disagreement(0.8, rollout_first_error=1, selector_first_error=NO_ERROR) == 0.8
    assert disagreement(0.8, rollout_first_error=1, selector_first_error=1) == 0
    assert disagreement(0.8, rollout_first_error=None, selector_first_error=2) == 0  # nothing to compare
    assert disagreement(0.5, min_advantage=-0.6, rollout_first_error=0, selector_first_error=2) == 0.5
    assert disagreement(0.8, min_advantage=-0.9, threshold=0.95) == 0


def test_contested_solutions_come_first_and_the_prm800k_rule_fills_the_rest():
    pool = [c(1, 0.9, False), c(2, 0.7, True, min_advantage=-0.75), c(3, 0.8, False, rollout_first_error=0,
                                                                         selector_first_error=NO_ERROR),
            c(4, 0.6, False), c(5, 0.95, True, pid=2), c(6, 0.4, False, pid=2, min_advantage=-1.0)]
    picks = select_by_disagreement(pool, per_problem=3, wrong_fraction=1.0)
    by_id = {p.solution_id: p.reason for p in picks}
    assert by_id == {3: "disagreement", 2: "disagreement", 1: "convincing_wrong", 6: "disagreement",
                     5: "convincing_any"}
    first = select_by_disagreement(pool, per_problem=1)
    assert [(p.solution_id, p.reason) for p in first] == [(3, "disagreement"), (6, "disagreement")]
    assert [p.solution_id for p in select_by_disagreement(pool, per_problem=1, qc_ids=[3, 6])
            if p.reason != "qc"] == [5, 2]


def test_the_selectors_first_error_from_its_step_scores():
    assert selector_first_error([0.9, 0.4, 0.8], 3) == 1
    assert selector_first_error([0.9, 0.6], 2) == NO_ERROR
    assert selector_first_error([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]], 2) == 1  # triples: P(0) + P(+1)
    assert selector_first_error([0.9, None], 2) is None  # truncated
    assert selector_first_error([3.2, -1.0], 2) is None  # rewards, not probabilities
    assert selector_first_error(None, 2) is None


@pytest.fixture
def scored(db):
    """One problem, three candidates scored by a registered selector; rollouts contradict two of them."""
    problem = Problem.objects.create(text="What is 2+2?", answer="4", split="train")
    selector = ModelVersion.objects.create(name="sel", kind="prm", path="/nonexistent")
    made = {}
    for name, score, correct in (("wrong", 0.9, False), ("drop", 0.7, True), ("contradicted", 0.8, False)):
        steps = [f"{name} one", f"{name} two", f"{name} three\n\n# Answer\n\n{4 if correct else 5}"]
        made[name] = Solution.objects.create(problem=problem, steps=steps, is_correct=correct)
        VerifierScore.objects.create(solution=made[name], model_version=selector, score=score,
                                     step_scores=[0.9, 0.9, 0.9])
    estimates_make(made["drop"], {0: (4, 4), 1: (4, 4), 2: (1, 4), 3: (1, 4)})  # A_2 = -0.75
    estimates_make(made["contradicted"], {0: (4, 4), 1: (0, 4), 2: (0, 4), 3: (0, 4)})  # fails from step 1
    return problem, selector, made


@pytest.mark.parametrize("rule, per_problem, expected", [
    ("disagreement", 2, {"contradicted": "disagreement", "drop": "disagreement"}),
    ("disagreement", 3, {"contradicted": "disagreement", "drop": "disagreement", "wrong": "convincing_wrong"}),
    ("prm800k", 2, {"wrong": "convincing_wrong", "contradicted": "convincing_wrong"}),
])
def test_a_round_selects_by_its_rule(scored, rule, per_problem, expected):
    problem, selector, made = scored
    round_ = Round.objects.create(number=1, selector=selector, started=timezone.now(), parameters={
        "per_problem": per_problem, "wrong_fraction": 1.0, "problem_ids": [problem.id], "selection_rule": rule})
    stats = round_select(round_, candidates_qs=Solution.objects.filter(problem=problem), qc_ids=set())
    names = {s.id: n for n, s in made.items()}
    assert {names[sid]: reason for sid, reason in RoundSelection.objects.filter(round=round_)
            .values_list("solution_id", "reason")} == expected
    assert stats.get("with_rollouts") == (2 if rule == "disagreement" else None)


def test_the_rule_is_a_round_parameter_checked_at_start():
    assert RoundParameters().selection_rule == "prm800k"
    with pytest.raises(InvalidInput, match="selection_rule"):
        RoundParameters(selection_rule="vibes").check()
    with pytest.raises(CommandError, match="disagreement"):
        call_command("start_round", "--selection-rule", "vibes")
