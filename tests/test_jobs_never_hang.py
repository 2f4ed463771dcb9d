"""No job hangs: the heartbeat is beaten while a task holds its row, the reaper sends a silent row again or
fails it with the reason, a copy of a live worker's message is dropped, and a second retrain returns the
running one. Real workers killed mid-job: tests/test_jobs_never_hang_workers.py."""
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from labeling.models import Export, Job, JobChunk, Round
from labeling.services.jobs import heartbeat
from labeling.services.jobs.reaper import jobs_reap
from labeling.services.jobs.rows import WorkerLost, chunk_claim, job_claim, job_create
from labeling.services.training import retraining
from labeling.services.training.retraining import RetrainParameters, retrain_start
from workers import tasks

RUNNING = Job.Status.RUNNING


@pytest.fixture
def silent(settings):
    """A heartbeat old enough that its worker counts as lost."""
    settings.STEPWISE_JOB_MAX_ATTEMPTS = 3
    return timezone.now() - timedelta(seconds=settings.STEPWISE_JOB_STALE_SECONDS + 5)


@pytest.fixture
def sent(monkeypatch):
    """What the reaper sends, instead of sending it."""
    calls = []
    monkeypatch.setattr("labeling.services.jobs.reaper.enqueue", lambda task, *args: calls.append((task.name, args)))
    return calls


def running(model=Export, *, beat, attempts=1, **fields):
    return model.objects.create(status=RUNNING, started=beat, heartbeat=beat, attempts=attempts, **fields)


@pytest.mark.django_db
def test_it_sends_a_silent_export_again_and_leaves_a_live_one_alone(silent, sent):
    lost, live = running(beat=silent), running(beat=timezone.now())
    assert jobs_reap() == {"sent": 1, "failed": 0}
    assert sent == [("workers.tasks.export_run", (lost.pk,))]
    lost.refresh_from_db(), live.refresh_from_db()
    assert lost.status == Export.Status.PENDING and "worker lost: no heartbeat since" in lost.message
    assert live.status == RUNNING and not live.message
    assert jobs_reap() == {"sent": 0, "failed": 0}  # pending now: its new message claims it


