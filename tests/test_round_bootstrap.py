"""Round 0 without a selector (the implicit PRM is trained first) and rounds that generate candidates."""
import pytest

from labeling.models import Job, ModelVersion, Problem, Round, RoundSelection, Solution, VerifierScore
from labeling.services.rounds.stages import RoundParameters, round_start
from labeling.services.rounds.registry import selector_active
from tests.round_factories import make_candidates
from tests.tiny_models import build_causal_lm

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture
def start(committed, settings, tmp_path, tiny_lm):
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_BOOTSTRAP_BASE = tiny_lm
    settings.STEPWISE_GENERATOR = tiny_lm
    settings.STEPWISE_BOOTSTRAP_LR = 1e-3
    settings.STEPWISE_BOOTSTRAP_MAX_ITEMS = 12
    return lambda **params: committed(round_start, params=RoundParameters(**params))


@pytest.mark.django_db
def test_round_zero_trains_an_implicit_prm_validates_it_and_selects(start, tmp_path):
    make_candidates(n_problems=3, per_problem=4)
    assert selector_active() is None
    round_ = start(per_problem=2)
    assert round_.status == Round.Status.DONE, round_.error
    train = Job.objects.get(round=round_, kind=Job.Kind.TRAIN_SELECTOR)
    trained = train.model_version
    assert train.status == Job.Status.DONE and round_.selector == trained
    assert trained.config["architecture"] == "implicit" and trained.config["reference"] == trained.base_model
    # trained on two problems' 8 candidates (batch 4, 1 epoch), validated on the third problem's 4
    validation = trained.metrics["validation"]
    assert len(validation["problems"]) == 1 and validation["n"] == 4
    assert not Solution.objects.filter(id__in=train.parameters["solution_ids"],
                                       problem_id__in=validation["problems"]).exists()
    assert {"auroc", "low", "high"} <= set(validation["outcome_auroc"])
    assert len(train.result["loss_curve"]) == train.total == 2
    assert trained.metrics["loss_curve"] == train.result["loss_curve"]
    # it is the selector exactly when it beats chance on validation; the round says which
    assert (selector_active() == trained) == validation["beats_chance"] == round_.stats["selector"]["activated"]
    assert (tmp_path / "models" / f"implicit-prm-round1-job{train.pk}" / "config.json").is_file()
    assert VerifierScore.objects.filter(model_version=trained).count() == 12
    steps = VerifierScore.objects.filter(model_version=trained).first().step_scores
    assert all(0.0 <= p <= 1.0 for p in steps)
    assert RoundSelection.objects.filter(round=round_).count() == 6
    assert round_.stats["seconds"]["train_selector"] > 0


@pytest.mark.django_db
def test_a_failed_selector_training_fails_the_round_and_activates_nothing(start, settings):
    make_candidates(n_problems=2, per_problem=2)
    settings.STEPWISE_BOOTSTRAP_LR = -1.0  # a bad hyperparameter: the trainer refuses it
    round_ = start(per_problem=1)
    assert round_.status == Round.Status.FAILED and "learning_rate" in round_.error
    assert selector_active() is None and not ModelVersion.objects.filter(kind="prm").exists()
    assert not RoundSelection.objects.exists()


@pytest.mark.django_db
def test_a_round_generates_the_missing_candidates(start, tiny_lm):
    make_candidates(n_problems=2, per_problem=1)
    round_ = start(per_problem=2, candidates=3, max_new_tokens=24, temperature=1.0)
    assert round_.status == Round.Status.DONE, round_.error
    for problem in Problem.objects.all():
        assert problem.solutions.count() == 3
    generated = Solution.objects.filter(generator=tiny_lm)
    assert generated.count() == 4
    sampling = generated.first().sampling
    assert sampling["temperature"] == 1.0 and sampling["max_new_tokens"] == 24 and "finish_reason" in sampling
    job = Job.objects.get(round=round_, kind=Job.Kind.GENERATE)
    assert job.status == Job.Status.DONE and job.model_version.kind == ModelVersion.Kind.GENERATOR
    assert round_.stats["generated"] == 4
    # Generating again for the same round's problems adds nothing: they already have M candidates.
    again = start(per_problem=1, candidates=3)
    assert not Job.objects.filter(round=again, kind=Job.Kind.GENERATE).exists()
