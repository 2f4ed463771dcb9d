"""Celery tasks: thin adapters that take ids, call one service, and let the service record the outcome."""
from celery import shared_task


@shared_task(name="workers.tasks.export_run", acks_late=True, ignore_result=True)
def export_run(export_id: int):
    # Idempotent: export_run claims the row with a conditional update, so a redelivery is a no-op.
    from labeling.services.exports import export_run as run
    run(export_id=export_id)


@shared_task(name="workers.tasks.grade_solutions", acks_late=True, ignore_result=True)
def grade_solutions(solution_ids=None, mode="prm800k"):
    from labeling.services.solution_grading import solutions_grade
    solutions_grade(solution_ids=solution_ids, mode=mode)
