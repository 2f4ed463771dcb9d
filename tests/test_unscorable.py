"""Honest scores: a solution whose steps do not all fit the maximum length is unscorable (score None),
never scored on the steps that fit; one maximum length for training and scoring, the version's own.

The partial product is what made truncation inflate scores: the product over the steps that fit is
higher than over all of them, and a wrong solution's error is often in the steps cut off.
"""
import math
import os
import subprocess
import sys

import pytest

from labeling.core.step_scores import implicit_step_rewards, is_scorable, scorable_solution_score, solution_score
from labeling.models import Job, ModelVersion, Problem, Round, RoundSelection, Solution, VerifierScore
from labeling.services.rounds.registry import model_version_register, selector_activate
from labeling.services.rounds.scoring import scoring_max_length
from labeling.services.rounds.stages import RoundParameters, round_start

LONG = " ".join(["apples"] * 40)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the rule, without a model -------------------------------------------------------------------

def test_it_never_scores_a_solution_on_the_steps_that_fit():
    steps = [0.9, (0.1, 0.2, 0.7), None]
    assert not is_scorable(steps) and not is_scorable([]) and is_scorable([0.9, (0.1, 0.2, 0.7)])
    for how in ("product", "min", "last"):
        assert scorable_solution_score(steps, how=how) is None
        with pytest.raises(ValueError, match="unscorable"):
            solution_score(steps, how=how)
    assert scorable_solution_score(steps[:2]) == pytest.approx(0.9 * 0.9)
    assert scorable_solution_score([]) is None
    with pytest.raises(ValueError, match="unknown score mode"):
        scorable_solution_score([None], how="mean")


def test_it_recovers_step_rewards_from_stored_prefix_values():
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert implicit_step_rewards([sig(0.3), sig(0.1), sig(-0.4)]) == pytest.approx([0.3, -0.2, -0.5])
    assert implicit_step_rewards([sig(0.3), None, sig(0.2)]) == [pytest.approx(0.3), None, None]
    with pytest.raises(ValueError, match="finite logit"):
        implicit_step_rewards([1.0])


# --- through the scoring service and a round -----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_prm_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.tiny_models import build_token_classifier

    return build_token_classifier(tmp_path_factory.mktemp("tiny_step_prm"))


def encoded_lengths(path, problem, solutions):
    from workers.ml.prm import StepPRM

    prm = StepPRM.load(path)
    return [len(prm.encode(problem, steps, max_length=10_000)[0]) for steps in solutions]


def candidates_with_one_too_long(path):
    """A problem with two short candidates and a long wrong one, and a max_length between them."""
    problem = Problem.objects.create(text="What is 2 + 2?", answer="4", source_id="p/long", split="train")
    short = [["let x be 2", "so the answer is 4\n\n# Answer\n\n4"], ["we check 2 + 2", "# Answer\n\n4"]]
    long_wrong = ["let x be 2", "then " + LONG, LONG + " so it is 5\n\n# Answer\n\n5"]
    lengths = encoded_lengths(path, problem.text, short + [long_wrong])
    max_length = max(lengths[:2]) + 8
    assert lengths[2] > max_length + 40
    rows = [Solution.objects.create(problem=problem, steps=steps, final_answer=steps[-1][-1], is_correct=correct,
                                    graded_mode="fixed", generator="test")
            for steps, correct in ((short[0], True), (short[1], True), (long_wrong, False))]
    return rows, max_length


@pytest.mark.django_db
def test_a_round_stores_a_too_long_candidate_as_unscorable_and_never_selects_it(tiny_prm_dir, committed, settings):
    (a, b, long_wrong), max_length = candidates_with_one_too_long(tiny_prm_dir)
    # The version was trained with max_length; the settings allow far more. The version's own length wins.
    assert settings.STEPWISE_MAX_LENGTH > 4 * max_length
    version = selector_activate(version=model_version_register(
        name="tiny-step-prm", kind=ModelVersion.Kind.PRM, path=tiny_prm_dir, base_model="tiny",
        how_made="random tiny model for tests", config={"architecture": "step_head", "max_length": max_length}))
    round_ = committed(round_start, params=RoundParameters(per_problem=3, wrong_fraction=0.5))
    assert round_.status == Round.Status.DONE, round_.error

    stored = {s.solution_id: s for s in VerifierScore.objects.filter(model_version=version)}
    assert set(stored) == {a.pk, b.pk, long_wrong.pk}
    assert stored[long_wrong.pk].score is None  # not the product of the steps that fit
    steps = stored[long_wrong.pk].step_scores
    assert steps[0] is not None and steps[-1] is None  # its leading step's value is kept, exact
    assert all(0 < stored[s].score <= 1 for s in (a.pk, b.pk))
    assert round_.stats["unscorable"] == 1 and round_.stats["scored"] == 2
    # per_problem=3 takes every scored candidate of the problem: the unscorable one is the only one left out.
    assert set(RoundSelection.objects.filter(round=round_).values_list("solution_id", flat=True)) == {a.pk, b.pk}
    assert not round_.tasks.filter(solution=long_wrong).exists()
    assert Job.objects.get(round=round_, kind=Job.Kind.SCORE).status == Job.Status.DONE


