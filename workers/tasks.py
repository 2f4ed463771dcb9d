"""Celery tasks, the one job layer: each takes the id of a row, claims it, builds what the work needs (a
scorer, a generator, a trainer) and calls the service that does it.

Sent with labeling.services.jobs.dispatch.enqueue(task, row_id) once the sender's transaction commits.
The web process imports this module to send, so the ML modules (torch, transformers) are imported
inside the bodies, never here. Queues are set in CELERY_TASK_ROUTES only, by name: `gpu_*` tasks
load models, the rest run on the default queue.

Every task is idempotent, so all use acks_late: a message whose worker dies is delivered again (at
once when a pool child dies, `reject_on_worker_lost`; after the broker's visibility timeout when the
whole worker dies) and the redelivery does only what was not committed. A failure is written on the
row by `RowTask.on_failure` (and fails the round the job serves), never left only in a worker log.
"""
import logging
from pathlib import Path

from celery import Task, shared_task
from django.conf import settings

from labeling.errors import JobCancelled
from labeling.models import Export, Job, JobChunk
from labeling.services.jobs import rows
from labeling.services.jobs.dispatch import enqueue

log = logging.getLogger(__name__)


class RowTask(Task):
    """A task over one row, whose id is its first argument. `row` says which: job, chunk, export or round."""

    row = "job"
    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except JobCancelled as exc:  # an admin stopped the job: its row already says so, nothing failed here
            log.warning("%s%r ends: %s", self.name, args, exc)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        error = f"{type(exc).__name__}: {exc}"
        if self.row == "export":
            rows.job_fail(job_id=args[0], error=error, model=Export)
        elif self.row == "round":
            from labeling.services.rounds.stages import round_fail
            round_fail(round_id=args[0], error=error)
        elif self.row == "chunk":
            _job_failed(JobChunk.objects.filter(pk=args[0]).values_list("job_id", flat=True).first(), error)
        else:
            _job_failed(args[0], error)

    def record_sent(self, task_id, args):
        """Called by enqueue before the message goes: the row keeps the id of the message that runs it."""
        model = {"job": Job, "chunk": JobChunk, "export": Export}.get(self.row)
        if model is not None:
            model.objects.filter(pk=args[0]).update(celery_task_id=task_id)


def _job_failed(job_id, error):
    rows.job_fail(job_id=job_id, error=error)
    round_id = Job.objects.filter(pk=job_id).values_list("round_id", flat=True).first()
    if round_id:
        from labeling.services.rounds.stages import round_fail
        round_fail(round_id=round_id, error=f"job {job_id}: {error}")


def _job_done(job_id):
    """The job's continuation: a round's job moves its round on."""
    round_id = Job.objects.filter(pk=job_id).values_list("round_id", flat=True).first()
    if round_id:
        enqueue(round_advance, round_id)


def _chunk_done(chunk):
    if rows.chunk_finish(chunk=chunk):
        _job_done(chunk.job_id)


@shared_task(base=RowTask, row="export")
def export_run(export_id: int):
    # A redelivery is a no-op: export_run claims its row with a conditional update.
    from labeling.services.data.exports import export_run as run
    run(export_id=export_id)


@shared_task(base=RowTask, row="round")
def round_advance(round_id: int):
    from labeling.services.rounds.stages import round_advance as advance
    advance(round_id=round_id)


@shared_task(base=RowTask, row="chunk")
def gpu_score_chunk(chunk_id: int):
    from labeling.services.rounds.scoring import score_chunk
    from workers.ml.scorers import scorer_for

    chunk = rows.chunk_claim(chunk_id=chunk_id)
    if chunk is None:
        return
    version, params = chunk.job.model_version, chunk.job.parameters
    score_chunk(chunk=chunk, scorer=scorer_for(path=version.path, config=version.config),
                batch_size=params.get("batch_size", settings.STEPWISE_SCORING_BATCH),
                max_length=params.get("max_length", settings.STEPWISE_MAX_LENGTH))
    _chunk_done(chunk)


@shared_task(base=RowTask, row="chunk")
def gpu_generate_chunk(chunk_id: int):
    from labeling.services.rounds.generation import generate_chunk
    from workers.ml.generator import Generator

    chunk = rows.chunk_claim(chunk_id=chunk_id)
    if chunk is None:
        return
    params = chunk.job.parameters
    generate_chunk(chunk=chunk, generator=Generator.load(params["spec"]), candidates=params["candidates"],
                   spec=params["spec"], sampling=params["sampling"])
    _chunk_done(chunk)


