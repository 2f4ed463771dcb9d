"""One job layer over one kind of row: a task's failure lands on its job and round, a stop ends a task
quietly, an export is claimed and progressed as a job is, and every send records its message id."""
import pytest
from django.utils import timezone

from labeling.errors import JobCancelled
from labeling.models import Export, Job, ModelVersion, Round
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.resume import jobs_resume
from labeling.services.jobs.rows import job_claim, job_create, job_fail, job_progress
from workers import tasks


@pytest.fixture
def scoring_job(db):
    round_ = Round.objects.create(number=1, status=Round.Status.SCORING)
    version = ModelVersion.objects.create(name="selector", kind=ModelVersion.Kind.PRM)
    return job_create(kind=Job.Kind.SCORE, round=round_, model_version=version, chunks=[[1, 2]])


def run_chunk(job, score, monkeypatch, capture):
    monkeypatch.setattr("workers.ml.scorers.scorer_for", lambda **kwargs: None)  # no model is loaded
    monkeypatch.setattr("labeling.services.rounds.scoring.score_chunk", score)
    chunk = job.chunks.get()
    with capture(execute=True):
        enqueue(tasks.gpu_score_chunk, chunk.pk)
    for row in (job, job.round, chunk):
        row.refresh_from_db()
    return chunk


def test_a_failing_task_marks_its_job_and_its_round_failed(scoring_job, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    def explode(**kwargs):
        raise RuntimeError("the GPU fell off")

    chunk = run_chunk(scoring_job, explode, monkeypatch, django_capture_on_commit_callbacks)
    assert scoring_job.status == Job.Status.FAILED and scoring_job.error == "RuntimeError: the GPU fell off"
    assert scoring_job.round.status == Round.Status.FAILED
    assert scoring_job.round.error == f"job {scoring_job.pk}: RuntimeError: the GPU fell off"
    assert chunk.celery_task_id and chunk.attempts == 1


def test_a_task_whose_job_was_stopped_ends_quietly(scoring_job, monkeypatch, django_capture_on_commit_callbacks):
    def stopped_meanwhile(*, chunk, **kwargs):
        job_fail(job_id=chunk.job_id, error="stopped by alice")
        job_progress(job_id=chunk.job_id, add=1)  # raises JobCancelled

    run_chunk(scoring_job, stopped_meanwhile, monkeypatch, django_capture_on_commit_callbacks)
    assert scoring_job.status == Job.Status.FAILED and scoring_job.error == "stopped by alice"
    assert scoring_job.round.status == Round.Status.SCORING  # the stop says what happens to the round, not the task


@pytest.mark.django_db
def test_an_export_is_claimed_progressed_and_stopped_as_a_job_is():
    export = Export.objects.create(format="prm800k")
    assert job_claim(job_id=export.pk, model=Export) and not job_claim(job_id=export.pk, model=Export)
    job_progress(job_id=export.pk, done=3, total=4, message="writing", model=Export)
    export.refresh_from_db()
    assert (export.done, export.total, export.progress, export.message) == (3, 4, 0.75, "writing")
    assert export.heartbeat and export.status == Export.Status.RUNNING
    assert job_fail(job_id=export.pk, error="stopped", model=Export)
    with pytest.raises(JobCancelled):
        job_progress(job_id=export.pk, add=1, model=Export)


@pytest.mark.django_db
def test_resume_sends_a_pending_export_but_not_a_retrain_snapshot(settings, tmp_path,
                                                                  django_capture_on_commit_callbacks):
    settings.EXPORT_DIR = tmp_path
    loose, snapshot = Export.objects.create(format="prm800k"), Export.objects.create(format="hf")
    retrain = Job.objects.create(kind=Job.Kind.RETRAIN, parameters={"snapshot_export_id": snapshot.pk},
                                 status=Job.Status.RUNNING, heartbeat=timezone.now(), attempts=1)  # a live worker's
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_resume() == {"chunks": 0, "jobs": 2, "rounds": 0}  # the export and a copy of the retrain
    retrain.refresh_from_db()
    assert retrain.status == Job.Status.RUNNING and retrain.attempts == 1  # the copy was dropped
    loose.refresh_from_db()
    snapshot.refresh_from_db()
    assert loose.status == Export.Status.DONE and loose.progress == 1.0 and loose.celery_task_id
    assert snapshot.status == Export.Status.PENDING and not snapshot.celery_task_id
