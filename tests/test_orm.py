"""The outcome reward model baseline on a tiny Llama: it trains on graded candidates of non-test problems,
registers as kind orm, scores solutions through the common scorer interface, and is compared with a PRM."""
import os
from datetime import timedelta

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from django.conf import settings as django_settings  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from labeling.models import Job, ModelVersion, Problem, Solution  # noqa: E402
from labeling.services.jobs import rows  # noqa: E402
from labeling.services.rounds.registry import model_version_register  # noqa: E402
from labeling.services.training.benchmarks import benchmark_start, best_of_n_compare  # noqa: E402
from labeling.services.training.orm import OrmParameters, orm_out_dir, orm_train_start  # noqa: E402
from tests.tiny_models import build_causal_lm  # noqa: E402

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAST = {"learning_rate": 5e-3, "epochs": 6, "batch_size": 2, "max_length": 96}


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture
def models_dir(settings, tmp_path, tiny_lm):
    settings.STEPWISE_RETRAIN_BASE = tiny_lm
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    return tmp_path / "models"


def graded(problem, steps, answer, correct):
    return Solution.objects.create(problem=problem, steps=steps, final_answer=answer, is_correct=correct,
                                   graded_mode=django_settings.STEPWISE_SELECTION_GRADING)


def make_candidates():
    """Eight graded candidates of train (or unassigned) problems, two of a test problem, one ungraded."""
    train = Problem.objects.create(text="What is 6 * 7?", answer="42", split="train")
    other = Problem.objects.create(text="What is 3 + 4?", answer="7")
    test = Problem.objects.create(text="What is 5 + 5?", answer="10", split="test")
    for k in range(2):
        graded(train, [f"Six sevens ({k}).", "The answer is 42.", "# Answer\n\n42"], "42", True)
        graded(train, [f"Six plus seven ({k}).", "The answer is 13.", "# Answer\n\n13"], "13", False)
        graded(other, [f"Three and four ({k}).", "The answer is 7.", "# Answer\n\n7"], "7", True)
        graded(other, [f"Three times four ({k}).", "The answer is 12.", "# Answer\n\n12"], "12", False)
    graded(test, ["Five and five.", "# Answer\n\n10"], "10", True)
    graded(test, ["Five times five.", "# Answer\n\n25"], "25", False)
    Solution.objects.create(problem=train, steps=["Not graded."])
    return test


@pytest.mark.django_db
def test_it_trains_registers_and_scores(models_dir, committed, tiny_lm):
    make_candidates()
    job = committed(orm_train_start, params=OrmParameters(**FAST))
    assert job.status == Job.Status.DONE, job.error
    version = job.model_version
    assert (version.kind, version.name, version.config["architecture"]) == ("orm", f"orm-job{job.pk}", "orm")
    assert version.base_model == tiny_lm and (models_dir / f"orm-job{job.pk}" / "config.json").exists()
    train = version.metrics["train"]
    # Trained on the eight graded non-test candidates only: never a test problem's, never an ungraded one.
    assert (train["items"], train["correct"], train["truncated"]) == (8, 4, 0)
    curve = version.metrics["loss_curve"]
    assert len(curve) == train["steps"] == 6 * 4
    assert sum(curve[-4:]) < sum(curve[:4])  # the last epoch's loss is below the first's
    assert "final-answer grades" in version.how_made and "non-test" in version.how_made

    from workers.ml.scorers import scorer_for

    scorer = scorer_for(path=version.path, config=version.config)
    values = scorer.score([("What is 6 * 7?", ["Six sevens (0).", "The answer is 42.", "# Answer\n\n42"]),
                           ("What is 6 * 7?", ["Six plus seven (0).", "The answer is 13.", "# Answer\n\n13"]),
                           ("What is 6 * 7?", ["word " * 200])], batch_size=2, max_length=96)
    assert [len(v) for v in values] == [1, 1, 1] and values[2] == [None]  # too long: unscorable, as for a PRM
    assert all(0 < v[0] < 1 for v in values[:2]) and values[0][0] > values[1][0]
    assert scorer.solution_score(values[0]) == values[0][0] and scorer.solution_score(values[2]) is None


