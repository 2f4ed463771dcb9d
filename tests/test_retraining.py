"""Retraining the step-head PRM on the collected labels, in the embedded mode with tiny Llamas: a snapshot
export first, a new version with its provenance, the selector untouched, failures that leave nothing, the
command, and the round's label target starting exactly one retrain."""
import hashlib
import os
import uuid
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read by datasets at import: never the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from labeling.models import Annotator, Export, Job, ModelVersion, Problem, Round, Solution  # noqa: E402
from labeling.services.training import retraining  # noqa: E402
from labeling.services.annotation.queue import queue_next
from labeling.errors import InvalidInput
from labeling.services.rounds.registry import selector_active  # noqa: E402
from labeling.services.training.retraining import RetrainParameters, retrain_if_due, retrain_start  # noqa: E402
from labeling.services.annotation.submission import annotation_submit  # noqa: E402
from tests.label_factories import annotation_make  # noqa: E402
from tests.queue_factories import annotator_make, ratings, round_make, task_make  # noqa: E402
from tests.round_factories import register_selector  # noqa: E402
from tests.tiny_models import build_token_classifier  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("datasets")

FAST = {"learning_rate": 1e-3, "epochs": 2, "batch_size": 2, "max_length": 128}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


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
def retrain(committed):
    """retrain_start, then the job it sends on commit (the test's transaction never commits)."""
    return lambda **params: committed(retrain_start, params=RetrainParameters(**params))


def label(problem, steps, values, *, round_=None, qc=False, screening=False):
    """One phase-2 annotation stored as submission stores it: completion 0 per rated step, none chosen at a -1."""
    solution = Solution.objects.create(problem=problem, steps=steps)
    annotator = Annotator.objects.first() or Annotator.objects.create()
    return annotation_make(annotator=annotator, solution=solution, ratings=values, round=round_,
                           is_quality_control=qc, is_screening=screening)


def make_labels():
    """Six labels to train on (rounds 1 and 2), and one each that must never be: QC, screening, test split."""
    r1, r2 = Round.objects.create(number=1), Round.objects.create(number=2)
    p1 = Problem.objects.create(text="What is 1+1?", answer="2", split="train")
    p2 = Problem.objects.create(text="What is 2*3?", answer="6")
    held_out = Problem.objects.create(text="What is 7*7?", answer="49", split="test")
    label(p1, ["One plus one.", "It is 2.", "# Answer\n\n2"], [1, 1, 1], round_=r1)
    label(p1, ["One plus one is 3.", "# Answer\n\n3"], [-1], round_=r1)
    label(p1, ["Add them.", "Get 11.", "# Answer\n\n11"], [1, -1], round_=r1)
    label(p2, ["Two threes.", "That is 6.", "# Answer\n\n6"], [1, 0, 1], round_=r2)
    label(p2, ["Two plus three.", "# Answer\n\n5"], [-1], round_=r2)
    label(p2, ["Multiply.", "2*3 = 6.", "# Answer\n\n6"], [0, 1, 1])
    label(p1, ["QC step."], [1], round_=r1, qc=True)
    label(p1, ["Screening step."], [1], screening=True)
    label(held_out, ["Seven sevens.", "# Answer\n\n49"], [1, 1], round_=r2)


@pytest.mark.django_db
def test_it_retrains_a_step_prm_on_a_snapshot_and_leaves_the_selector_alone(models_dir, tiny_prm, settings,
                                                                           django_capture_on_commit_callbacks):
    from workers.ml.scorers import scorer_for

    selector = register_selector(tiny_prm)
    make_labels()
    with django_capture_on_commit_callbacks(execute=True):
        job = retrain_start(params=RetrainParameters(**FAST))
        late = label(Problem.objects.first(), ["Late step."], [1], round_=Round.objects.first())  # not in the snapshot
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    version = job.model_version
    assert version.kind == ModelVersion.Kind.PRM and version.name == f"prm-job{job.pk}"
    assert version.config == {"architecture": "step_head", "step_separator": "\n\n", "score_how": "product",
                              "max_length": 128}  # trained with it, so scored with it
    assert version.base_model == tiny_prm and Path(version.path) == models_dir / f"prm-job{job.pk}"
    curve = version.metrics["loss_curve"]
    assert job.done == job.total == len(curve) == 6  # 6 labeled solutions, batch 2, 2 epochs
    assert version.metrics["final_loss"] == curve[-1]
    train = version.metrics["train"]
    assert train["items"] == 6 and train["labeled_steps"] == 13 and train["tokens_per_second"] > 0
    assert train["label_counts"] == {"negative": 3, "neutral": 2, "positive": 8}

    export = Export.objects.get(pk=job.parameters["snapshot_export_id"])
    assert export.status == Export.Status.DONE and export.format == "hf" and export.record_count == 6
    assert hashlib.sha256((settings.EXPORT_DIR / export.file).read_bytes()).hexdigest() == export.sha256
    assert export.filters["until_id"] < late.pk and export.provenance["annotations"] == 6
    snapshot = version.metrics["snapshot"]
    assert (snapshot["export_id"], snapshot["sha256"], snapshot["records"]) == (export.pk, export.sha256, 6)
    assert snapshot["rounds"] == [1, 2]
    assert f"snapshot export {export.pk}" in version.how_made and export.sha256 in version.how_made
    assert job.result["snapshot"] == snapshot and job.result["loss_curve"] == curve
    assert job.result["model_version"]["id"] == version.pk and job.result["promotion"] == {"policy": "manual"}

    assert selector_active() == selector  # manual: a new version is never made the selector by retraining
    assert [p.name for p in models_dir.iterdir()] == [f"prm-job{job.pk}"]  # no temporary folder left
    scorer = scorer_for(path=version.path, config=version.config)
    [steps] = scorer.score([("What is 1+1?", ["One plus one.", "It is 2."])], max_length=128)
    assert len(steps) == 2 and all(len(p) == 3 and abs(sum(p) - 1) < 1e-4 for p in steps)
    assert 0.0 <= scorer.solution_score(steps) <= 1.0


