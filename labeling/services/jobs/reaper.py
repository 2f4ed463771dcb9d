"""The reaper: a running row whose heartbeat went stale lost its worker; send it again, or fail it with why.

A row is stale when its heartbeat (beaten every STEPWISE_HEARTBEAT_SECONDS by the worker holding it, see
heartbeat.py) is older than STEPWISE_JOB_STALE_SECONDS. A stale job, export or chunk that has claims left
(`attempts` < STEPWISE_JOB_MAX_ATTEMPTS) goes back to pending and its task is sent again, by the name the
row recorded when it was first sent; the next claim starts it over. One without claims left, or with no
task to send, fails with "worker lost: no heartbeat since ...", and so does the round it serves. A retrain's
snapshot export is its retrain's business: it is never sent on its own, and fails once its retrain is over.

Where it runs, with no human and no beat process: a thread in every Celery worker, every
STEPWISE_REAP_SECONDS (workers.tasks starts it when the worker is ready), so whichever worker is left
picks up what a dead one held. `manage.py reap_jobs` and `manage.py resume_jobs` run it once. Every
change is a conditional update, so reapers on many workers at once send a row once.
"""
import logging
import threading
import time

from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from labeling.models import Export, Job, JobChunk, JobRow
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.heartbeat import stale_before, stale_q
from labeling.services.jobs.rows import LIVE, job_fail, silent_since, worker_lost

log = logging.getLogger(__name__)
RUNNING, PENDING, FAILED = JobRow.Status.RUNNING, JobRow.Status.PENDING, JobRow.Status.FAILED


def jobs_reap() -> dict:
    """Send again or fail every stale running row; how many of each."""
    counts = {"sent": 0, "failed": 0}
    before = stale_before()
    chunked = JobChunk.objects.values("job_id")
    for row in Job.objects.exclude(id__in=chunked).filter(status=RUNNING).filter(stale_q(before)):
        _reap(Job, row, before, counts)
    for row in Export.objects.filter(status=RUNNING).filter(stale_q(before)):
        if not _snapshot_of(row.pk).exists():
            _reap(Export, row, before, counts)
    stale_chunks = JobChunk.objects.filter(status=RUNNING, job__status=RUNNING).filter(stale_q(before))
    for chunk in stale_chunks.select_related("job"):
        _reap_chunk(chunk, before, counts)
    counts["failed"] += _fail_orphan_snapshots()
    return counts


def task_for(row):
    """The task that runs `row` (a Job, an Export or a JobChunk): the name it was sent by, else by its kind."""
    from labeling.services.jobs.resume import CHUNK_TASKS, JOB_TASKS
    from workers import tasks

    if row.celery_task_name:
        return current_app.tasks.get(row.celery_task_name)
    if isinstance(row, Export):
        return tasks.export_run
    if isinstance(row, JobChunk):
        return CHUNK_TASKS.get(row.job.kind)
    return JOB_TASKS.get(row.kind)


def _reap(model, row, before, counts):
    stale = model.objects.filter(pk=row.pk, status=RUNNING).filter(stale_q(before))
    task = task_for(row)
    if task is not None and row.attempts < settings.STEPWISE_JOB_MAX_ATTEMPTS:
        lost = silent_since(row)
        if stale.update(status=PENDING, message=f"sent again ({lost})"[:300]):
            enqueue(task, row.pk)
            counts["sent"] += 1
            log.warning("%s %s sent again: %s", model._meta.verbose_name, row.pk, lost)
        return
    error = worker_lost(row) + ("" if task else " (no task recorded to send it again)")
    if stale.update(status=FAILED, error=error, finished=timezone.now()):
        counts["failed"] += 1
        log.warning("%s %s failed: %s", model._meta.verbose_name, row.pk, error)
        if model is Job and row.round_id:
            _round_fail(row.round_id, f"job {row.pk}: {error}")


def _reap_chunk(chunk, before, counts):
    stale = JobChunk.objects.filter(pk=chunk.pk, status=RUNNING).filter(stale_q(before))
    task = task_for(chunk)
    if task is not None and chunk.attempts < settings.STEPWISE_JOB_MAX_ATTEMPTS:
        if stale.update(status=JobChunk.Status.PENDING):
            enqueue(task, chunk.pk)
            counts["sent"] += 1
            log.warning("chunk %s of job %s sent again: its worker was lost", chunk.index, chunk.job_id)
        return
    error = f"chunk {chunk.index}: {worker_lost(chunk)}"
    if stale.exists() and job_fail(job_id=chunk.job_id, error=error):
        counts["failed"] += 1
        log.warning("job %s failed: %s", chunk.job_id, error)
        if chunk.job.round_id:
            _round_fail(chunk.job.round_id, f"job {chunk.job_id}: {error}")


def _snapshot_of(export_id):
    return Job.objects.filter(kind=Job.Kind.RETRAIN, parameters__snapshot_export_id=export_id)


def _fail_orphan_snapshots() -> int:
    """A snapshot export left pending or running by a retrain that is over would show as under way for ever."""
    over = Job.objects.filter(kind=Job.Kind.RETRAIN).exclude(status__in=LIVE)
    retrain_of = {export_id: job_id for job_id, export_id in over.values_list("id", "parameters__snapshot_export_id")
                  if export_id is not None}
    failed = 0
    for export_id in Export.objects.filter(pk__in=retrain_of, status__in=LIVE).values_list("id", flat=True):
        failed += job_fail(job_id=export_id, model=Export,
                           error=f"retrain job {retrain_of[export_id]} ended before it was written")
    return failed


def _round_fail(round_id, error):
    from labeling.services.rounds.stages import round_fail
    round_fail(round_id=round_id, error=error)


def reaper_start(interval: int | None = None) -> threading.Thread | None:
    """Reap now and every `interval` seconds (STEPWISE_REAP_SECONDS; 0: never) in a daemon thread."""
    interval = settings.STEPWISE_REAP_SECONDS if interval is None else interval
    if not interval:
        return None

    def run():
        while True:
            try:
                jobs_reap()
            except Exception:  # the database away for a moment: try again next time
                log.exception("reaping stale jobs failed")
                connection.close()
            time.sleep(interval)

    thread = threading.Thread(target=run, daemon=True, name="stepwise-reaper")
    thread.start()
    return thread