@pytest.mark.django_db
def test_it_is_compared_with_a_prm_by_best_of_n(models_dir, committed):
    make_candidates()
    orm = committed(orm_train_start, params=OrmParameters(**FAST)).model_version

    class HandPRM:  # prefers the wrong "Five times five." candidate
        def score(self, items, batch_size=16, max_length=1024):
            return [[0.9 if "times" in steps[0] else 0.2] * len(steps) for _p, steps in items]

        def solution_score(self, values):
            return min(values)

    from workers.ml.scorers import scorer_for

    prm = model_version_register(name="prm-hand", kind=ModelVersion.Kind.PRM, path="/nonexistent",
                                 config={"architecture": "implicit", "reference": "/nonexistent"})
    result = best_of_n_compare(version=prm, scorer=HandPRM(), orm_version=orm,
                               orm_scorer=scorer_for(path=orm.path, config=orm.config))
    assert (result["problems"], result["candidates"], result["voting"]) == (1, 2, "exact")
    assert set(result["best_of_n"]) == {"prm", "orm", "majority", "weighted_majority", "oracle"}
    top = result["best_of_n_max"]
    assert (top["n"], top["prm"], top["oracle"], top["majority"]) == (2, 0.0, 1.0, 0.5)
    assert top["weighted_majority"] == 0.0  # .9 for "25" against .2 for "10"
    assert top["orm"] in (0.0, 1.0)
    # The ORM's scores are stored like any version's; an ORM is refused where a PRM is needed.
    assert orm.scores.count() == 2
    from labeling.errors import EvaluationError

    with pytest.raises(EvaluationError, match="is a orm, not a PRM"):
        benchmark_start(version=orm, orm=orm.name)


@pytest.mark.django_db
def test_the_command_trains_in_process_and_refuses_bad_options(models_dir, capsys):
    with pytest.raises(CommandError, match="no graded candidate solutions"):
        call_command("train_orm", "--sync")
    make_candidates()
    with pytest.raises(CommandError, match="--learning-rate: learning_rate must be a finite number > 0"):
        call_command("train_orm", "--sync", "--learning-rate", "-1")
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_runs_the_job(models_dir, capsys):
    make_candidates()
    call_command("train_orm", "--sync", "--epochs", "1", "--batch-size", "4", "--max-length", "96")
    out = capsys.readouterr().out
    version = ModelVersion.objects.get(kind="orm")
    assert f"{version.name} at {version.path}" in out and "on 8 solutions (4 correct" in out
    with pytest.raises(CommandError, match="is a orm, not a PRM"):
        call_command("evaluate", "--model", version.name)


@pytest.mark.django_db
def test_a_copy_is_dropped_while_the_worker_lives_and_takes_over_once_it_is_lost(
        models_dir, django_capture_on_commit_callbacks, settings):
    from workers.tasks import gpu_train_orm

    make_candidates()
    with django_capture_on_commit_callbacks(execute=False):
        job = orm_train_start(params=OrmParameters(**FAST))
    assert rows.job_claim(job_id=job.pk)  # a first delivery took it; its worker is alive (fresh heartbeat)
    leftover = orm_out_dir(job_id=job.pk)
    leftover.mkdir(parents=True)
    gpu_train_orm.apply(args=(job.pk,))
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and not job.error and leftover.is_dir()  # the live job untouched
    assert not ModelVersion.objects.filter(kind="orm").exists()
    # The worker is lost: no heartbeat for longer than the stale window. The next copy takes over, clean.
    Job.objects.filter(pk=job.pk).update(heartbeat=timezone.now() - timedelta(
        seconds=settings.STEPWISE_JOB_STALE_SECONDS + 1))
    gpu_train_orm.apply(args=(job.pk,))
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert ModelVersion.objects.filter(kind="orm").count() == 1