@pytest.mark.django_db
def test_evaluation_counts_an_unscorable_candidate_and_never_picks_it_by_its_partial_score(tiny_prm_dir):
    from labeling.services.training.evaluation import evaluate_version
    from workers.ml.scorers import scorer_for

    (right, _, long_wrong), max_length = candidates_with_one_too_long(tiny_prm_dir)
    Problem.objects.update(split="test")
    Solution.objects.exclude(pk__in=[right.pk, long_wrong.pk]).delete()
    config = {"architecture": "step_head", "max_length": max_length}
    version = model_version_register(name="tiny-eval", kind=ModelVersion.Kind.PRM, path=tiny_prm_dir,
                                     config=config)
    metrics = evaluate_version(version=version, scorer=scorer_for(path=tiny_prm_dir, config=config))
    assert metrics["counts"]["solutions"] == 2 and metrics["counts"]["solutions_unscorable"] == 1
    assert VerifierScore.objects.get(model_version=version, solution=long_wrong).score is None
    # Out of both, the PRM (and the last-step rule) pick the one it could score: the right answer.
    assert metrics["best_of_n"]["prm"][-1] == [2, 1.0] and metrics["best_of_n"]["last"][-1] == [2, 1.0]
    assert metrics["best_of_n"]["oracle"][-1] == [2, 1.0]


# --- one maximum length ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_training_and_scoring_share_one_max_length(settings, tmp_path):
    from labeling.services.rounds.bootstrap import bootstrap_job_create, bootstrap_register
    from labeling.services.training.retraining import RetrainParameters

    settings.STEPWISE_MAX_LENGTH = 200
    for p in range(2):
        problem = Problem.objects.create(text=f"q{p}", answer="1", source_id=f"q/{p}", split="train")
        for correct in (True, False):
            Solution.objects.create(problem=problem, steps=["a", str(correct)], final_answer="1", is_correct=correct)
    round_ = Round.objects.create(number=1, parameters={"seed": 0, "problem_ids": []})
    job = bootstrap_job_create(round_=round_)
    assert job.parameters["max_length"] == 200  # the round-0 bootstrap trains with it
    implicit = bootstrap_register(job=job, out_dir=str(tmp_path / "m"), result={})
    assert implicit.config["max_length"] == 200 and scoring_max_length(version=implicit) == 200
    assert RetrainParameters().max_length == 200  # retraining trains with it (an explicit value still wins)
    assert RetrainParameters(max_length=64).max_length == 64
    # A version scores with what it was trained with; one registered from outside with the setting.
    settings.STEPWISE_MAX_LENGTH = 300
    assert scoring_max_length(version=implicit) == 200
    outside = model_version_register(name="outside", kind=ModelVersion.Kind.PRM, path="/x",
                                     config={"architecture": "step_head"})
    assert scoring_max_length(version=outside) == 300 and scoring_max_length(version=outside, default=128) == 128


def test_the_old_max_length_names_are_aliases_and_two_values_fail_loudly():
    from tests.test_settings import run_settings

    def setting(**env):
        code = "import django; django.setup(); from django.conf import settings as s; print(s.STEPWISE_MAX_LENGTH)"
        full = {k: v for k, v in os.environ.items() if not k.endswith("MAX_LENGTH")} | env | {
            "DJANGO_SETTINGS_MODULE": "annotate.settings"}
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True)

    assert setting().stdout.strip() == "1024"
    assert setting(STEPWISE_BOOTSTRAP_MAX_LENGTH="384").stdout.strip() == "384"
    assert setting(STEPWISE_MAX_LENGTH="512", STEPWISE_SCORING_MAX_LENGTH="512").stdout.strip() == "512"
    failed = setting(STEPWISE_MAX_LENGTH="512", STEPWISE_BOOTSTRAP_MAX_LENGTH="384")
    assert failed.returncode != 0 and "set STEPWISE_MAX_LENGTH only" in failed.stderr
    assert "at least 16" in run_settings(STEPWISE_MAX_LENGTH="8", DEBUG="1", DJANGO_SETTINGS_MODULE="annotate.settings").stderr
