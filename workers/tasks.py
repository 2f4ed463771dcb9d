"""Celery tasks: thin adapters that take ids and call one runner or service, which records the outcome.

Every task here is idempotent, so all use acks_late: a message whose worker dies is delivered again
(at once when a pool child dies, `reject_on_worker_lost`; after the broker's visibility timeout when
the whole worker dies) and the redelivery does only what was not committed. Queues are set in
CELERY_TASK_ROUTES only: `gpu_*` tasks load models, the rest run on the default queue.
"""
from celery import shared_task

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="workers.tasks.export_run", **IDEMPOTENT)
def export_run(export_id: int):
    # Idempotent: export_run claims the row with a conditional update, so a redelivery is a no-op.
    from labeling.services.data.exports import export_run as run
    run(export_id=export_id)


@shared_task(name="workers.tasks.grade_solutions", **IDEMPOTENT)
def grade_solutions(solution_ids=None, mode="prm800k"):
    from labeling.services.data.solution_grading import solutions_grade
    solutions_grade(solution_ids=solution_ids, mode=mode)


@shared_task(name="workers.tasks.round_advance", **IDEMPOTENT)
def round_advance(round_id: int):
    from workers import runners
    runners.round_advance(round_id)


@shared_task(name="workers.tasks.gpu_score_chunk", **IDEMPOTENT)
def gpu_score_chunk(chunk_id: int):
    from workers import runners
    runners.score_chunk(chunk_id)


@shared_task(name="workers.tasks.gpu_generate_chunk", **IDEMPOTENT)
def gpu_generate_chunk(chunk_id: int):
    from workers import runners
    runners.generate_chunk(chunk_id)


@shared_task(name="workers.tasks.gpu_train_selector", **IDEMPOTENT)
def gpu_train_selector(job_id: int):
    from workers import runners
    runners.train_selector(job_id)


@shared_task(name="workers.tasks.gpu_evaluate", **IDEMPOTENT)
def gpu_evaluate(job_id: int):
    from workers import runners
    runners.evaluate(job_id)


@shared_task(name="workers.tasks.gpu_retrain", **IDEMPOTENT)
def gpu_retrain(job_id: int):
    # Idempotent: the job is claimed with a conditional update; a redelivery fails it (see retraining).
    from workers import runners
    runners.retrain(job_id)
