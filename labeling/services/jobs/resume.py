"""Sending unfinished work again, for when the broker lost its messages (a Redis restart without persistence).

Every live row is sent again (jobs of every kind, retrains included, chunks, exports, rounds): a claim
sorts it out, so this is safe to run at any time. A row a live worker holds drops the copy, one whose
worker was lost is taken over (rows.job_claim), a pending one runs once. Not sent: an export that a
retrain writes as its snapshot (the retrain writes it itself). The task is the one the row was sent by
(`celery_task_name`), else the one for its kind below. `manage.py resume_jobs` reaps first (reaper.py).
"""
from labeling.models import Export, Job, JobChunk, Round
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import LIVE
from workers import tasks

CHUNK_TASKS = {Job.Kind.SCORE: tasks.gpu_score_chunk, Job.Kind.GENERATE: tasks.gpu_generate_chunk,
               Job.Kind.ROLLOUTS: tasks.gpu_rollouts}
JOB_TASKS = {Job.Kind.TRAIN_SELECTOR: tasks.gpu_train_selector, Job.Kind.EVALUATE: tasks.gpu_evaluate,
             Job.Kind.RETRAIN: tasks.gpu_retrain, Job.Kind.TRAIN_GENERATOR: tasks.gpu_train_generator,
             Job.Kind.EVALUATE_GENERATOR: tasks.gpu_evaluate_generator}


def jobs_resume() -> dict:
    from labeling.services.jobs.reaper import task_for

    sent = {"chunks": 0, "jobs": 0, "rounds": 0}  # an export counts as a job
    for job in Job.objects.filter(status__in=LIVE):
        chunks = list(job.chunks.exclude(status=JobChunk.Status.DONE).select_related("job"))
        if chunks or job.kind in CHUNK_TASKS:
            for chunk in chunks:
                if (task := task_for(chunk)) is not None:
                    enqueue(task, chunk.pk)
                    sent["chunks"] += 1
        elif (task := task_for(job)) is not None:
            enqueue(task, job.pk)
            sent["jobs"] += 1
    snapshots = set(Job.objects.filter(kind=Job.Kind.RETRAIN)
                    .values_list("parameters__snapshot_export_id", flat=True))
    snapshots |= set(Job.objects.filter(kind=Job.Kind.TRAIN_GENERATOR)  # its pairs: the job writes them itself
                     .values_list("parameters__pairs_export_id", flat=True))
    for export in Export.objects.filter(status__in=LIVE):
        if export.pk not in snapshots and (task := task_for(export)) is not None:
            enqueue(task, export.pk)
            sent["jobs"] += 1
    unfinished = Round.objects.exclude(status__in=[Round.Status.DONE, Round.Status.FAILED])
    for round_id in unfinished.values_list("id", flat=True):
        enqueue(tasks.round_advance, round_id)
        sent["rounds"] += 1
    return sent
