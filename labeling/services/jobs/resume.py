"""Sending unfinished work again, for when the broker lost its messages (a Redis restart without persistence).

Every task is idempotent, so a chunk sent twice is done once; this is safe to run at any time. A retrain
is not sent again (a redelivered retrain fails its job: see retraining.retrain_claim), nor an export
that a retrain writes as its snapshot (the retrain writes it itself).
"""
from labeling.models import Export, Job, JobChunk, Round
from labeling.services.jobs.dispatch import enqueue
from workers import tasks

CHUNK_TASKS = {Job.Kind.SCORE: tasks.gpu_score_chunk, Job.Kind.GENERATE: tasks.gpu_generate_chunk}
JOB_TASKS = {Job.Kind.TRAIN_SELECTOR: tasks.gpu_train_selector, Job.Kind.EVALUATE: tasks.gpu_evaluate}


def jobs_resume() -> dict:
    sent = {"chunks": 0, "jobs": 0, "rounds": 0}  # an export counts as a job
    for job in Job.objects.filter(status__in=[Job.Status.PENDING, Job.Status.RUNNING]):
        if job.kind in CHUNK_TASKS:
            for chunk_id in job.chunks.exclude(status=JobChunk.Status.DONE).values_list("id", flat=True):
                enqueue(CHUNK_TASKS[job.kind], chunk_id)
                sent["chunks"] += 1
        elif job.kind in JOB_TASKS:
            enqueue(JOB_TASKS[job.kind], job.pk)
            sent["jobs"] += 1
    snapshots = set(Job.objects.filter(kind=Job.Kind.RETRAIN)
                    .values_list("parameters__snapshot_export_id", flat=True))
    # Only a pending export: a running one was claimed, and a claim is never taken twice.
    for export_id in Export.objects.filter(status=Export.Status.PENDING).values_list("id", flat=True):
        if export_id not in snapshots:
            enqueue(tasks.export_run, export_id)
            sent["jobs"] += 1
    unfinished = Round.objects.exclude(status__in=[Round.Status.DONE, Round.Status.FAILED])
    for round_id in unfinished.values_list("id", flat=True):
        enqueue(tasks.round_advance, round_id)
        sent["rounds"] += 1
    return sent
