"""Job rows: creation, claiming, progress, completion and failure, for every long-running row.

A `Job` and an `Export` are both `JobRow`s, so the same functions move either (pass `model=Export`):
a claim is a conditional update, progress beats the heartbeat and raises JobCancelled once the row
was stopped, and finishing or failing changes a running row exactly once.

A job that can be split (scoring, generation) has `JobChunk`s, one Celery message each. A chunk's
work is written in small committed batches that are idempotent (a score or a solution that exists
is never written twice), so a redelivered chunk only does what its dead worker had not committed.
The chunk that finds every chunk done flips the job to done with a conditional update: exactly one
process wins and fires the job's continuation, however many workers finish at once.

Jobs never hang: a claim also takes over a row whose worker was lost (running, heartbeat older than
STEPWISE_JOB_STALE_SECONDS; see heartbeat.py), up to STEPWISE_JOB_MAX_ATTEMPTS claims, and fails it
with the reason after that. A message delivered while the row's heartbeat is fresh (a broker's
visibility timeout shorter than the job, a requeue) gets False and is dropped: the live job goes on.
"""
import datetime as dt
import logging
import socket

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from labeling.errors import JobCancelled
from labeling.models import Job, JobChunk, JobRow
from labeling.services.jobs import heartbeat

log = logging.getLogger(__name__)

LIVE = [JobRow.Status.PENDING, JobRow.Status.RUNNING]


def job_create(*, kind: str, chunks: list[list[int]] | None = None, total: int | None = None, round=None,
               model_version=None, parameters: dict | None = None, user=None) -> Job:
    job = Job.objects.create(kind=kind, round=round, model_version=model_version, parameters=parameters or {},
                             requested_by=user,
                             total=total if total is not None else sum(len(c) for c in chunks or []))
    if chunks:
        JobChunk.objects.bulk_create([JobChunk(job=job, index=i, ids=ids) for i, ids in enumerate(chunks)])
    return job


def split(ids: list[int], size: int) -> list[list[int]]:
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def job_claim(*, job_id: int, model=Job) -> bool:
    """pending -> running, or take the row over from a lost worker; True only for the one caller that made
    the change. False when the row is over, or held by a live worker (a duplicate delivery: drop it)."""
    now = timezone.now()
    claimed = model.objects.filter(pk=job_id, status=JobRow.Status.PENDING).update(
        status=JobRow.Status.RUNNING, started=now, heartbeat=now, attempts=F("attempts") + 1)
    if not claimed:
        claimed = _take_over(model.objects.filter(pk=job_id), now=now)
        if claimed:
            log.warning("%s %s: taken over from a lost worker", model._meta.verbose_name, job_id)
        elif _exhausted(model.objects.filter(pk=job_id)):
            error = worker_lost(model.objects.get(pk=job_id))
            job_fail(job_id=job_id, model=model, error=error)
            raise WorkerLost(error)  # RowTask.on_failure also fails the round the job serves
        elif model.objects.filter(pk=job_id, status=JobRow.Status.RUNNING).exists():
            log.warning("%s %s: a copy of its message, dropped: a live worker holds it",
                        model._meta.verbose_name, job_id)
    if claimed:
        heartbeat.hold(model, job_id)
    return bool(claimed)


def job_start(*, job_id: int, model=Job) -> bool:
    """A single-message job's claim (job_claim): False when it is over or a live worker holds it."""
    return job_claim(job_id=job_id, model=model)


def chunk_claim(*, chunk_id: int) -> JobChunk | None:
    """Take a chunk that is pending, or running on a lost worker (a redelivered one); None when it is done,
    its job is over, or a live worker holds it (a duplicate delivery)."""
    chunk = JobChunk.objects.select_related("job").filter(pk=chunk_id).first()
    if chunk is None or chunk.status == JobChunk.Status.DONE or not _job_join(job_id=chunk.job_id):
        return None
    now = timezone.now()
    claim = {"status": JobChunk.Status.RUNNING, "attempts": F("attempts") + 1, "worker": socket.gethostname()[:255],
             "started": now, "heartbeat": now}
    rows = JobChunk.objects.filter(pk=chunk_id)
    if not (rows.filter(status=JobChunk.Status.PENDING).update(**claim) or _take_over(rows, now=now, **claim)):
        if _exhausted(rows):
            error = f"chunk {chunk.index}: {worker_lost(rows.get())}"
            job_fail(job_id=chunk.job_id, error=error)
            raise WorkerLost(error)
        log.warning("chunk %s of job %s: a copy of its message, dropped: a live worker holds it or it is done",
                    chunk.index, chunk.job_id)
        return None
    heartbeat.hold(JobChunk, chunk_id)
    heartbeat.hold(Job, chunk.job_id)
    chunk.refresh_from_db()
    return chunk