@shared_task(base=RowTask)
def gpu_train_selector(job_id: int):
    """The round-0 implicit PRM: train, register, validate on other problems, activate only if it beats
    chance. The model folder is written whole or not at all (a rename at the end)."""
    from labeling.services.rounds.bootstrap import bootstrap_activate_if_validated, bootstrap_register, training_items
    from labeling.services.rounds.scoring import scoring_max_length
    from labeling.services.rounds.validation import selector_validate
    from workers.ml.scorers import scorer_for

    if not rows.job_start(job_id=job_id):
        return
    job = Job.objects.select_related("round").get(pk=job_id)
    out_dir = Path(settings.STEPWISE_MODEL_DIR) / f"implicit-prm-round{job.round.number}-job{job.pk}"
    params = job.parameters
    if out_dir.exists():  # a redelivery after the folder was completed: register what is there
        result = job.result or {}
    else:
        from workers.ml.implicit_training import train_implicit_prm

        items = training_items(solution_ids=params["solution_ids"])
        rows.job_progress(job_id=job_id, message=f"training on {len(items)} graded solutions")

        def progress(step, total, loss):
            rows.job_progress(job_id=job_id, add=1, message=f"step {step}/{total}, loss {loss:.4f}")

        out_dir.parent.mkdir(parents=True, exist_ok=True)
        result = train_implicit_prm(base_spec=params["base"], items=items, out_dir=str(out_dir),
                                    beta=params["beta"], learning_rate=params["learning_rate"],
                                    epochs=params["epochs"], batch_size=params["batch_size"],
                                    max_length=params["max_length"], progress=progress,
                                    trainable_layers=params.get("trainable_layers"))
        result = {k: v for k, v in result.items() if k != "loss_curve"} | {"loss_curve": result["loss_curve"]}
    version = bootstrap_register(job=job, out_dir=str(out_dir), result=result)
    held_out = params.get("validation") or {"problem_ids": [], "solution_ids": []}

    def validated(done, total):
        rows.job_progress(job_id=job_id, message=f"validating: scored {done}/{total} solutions of other problems")

    version = selector_validate(version=version, problem_ids=held_out["problem_ids"],
                                solution_ids=held_out["solution_ids"],
                                scorer=scorer_for(path=version.path, config=version.config),
                                batch_size=settings.STEPWISE_SCORING_BATCH,
                                max_length=scoring_max_length(version=version), progress=validated)
    result = {**result, "validation": version.metrics["validation"],
              "activated": bootstrap_activate_if_validated(version=version)}
    if rows.job_finish(job_id=job_id, result=result):
        _job_done(job_id)


@shared_task(base=RowTask)
def gpu_evaluate(job_id: int):
    """Evaluate the job's PRM version on the held-out set; with promote_if_better, compare and maybe promote.

    A redelivery evaluates again, reading the candidate scores already written instead of scoring them.
    """
    from labeling.services.training import evaluation, promotion
    from workers.ml.scorers import scorer_for

    if not rows.job_start(job_id=job_id):
        return
    job = Job.objects.select_related("model_version").get(pk=job_id)

    def progress(done, total, message):
        rows.job_progress(job_id=job_id, done=done, total=total, message=message)

    def evaluated(version):
        scorer = scorer_for(path=version.path, config=version.config)
        metrics = evaluation.evaluate_version(version=version, scorer=scorer, progress=progress)
        return evaluation.evaluation_save(version=version, metrics=metrics)

    if job.model_version is None:
        raise ValueError("the model version to evaluate no longer exists")
    version = evaluated(job.model_version)
    result = {"evaluation": version.metrics["evaluation"]}
    if job.parameters.get("promote_if_better"):
        baseline = promotion.promotion_baseline(version=version)
        if baseline is not None:
            rows.job_progress(job_id=job_id, message=f"evaluating the active selector {baseline.name} to compare")
            try:
                evaluated(baseline)
            except JobCancelled:
                raise
            except Exception as exc:  # no comparison, so no promotion; this version's evaluation stands
                log.exception("evaluating selector %s failed", baseline.pk)
                result["baseline_error"] = f"{type(exc).__name__}: {exc}"
        result["promoted"] = promotion.promote_if_better(version=version)
    rows.job_finish(job_id=job_id, result=result)


@shared_task(base=RowTask)
def gpu_retrain(job_id: int):
    """Retrain the step-head PRM on the labels: write the snapshot export, train on it, register the version.

    The trainer writes the model folder whole or not at all; whatever ends the run, no folder is left
    without a version, and the active selector is never touched here (retraining has the promotion hook).
    A redelivery fails the job instead of training again (see retraining.retrain_claim).
    """
    from labeling.services.training import retraining

    job = retraining.retrain_claim(job_id=job_id)  # None when done, failed, or redelivered (then failed)
    if job is None:
        return
    out_dir = retraining.retrain_out_dir(job_id=job_id)
    try:
        params = job.parameters
        rows.job_progress(job_id=job_id, message="writing the label snapshot")
        snapshot = retraining.retrain_snapshot(job=job)
        items = retraining.snapshot_items(snapshot=snapshot, neutral=params["neutral"])
        rows.job_progress(job_id=job_id, message=f"training on {len(items)} labeled solutions "
                                                 f"(snapshot export {snapshot['export_id']})")

        def progress(step, total, loss):  # the step count is known only once the snapshot is encoded
            rows.job_progress(job_id=job_id, add=1, total=total, message=f"step {step}/{total}, loss {loss:.4f}")

        from workers.ml.prm_training import train_step_prm

        result = train_step_prm(base_spec=params["base"], items=items, out_dir=str(out_dir),
                                learning_rate=params["learning_rate"], epochs=params["epochs"],
                                batch_size=params["batch_size"], max_length=params["max_length"],
                                seed=params["seed"], step_separator=params["step_separator"],
                                grad_accum=params["grad_accum"], progress=progress)
        if retraining.retrain_register(job_id=job_id, out_dir=str(out_dir), result=result) is None:
            log.warning("job %s was stopped before its model was registered", job_id)
    finally:
        retraining.retrain_cleanup(job_id=job_id)  # keeps the folder of a registered version
