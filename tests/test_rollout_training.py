"""Retraining from rollout labels: rollout rows alone (hard or soft targets), human and rollout rows together,
and a clear refusal when there is nothing of the chosen source (tiny Llamas, embedded mode)."""
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from labeling.errors import InvalidInput  # noqa: E402
from labeling.models import Annotator, Export, Job, Problem, Solution  # noqa: E402
from labeling.services.training.retraining import RetrainParameters, retrain_start, snapshot_items  # noqa: E402
from tests.label_factories import annotation_make  # noqa: E402
from tests.rollout_factories import estimates_make  # noqa: E402
from tests.tiny_models import build_token_classifier  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("datasets")

FAST = {"learning_rate": 1e-3, "epochs": 1, "batch_size": 2, "max_length": 128}
pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.django_db]


@pytest.fixture(scope="module")
def tiny_prm(tmp_path_factory):
    return build_token_classifier(tmp_path_factory.mktemp("tiny_prm"))


@pytest.fixture
def models_dir(settings, tmp_path, tiny_prm):
    settings.STEPWISE_RETRAIN_BASE = tiny_prm
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.STEPWISE_AUTO_PROMOTE = "manual"
    return tmp_path / "models"


@pytest.fixture
def labels(db):
    problem = Problem.objects.create(text="What is 1+1?", answer="2", split="train")
    held_out = Problem.objects.create(text="What is 7*7?", answer="49", split="test")
    a = Solution.objects.create(problem=problem, steps=["One plus one.", "It is 3.", "# Answer\n\n3"])
    b = Solution.objects.create(problem=problem, steps=["Add.", "# Answer\n\n2"])
    c = Solution.objects.create(problem=held_out, steps=["Seven sevens.", "# Answer\n\n49"])
    estimates_make(a, {0: (3, 4), 1: (3, 4), 2: (0, 4), 3: (0, 4)})
    estimates_make(b, {0: (3, 4), 1: (2, 4), 2: (4, 4)})
    estimates_make(c, {0: (4, 4), 1: (4, 4), 2: (4, 4)})  # test split: never trained on
    annotation_make(annotator=Annotator.objects.create(), solution=b, ratings=[1, 1])
    return a, b


def test_it_trains_on_soft_rollout_targets(models_dir, labels, committed):
    job = committed(retrain_start, params=RetrainParameters(**FAST, source="rollout", soft=True))
    assert job.status == Job.Status.DONE, job.error
    train = job.model_version.metrics["train"]
    assert train["items"] == 2 and train["soft_targets"] == 5 and train["labeled_steps"] == 5
    assert "labels rollout (soft rollout targets)" in job.model_version.how_made
    export = Export.objects.get(pk=job.parameters["snapshot_export_id"])
    assert export.provenance["label_source"] == "rollout"
    items = snapshot_items(snapshot=job.result["snapshot"], neutral="class", soft=True)
    assert [r for _, _, r in items] == [[0.75, 0.0, 0.0], [0.5, 1.0]]
    hard = snapshot_items(snapshot=job.result["snapshot"], neutral="class")
    assert [r for _, _, r in hard] == [[1, -1, -1], [1, 1]]


def test_both_sources_train_together_with_hard_targets(models_dir, labels, committed):
    job = committed(retrain_start, params=RetrainParameters(**FAST, source="both"))
    assert job.status == Job.Status.DONE, job.error
    train = job.model_version.metrics["train"]
    assert train["items"] == 3 and train["soft_targets"] == 0  # b's human row, a's and b's rollout rows
    assert train["label_counts"] == {"negative": 2, "neutral": 0, "positive": 5}


def test_no_rollouts_no_rollout_retrain(models_dir, db):
    problem = Problem.objects.create(text="What is 1+1?", answer="2", split="train")
    annotation_make(annotator=Annotator.objects.create(), solution=Solution.objects.create(
        problem=problem, steps=["Two."]), ratings=[1])
    for source in ("rollout", "consensus"):
        with pytest.raises(InvalidInput, match="rollout"):
            retrain_start(params=RetrainParameters(**FAST, source=source))
    with pytest.raises(InvalidInput, match="source"):
        retrain_start(params=RetrainParameters(**FAST, source="vibes"))