@pytest.mark.django_db
def test_bad_parameters_are_refused_before_anything_is_queued(models_dir):
    make_labels()
    for params, field in ((dict(learning_rate=-1.0), "learning_rate"), (dict(epochs=0), "epochs"),
                          (dict(promote="always"), "promote"), (dict(rounds=(7,)), "rounds"),
                          (dict(neutral="maybe"), "neutral"), (dict(base=" "), "base")):
        with pytest.raises(InvalidInput) as refused:
            retrain_start(params=RetrainParameters(**params))
        assert refused.value.field == field
    assert not Job.objects.exists() and not Export.objects.exists()


def oom(**kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def register_fails(**kwargs):
    raise RuntimeError("the database went away")


@pytest.mark.parametrize("case, expected", [
    ("diverging learning rate", "diverged"),
    ("missing base model", "no-such-model"),
    ("out of memory", "OutOfMemoryError"),
    ("registration fails after training", "database went away"),
])
@pytest.mark.django_db
def test_a_failed_training_run_leaves_the_active_selector_unchanged(case, expected, models_dir, tiny_prm, tmp_path,
                                                                   retrain, monkeypatch):
    selector = register_selector(tiny_prm)
    make_labels()
    params = dict(FAST)
    if case == "diverging learning rate":
        params["learning_rate"] = 1e30  # passes the early check (finite, > 0); the loss turns nan
    elif case == "missing base model":
        params["base"] = str(tmp_path / "no-such-model")
    elif case == "out of memory":
        monkeypatch.setattr("workers.ml.prm_training.train_step_prm", oom)
    else:
        monkeypatch.setattr(retraining, "model_version_register", register_fails)
    job = retrain(**params)
    assert job.status == Job.Status.FAILED and expected in job.error
    assert job.model_version is None
    assert list(ModelVersion.objects.values_list("id", flat=True)) == [selector.pk]  # nothing registered
    assert selector_active() == selector
    assert not models_dir.exists() or not any(models_dir.iterdir())  # no model folder, whole or partial
    assert Export.objects.get(pk=job.parameters["snapshot_export_id"]).status == Export.Status.DONE


class FakeEvaluation:
    """Stands in for labeling.services.training.evaluation, whose start needs held-out data."""

    def __init__(self):
        self.calls = []

    def evaluation_start(self, **kwargs):
        self.calls.append(kwargs)
        return Job.objects.create(kind=Job.Kind.EVALUATE, model_version=kwargs["version"])


@pytest.mark.django_db
def test_if_better_hands_the_new_version_to_an_evaluation_and_promotes_nothing_itself(models_dir, tiny_prm, retrain,
                                                                                    monkeypatch):
    selector = register_selector(tiny_prm)
    make_labels()
    evaluation = FakeEvaluation()
    monkeypatch.setattr(retraining, "evaluation_start", evaluation.evaluation_start)
    job = retrain(**FAST, promote="if_better")
    assert job.status == Job.Status.DONE, job.error
    [call] = evaluation.calls
    assert call == {"version": job.model_version, "user": None, "promote_if_better": True}
    evaluate = Job.objects.get(kind=Job.Kind.EVALUATE)
    assert job.result["promotion"] == {"policy": "if_better", "evaluation_job_id": evaluate.pk}
    assert selector_active() == selector


@pytest.mark.django_db
def test_a_redelivered_retrain_is_dropped_while_its_worker_lives_and_starts_clean_once_it_is_lost(models_dir,
                                                                                                  tiny_prm, settings):
    from datetime import timedelta

    from workers import tasks

    selector = register_selector(tiny_prm)
    make_labels()
    job = retrain_start(params=RetrainParameters(**FAST))  # its message is never sent: the test never commits
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started=now, heartbeat=now, attempts=1)
    left = models_dir / f".prm-job{job.pk}.x1y2.tmp"  # what the first worker is writing
    left.mkdir(parents=True)
    (left / "model.safetensors").write_bytes(b"half")
    snapshot = Export.objects.filter(pk=job.parameters["snapshot_export_id"])
    snapshot.update(status=Export.Status.RUNNING, heartbeat=now, attempts=1)
    tasks.gpu_retrain(job.pk)  # a copy of its message while the worker lives: dropped, nothing touched
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.attempts == 1 and not job.error and left.exists()
    silent = now - timedelta(seconds=settings.STEPWISE_JOB_STALE_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(heartbeat=silent)  # then the worker was lost
    snapshot.update(heartbeat=silent)
    tasks.gpu_retrain(job.pk)  # the next delivery takes over and starts clean
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 2, job.error
    assert not left.exists() and sorted(p.name for p in models_dir.iterdir()) == [f"prm-job{job.pk}"]
    assert snapshot.get().status == Export.Status.DONE and job.result["snapshot"]["records"] == 6
    assert selector_active() == selector and ModelVersion.objects.count() == 2
    tasks.gpu_retrain(job.pk)  # once more: nothing changes
    assert Job.objects.get(pk=job.pk).status == Job.Status.DONE and ModelVersion.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_command_retrains_in_process_and_names_the_bad_option(models_dir, tiny_prm, capsys):
    selector = register_selector(tiny_prm)
    make_labels()
    with pytest.raises(CommandError, match="--learning-rate"):
        call_command("retrain", "--sync", "--learning-rate", "-1")
    with pytest.raises(CommandError, match="--rounds: no round 7"):
        call_command("retrain", "--sync", "--rounds", "1,7")
    assert not Job.objects.exists()
    with pytest.raises(CommandError, match="failed: .*diverged"):
        call_command("retrain", "--sync", "--learning-rate", "1e30", "--batch-size", "2", "--max-length", "128")
    call_command("retrain", "--sync", "--rounds", "1", "--learning-rate", "1e-3", "--batch-size", "2",
                 "--max-length", "128")
    out = capsys.readouterr().out
    job = Job.objects.filter(kind=Job.Kind.RETRAIN, status=Job.Status.DONE).get()
    assert f"{job.model_version.name}" in out and "final loss" in out
    assert job.result["snapshot"]["records"] == 3 and job.parameters["rounds"] == [1]
    assert selector_active() == selector


@pytest.mark.django_db
def test_the_label_target_starts_exactly_one_retrain(models_dir, settings, django_capture_on_commit_callbacks,
                                                     monkeypatch):
    settings.STEPWISE_QC_RATE = 0
    sent = []
    monkeypatch.setattr(retraining, "enqueue", lambda task, *args: sent.append((task.name, args)))
    rnd = round_make(parameters={"label_target": 2})
    for _ in range(3):
        task_make(round=rnd, n_steps=2)
    annotator = annotator_make()

    def submit():
        with django_capture_on_commit_callbacks(execute=True):
            lease = queue_next(annotator=annotator)
            annotation_submit(assignment=lease, annotator=annotator, client_id=uuid.uuid4(), ratings=ratings(1, 1),
                              finish_reason="solution", total_time_ms=1000)

    submit()
    assert not Job.objects.filter(kind=Job.Kind.RETRAIN).exists()
    submit()  # the second label reaches the target
    job = Job.objects.get(kind=Job.Kind.RETRAIN)
    rnd.refresh_from_db()
    assert rnd.parameters["retrain_job_id"] == job.pk and rnd.parameters["label_target"] == 2
    assert job.parameters["trigger"] == {"round": rnd.number, "label_target": 2, "labels": 2}
    assert sent == [("workers.tasks.gpu_retrain", (job.pk,))]
    submit()  # past the target
    assert retrain_if_due(round_=rnd) is None
    stale = Round.objects.get(pk=rnd.pk)
    stale.parameters.pop("retrain_job_id")  # a copy read before the job was recorded
    assert retrain_if_due(round_=stale) is None  # the locked re-read and the conditional update refuse it
    assert Job.objects.filter(kind=Job.Kind.RETRAIN).count() == 1 and len(sent) == 1


@pytest.mark.django_db
def test_an_admin_starts_a_retrain_from_the_job_list(client, alice, bob, models_dir):
    make_labels()
    client.force_login(alice)
    assert 'href="/admin/labeling/job/retrain/"' in client.get("/admin/labeling/job/").content.decode()
    page = client.get("/admin/labeling/job/retrain/")
    assert page.status_code == 200 and b"Start the retrain" in page.content
    form = {"learning_rate": "1e-3", "epochs": "1", "batch_size": "2", "grad_accum": "1", "max_length": "128",
            "seed": "0", "neutral": "class", "promote": "manual", "rounds": "9"}
    refused = client.post("/admin/labeling/job/retrain/", form)
    assert refused.status_code == 200 and b"no round 9" in refused.content and not Job.objects.exists()
    started = client.post("/admin/labeling/job/retrain/", {**form, "rounds": "1, 2"})
    job = Job.objects.get(kind=Job.Kind.RETRAIN)  # its training is sent on commit, which this test never does
    assert started.status_code == 302 and started.url.endswith("?kind__exact=retrain")
    assert job.requested_by == alice and job.parameters["rounds"] == [1, 2] and job.parameters["base"]
    client.force_login(bob)
    assert client.get("/admin/labeling/job/retrain/").status_code == 302  # not staff: sent to log in