@pytest.mark.django_db
def test_a_resent_export_runs_to_the_end(silent, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.EXPORT_DIR = tmp_path
    lost = running(beat=silent, format="prm800k")
    with django_capture_on_commit_callbacks(execute=True):
        jobs_reap()
    lost.refresh_from_db()
    assert lost.status == Export.Status.DONE and lost.attempts == 2 and (tmp_path / lost.file).exists()


@pytest.mark.django_db
def test_it_fails_a_row_whose_workers_were_lost_every_time_and_its_round(silent, sent):
    round_ = Round.objects.create(number=1, status=Round.Status.TRAINING)
    job = running(Job, beat=silent, attempts=3, kind=Job.Kind.TRAIN_SELECTOR, round=round_)
    export = running(beat=silent, attempts=3)
    unknown = running(Job, beat=silent, kind="someday")  # no task to send it with
    assert jobs_reap() == {"sent": 0, "failed": 3} and sent == []
    for row in (job, export, unknown, round_):
        row.refresh_from_db()
    assert job.status == export.status == Job.Status.FAILED
    assert job.error.startswith("worker lost: no heartbeat since") and "after 3 attempt(s)" in job.error
    assert "no task recorded" in unknown.error
    assert round_.status == Round.Status.FAILED and f"job {job.pk}: worker lost" in round_.error


@pytest.mark.django_db
def test_a_silent_chunk_is_sent_again_and_fails_its_job_once_out_of_attempts(silent, sent):
    job = job_create(kind=Job.Kind.SCORE, chunks=[[1], [2], [3]])
    Job.objects.filter(pk=job.pk).update(status=RUNNING, heartbeat=silent)
    lost, live, exhausted = job.chunks.order_by("index")
    JobChunk.objects.filter(pk=lost.pk).update(status=RUNNING, heartbeat=silent, attempts=1)
    JobChunk.objects.filter(pk=live.pk).update(status=RUNNING, heartbeat=timezone.now(), attempts=1)
    assert jobs_reap() == {"sent": 1, "failed": 0}  # a chunked job's own heartbeat is not what counts
    assert sent == [("workers.tasks.gpu_score_chunk", (lost.pk,))]
    assert JobChunk.objects.get(pk=lost.pk).status == JobChunk.Status.PENDING
    JobChunk.objects.filter(pk=exhausted.pk).update(status=RUNNING, heartbeat=silent, attempts=3)
    assert jobs_reap() == {"sent": 0, "failed": 1}
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("chunk 2: worker lost")


@pytest.mark.django_db
def test_a_snapshot_is_its_retrains_business(silent, sent):
    live_snapshot, orphan = running(beat=silent, format="hf"), running(beat=silent, format="hf")
    running(Job, beat=timezone.now(), kind=Job.Kind.RETRAIN, parameters={"snapshot_export_id": live_snapshot.pk})
    over = Job.objects.create(kind=Job.Kind.RETRAIN, status=Job.Status.FAILED,
                              parameters={"snapshot_export_id": orphan.pk})
    assert jobs_reap() == {"sent": 0, "failed": 1} and sent == []
    assert Export.objects.get(pk=live_snapshot.pk).status == RUNNING
    assert Export.objects.get(pk=orphan.pk).error == f"retrain job {over.pk} ended before it was written"


@pytest.mark.django_db
def test_a_claim_drops_a_copy_while_the_worker_lives_and_takes_over_once_it_is_lost(silent):
    export = Export.objects.create()
    assert job_claim(job_id=export.pk, model=Export)
    assert not job_claim(job_id=export.pk, model=Export)  # a copy of the message: dropped
    assert Export.objects.get(pk=export.pk).attempts == 1
    Export.objects.filter(pk=export.pk).update(heartbeat=silent)
    assert job_claim(job_id=export.pk, model=Export)  # its worker was lost: taken over
    export.refresh_from_db()
    assert export.status == RUNNING and export.attempts == 2 and export.heartbeat > silent
    Export.objects.filter(pk=export.pk).update(heartbeat=silent, attempts=3)
    with pytest.raises(WorkerLost, match="worker lost: no heartbeat since .* after 3 attempt"):
        job_claim(job_id=export.pk, model=Export)
    assert Export.objects.get(pk=export.pk).status == Export.Status.FAILED


@pytest.mark.django_db
def test_a_chunk_copy_is_dropped_while_its_worker_lives(silent):
    job = job_create(kind=Job.Kind.SCORE, chunks=[[1, 2]])
    chunk = chunk_claim(chunk_id=job.chunks.get().pk)
    assert chunk.attempts == 1 and chunk.heartbeat and chunk_claim(chunk_id=chunk.pk) is None
    JobChunk.objects.filter(pk=chunk.pk).update(heartbeat=silent)
    assert chunk_claim(chunk_id=chunk.pk).attempts == 2


@pytest.mark.django_db
def test_a_copy_of_a_live_retrain_is_dropped_and_touches_nothing(settings, tmp_path):
    settings.STEPWISE_MODEL_DIR = tmp_path
    job = running(Job, beat=timezone.now(), kind=Job.Kind.RETRAIN, parameters={"snapshot_export_id": None})
    (tmp_path / f"prm-job{job.pk}").mkdir()
    tasks.gpu_retrain.apply(args=(job.pk,))
    job.refresh_from_db()
    assert job.status == RUNNING and job.attempts == 1 and not job.error
    assert (tmp_path / f"prm-job{job.pk}").exists()


@pytest.mark.django_db
def test_a_retrain_lost_every_time_fails_with_the_reason(silent, settings, tmp_path):
    settings.STEPWISE_MODEL_DIR = tmp_path
    job = running(Job, beat=silent, attempts=3, kind=Job.Kind.RETRAIN, parameters={"snapshot_export_id": None})
    tasks.gpu_retrain.apply(args=(job.pk,))  # the broker's redelivery after the visibility timeout
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("worker lost: no heartbeat since")


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_is_beaten_while_a_task_holds_its_row(settings):
    settings.STEPWISE_HEARTBEAT_SECONDS = 0.05
    export = Export.objects.create()
    with heartbeat.scope() as beater:
        assert job_claim(job_id=export.pk, model=Export)
        first = Export.objects.get(pk=export.pk).heartbeat
        deadline = time.time() + 10
        while Export.objects.get(pk=export.pk).heartbeat == first and time.time() < deadline:
            time.sleep(0.02)
        assert Export.objects.get(pk=export.pk).heartbeat > first
    assert not beater.thread.is_alive()


# --- one retrain at a time ----------------------------------------------------------------------------

@pytest.fixture
def labeled(db, settings, monkeypatch):
    from tests.label_factories import annotation_make
    from labeling.models import Annotator, Problem, Solution

    problem = Problem.objects.create(text="What is 1+1?", answer="2", split="train")
    annotation_make(annotator=Annotator.objects.create(), ratings=[1, 1],
                    solution=Solution.objects.create(problem=problem, steps=["One plus one.", "# Answer\n\n2"]))
    monkeypatch.setattr(retraining, "enqueue", lambda task, *args: None)  # no training here


def test_a_second_retrain_returns_the_one_under_way(labeled):
    first = retrain_start(params=RetrainParameters())
    assert not getattr(first, "already_running", False)
    again = retrain_start(params=RetrainParameters(learning_rate=1e-4))
    assert again.pk == first.pk and again.already_running
    Job.objects.filter(pk=first.pk).update(status=RUNNING)
    assert retrain_start(params=RetrainParameters()).pk == first.pk
    call_command("retrain")
    Job.objects.filter(pk=first.pk).update(status=Job.Status.FAILED)
    assert retrain_start(params=RetrainParameters()).pk != first.pk  # the first is over: a new one starts
    assert Job.objects.filter(kind=Job.Kind.RETRAIN).count() == 2


def test_retrain_now_twice_shows_the_first(labeled, client, alice):
    client.force_login(alice)
    first = client.post("/rounds/retrain/", follow=True).content.decode()
    job = Job.objects.get(kind=Job.Kind.RETRAIN)
    assert f"retraining job {job.pk} started" in first
    again = client.post("/rounds/retrain/", follow=True).content.decode()
    assert f"retraining job {job.pk} is already under way" in again
    form = {"learning_rate": "1e-3", "epochs": "1", "batch_size": "2", "grad_accum": "1", "max_length": "128",
            "seed": "0", "neutral": "class", "promote": "manual", "rounds": ""}
    admin = client.post("/admin/labeling/job/retrain/", form, follow=True).content.decode()
    assert f"Retrain job {job.pk} is already under way" in admin
    assert Job.objects.filter(kind=Job.Kind.RETRAIN).count() == 1


def test_the_command_says_a_retrain_is_under_way(labeled, capsys):
    job = retrain_start(params=RetrainParameters())
    call_command("retrain")
    assert f"retrain job {job.pk} is already pending" in capsys.readouterr().out
    assert Job.objects.filter(kind=Job.Kind.RETRAIN).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_retrains_asked_at_once_start_one(labeled):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs two connections writing at once (PostgreSQL)")
    jobs, barrier = [], threading.Barrier(2)

    def click():
        try:
            barrier.wait()
            jobs.append(retrain_start(params=RetrainParameters()).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(jobs) == 2 and len(set(jobs)) == 1 and Job.objects.filter(kind=Job.Kind.RETRAIN).count() == 1


@pytest.mark.django_db
def test_resume_jobs_reaps_first(silent, sent, capsys, django_capture_on_commit_callbacks):
    running(beat=silent, attempts=3)
    call_command("resume_jobs")
    assert "worker lost: 0 sent again, 1 failed" in capsys.readouterr().out
    call_command("reap_jobs")
    assert "worker lost: 0 sent again, 0 failed" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_beat_never_holds_the_task_up_behind_a_lock(settings):
    """Here the test's own open transaction holds the row: the beat gives up rather than wait on it."""
    settings.STEPWISE_HEARTBEAT_SECONDS = 0.05
    export = Export.objects.create()
    began = time.monotonic()
    with heartbeat.scope() as beater:
        assert job_claim(job_id=export.pk, model=Export)
        time.sleep(0.3)
    assert time.monotonic() - began < 4 and not beater.thread.is_alive()
