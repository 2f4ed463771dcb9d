"""Sending unfinished work again, for when the broker lost its messages (a Redis restart without persistence).

Every task is idempotent, so a chunk sent twice is done once; this is safe to run at any time.
"""
from labeling.models import Job, JobChunk, Round
from labeling.services.jobs.dispatch import send

CHUNK_TASKS = {Job.Kind.SCORE: "workers.tasks.gpu_score_chunk", Job.Kind.GENERATE: "workers.tasks.gpu_generate_chunk"}
JOB_TASKS = {Job.Kind.TRAIN_SELECTOR: "workers.tasks.gpu_train_selector",
             Job.Kind.EVALUATE: "workers.tasks.gpu_evaluate"}


def jobs_resume() -> dict:
    sent = {"chunks": 0, "jobs": 0, "rounds": 0}
    for job in Job.objects.filter(status__in=[Job.Status.PENDING, Job.Status.RUNNING]):
        if job.kind in CHUNK_TASKS:
            for chunk_id in job.chunks.exclude(status=JobChunk.Status.DONE).values_list("id", flat=True):
                send(CHUNK_TASKS[job.kind], chunk_id)
                sent["chunks"] += 1
        elif job.kind in JOB_TASKS:
            send(JOB_TASKS[job.kind], job.pk)
            sent["jobs"] += 1
    for round_id in Round.objects.exclude(status__in=[Round.Status.DONE, Round.Status.FAILED]).values_list("id", flat=True):
        send("workers.tasks.round_advance", round_id)
        sent["rounds"] += 1
    return sent
