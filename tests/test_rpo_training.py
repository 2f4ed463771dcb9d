"""Iterative RPO on a tiny model: a few DPO + NLL steps (TRL), the loss curve recorded, a generator registered
and evaluated on held-out problems; `manage.py train_generator --sync` end to end."""
import io

import pytest
from django.core.management import call_command

from labeling.models import Job, ModelVersion, Problem, Solution
from labeling.services.training.generator_evaluation import majority_answer
from labeling.services.training.generator_promotion import generator_better
from tests.tiny_models import build_causal_lm

pytest.importorskip("trl")


@pytest.fixture
def base(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("tiny-generator"))


def own_candidates(spec, n_problems=3):
    for p in range(n_problems):
        problem = Problem.objects.create(text=f"What is {p} + 3?", answer=str(p + 3), split="train")
        for k, answer in enumerate([p + 3, p + 9, p + 3, p + 7]):
            Solution.objects.create(problem=problem, steps=[f"we add {p} and 3, try {k}",
                                                            f"# Answer\n\n{answer}"],
                                    final_answer=str(answer), generator=spec)
    Problem.objects.create(text="What is 1 + 1?", answer="2", split="test")
    Problem.objects.create(text="What is 2 + 2?", answer="4", split="test")


def test_train_rpo_records_its_loss_curve(base, tmp_path, torch_one_thread):
    from workers.ml.rpo_training import train_rpo

    pairs = [{"prompt": f"What is {i} + 3?", "chosen": f"# Answer\n\n{i + 3}", "rejected": f"# Answer\n\n{i + 9}"}
             for i in range(3)]
    seen = []
    result = train_rpo(base_spec=base, pairs=pairs, out_dir=tmp_path / "out", steps=3, learning_rate=1e-3,
                       progress=lambda step, total, loss: seen.append((step, total)))
    assert len(result["loss_curve"]) == 3 and seen == [(1, 3), (2, 3), (3, 3)]
    assert result["loss"].startswith("DPO") and result["tokens_per_second"] > 0 and result["trl"] == "0.29.1"
    assert (tmp_path / "out" / "config.json").exists()
    assert not list(tmp_path.glob(".out.*.tmp"))
    with pytest.raises(ValueError, match="already exists"):
        train_rpo(base_spec=base, pairs=pairs, out_dir=tmp_path / "out", steps=1)
    with pytest.raises(ValueError, match="beta"):
        train_rpo(base_spec=base, pairs=pairs, out_dir=tmp_path / "other", beta=0)


@pytest.mark.django_db(transaction=True)
def test_the_command_trains_registers_and_evaluates(base, tmp_path, settings, torch_one_thread):
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.MEDIA_ROOT, settings.EXPORT_DIR = tmp_path, tmp_path / "exports"
    own_candidates(base)
    out = io.StringIO()
    call_command("train_generator", "--base", base, "--steps", "3", "--learning-rate", "1e-3", "--majority-n", "2",
                 "--eval-max-new-tokens", "8", "--promote", "always", "--sync", stdout=out)
    text = out.getvalue()
    job = Job.objects.get(kind=Job.Kind.TRAIN_GENERATOR)
    assert job.status == Job.Status.DONE, job.error
    version = job.model_version
    assert version.kind == ModelVersion.Kind.GENERATOR and version.path == str(tmp_path / "models" /
                                                                                 f"generator-rpo-job{job.pk}")
    assert len(version.metrics["loss_curve"]) == 3 and version.metrics["final_loss"] is not None
    assert version.metrics["pairs"]["pairs"] == 6 and version.config["iteration"] == 1
    assert version.config["parent"] == f"generator:{base}" and "DPO" in version.how_made
    assert "loss curve" in text and text.count("#") >= 3
    evaluation = version.metrics["generator_evaluation"]
    assert evaluation["problems"] == 2 and evaluation["n"] == 2 and evaluation["grading"] == "fixed"
    assert 0 <= evaluation["greedy_accuracy"] <= 1 and "by majority of 2" in text
    assert Job.objects.get(kind=Job.Kind.EVALUATE_GENERATOR).status == Job.Status.DONE
    assert ModelVersion.objects.get(is_active_generator=True) == version
    assert not Solution.objects.filter(problem__split="test").exists()  # evaluation samples are not stored


def test_majority_and_the_promotion_rule():
    assert majority_answer(["4", None, "\\frac12", "1/2", "4", "4"]) == "4"
    assert majority_answer(["\\frac12", "4", "1/2"]) == "\\frac12"
    assert majority_answer([None, " "]) is None
    old = {"greedy_accuracy": 0.5, "majority_accuracy": 0.5}
    assert generator_better({"greedy_accuracy": 0.5, "majority_accuracy": 0.6}, old)
    assert not generator_better({"greedy_accuracy": 0.4, "majority_accuracy": 0.9}, old)
    assert not generator_better(dict(old), old)