def _job_join(*, job_id: int) -> bool:
    """A chunk's job: claimed by its first chunk, joined by the others while it runs."""
    now = timezone.now()
    return bool(Job.objects.filter(pk=job_id, status=JobRow.Status.PENDING).update(
        status=JobRow.Status.RUNNING, started=now, heartbeat=now, attempts=1)
        or Job.objects.filter(pk=job_id, status=JobRow.Status.RUNNING).exists())


def _take_over(rows, *, now, **claim) -> int:
    """running with a stale heartbeat -> running here, if claims are left; how many rows changed (0 or 1)."""
    claim = claim or {"started": now, "heartbeat": now, "attempts": F("attempts") + 1}
    return rows.filter(status=JobRow.Status.RUNNING, attempts__lt=settings.STEPWISE_JOB_MAX_ATTEMPTS).filter(
        heartbeat.stale_q()).update(**claim)


def _exhausted(rows) -> bool:
    """Running, silent, and every claim used: the worker was lost that many times; fail it, don't loop."""
    return rows.filter(status=JobRow.Status.RUNNING, attempts__gte=settings.STEPWISE_JOB_MAX_ATTEMPTS).filter(
        heartbeat.stale_q()).exists()


class WorkerLost(Exception):
    """A row's workers were lost STEPWISE_JOB_MAX_ATTEMPTS times: it fails rather than loops."""


def silent_since(row) -> str:
    """"worker lost: no heartbeat since <when>" for a row (a Job, an Export or a JobChunk)."""
    since = f"since {row.heartbeat.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if row.heartbeat else "ever"
    return f"worker lost: no heartbeat {since}"


def worker_lost(row) -> str:
    """Why a row whose worker vanished failed."""
    return (f"{silent_since(row)} after {row.attempts} attempt(s) (a worker killed, out of memory or its "
            "machine gone); start it again once the cause is fixed")


def job_progress(*, job_id: int, add: int = 0, done: int | None = None, total: int | None = None,
                 message: str | None = None, model=Job) -> None:
    """Count `add` more items done (or set `done`, `total`) and beat the heartbeat.

    Raises JobCancelled when the row stopped running meanwhile (an admin stopped it)."""
    changes = {"heartbeat": timezone.now()}
    if add:
        changes["done"] = F("done") + add
    elif done is not None:
        changes["done"] = done
    if total is not None:
        changes["total"] = total
    if message is not None:
        changes["message"] = message[:300]
    if not model.objects.filter(pk=job_id, status=JobRow.Status.RUNNING).update(**changes):
        raise JobCancelled(f"{model._meta.verbose_name} {job_id} is no longer running")


def chunk_finish(*, chunk: JobChunk) -> bool:
    """Mark the chunk done; True when this call also finished the whole job."""
    JobChunk.objects.filter(pk=chunk.pk).exclude(status=JobChunk.Status.DONE).update(
        status=JobChunk.Status.DONE, finished=timezone.now())
    if JobChunk.objects.filter(job_id=chunk.job_id).exclude(status=JobChunk.Status.DONE).exists():
        return False
    return job_finish(job_id=chunk.job_id)


def job_finish(*, job_id: int, result: dict | None = None, model=Job, **fields) -> bool:
    """running -> done, exactly once, with the row's own `fields`; True for the caller that made the change."""
    with transaction.atomic():
        changes = {"status": JobRow.Status.DONE, "finished": timezone.now(), "done": F("total"), "message": "",
                   **fields}
        if result is not None:
            changes["result"] = result
        return bool(model.objects.filter(pk=job_id, status=JobRow.Status.RUNNING).update(**changes))


def job_fail(*, job_id: int, error: str, model=Job) -> bool:
    """pending or running -> failed (a stop, an exception); True for the caller that made the change."""
    return bool(model.objects.filter(pk=job_id, status__in=LIVE).update(
        status=JobRow.Status.FAILED, error=error[:10000], finished=timezone.now()))


def pending_chunk_ids(*, job_id: int) -> list[int]:
    return list(JobChunk.objects.filter(job_id=job_id).exclude(status=JobChunk.Status.DONE)
                .order_by("index").values_list("id", flat=True))
