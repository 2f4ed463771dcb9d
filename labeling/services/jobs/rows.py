"""Job rows: creation, claiming, progress, completion and failure, for every long-running row.

A `Job` and an `Export` are both `JobRow`s, so the same functions move either (pass `model=Export`):
a claim is a conditional update, progress beats the heartbeat and raises JobCancelled once the row
was stopped, and finishing or failing changes a running row exactly once.

A job that can be split (scoring, generation) has `JobChunk`s, one Celery message each. A chunk's
work is written in small committed batches that are idempotent (a score or a solution that exists
is never written twice), so a redelivered chunk only does what its dead worker had not committed.
The chunk that finds every chunk done flips the job to done with a conditional update: exactly one
process wins and fires the job's continuation, however many workers finish at once.
"""
import socket

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from labeling.errors import JobCancelled
from labeling.models import Job, JobChunk, JobRow

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
    """pending -> running; True only for the one caller that made the change (a redelivery gets False)."""
    now = timezone.now()
    return bool(model.objects.filter(pk=job_id, status=JobRow.Status.PENDING).update(
        status=JobRow.Status.RUNNING, started=now, heartbeat=now))


def job_start(*, job_id: int, model=Job) -> bool:
    """Claim the job, or join it while it runs (its next chunk, a redelivered message). False when it is over."""
    return job_claim(job_id=job_id, model=model) or model.objects.filter(pk=job_id,
                                                                         status=JobRow.Status.RUNNING).exists()


def chunk_claim(*, chunk_id: int) -> JobChunk | None:
    """Take a chunk that is not done (a redelivered one too); None when done or its job is over."""
    chunk = JobChunk.objects.select_related("job").filter(pk=chunk_id).first()
    if chunk is None or chunk.status == JobChunk.Status.DONE or not job_start(job_id=chunk.job_id):
        return None
    JobChunk.objects.filter(pk=chunk_id).exclude(status=JobChunk.Status.DONE).update(
        status=JobChunk.Status.RUNNING, attempts=F("attempts") + 1, worker=socket.gethostname()[:255],
        started=timezone.now())
    chunk.refresh_from_db()
    return chunk


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
