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

No job hangs (labeling/services/jobs/heartbeat.py, reaper.py): `RowTask` beats the heartbeat of the rows
its task claimed while the task runs; a delivery that finds its row held by a live worker is dropped
(the claim returns False), one that finds the worker lost takes the row over; and every worker runs the
reaper in a thread, which sends again or fails the rows whose heartbeat went stale.
"""
import logging
from pathlib import Path

from celery import Task, shared_task
from celery.signals import worker_ready
from django.conf import settings

from labeling.errors import JobCancelled
from labeling.models import Export, Job, JobChunk
from labeling.services.jobs import heartbeat, rows
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
            with heartbeat.scope():  # beats the rows the task claims (rows.job_claim, rows.chunk_claim)
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
            model.objects.filter(pk=args[0]).update(celery_task_id=task_id, celery_task_name=self.name)


@worker_ready.connect
def _start_reaper(**kwargs):
    """Every worker reaps (no beat process to run): rows whose worker was lost are sent again or failed."""
    from labeling.services.jobs.reaper import reaper_start
    reaper_start()


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


@shared_task(base=RowTask, row="chunk")
def gpu_rollouts(chunk_id: int):
    """Rollout step labels for one chunk of solutions (labeling/services/rollouts/labeling_job.py)."""
    from labeling.services.rollouts.labeling_job import rollouts_chunk
    from workers.ml.rollouts import RolloutSampler

    chunk = rows.chunk_claim(chunk_id=chunk_id)
    if chunk is None:
        return
    rollouts_chunk(chunk=chunk, sampler=RolloutSampler.load(chunk.job.parameters["prover"]))
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
    A copy delivered while its worker lives is dropped; one whose worker was lost starts over clean
    (see retraining.retrain_claim).
    """
    from labeling.services.training import retraining

    job = retraining.retrain_claim(job_id=job_id)  # None when over, or a copy of a live worker's message
    if job is None:
        return
    out_dir = retraining.retrain_out_dir(job_id=job_id)
    try:
        params = job.parameters
        rows.job_progress(job_id=job_id, message="writing the label snapshot")
        snapshot = retraining.retrain_snapshot(job=job)
        items = retraining.snapshot_items(snapshot=snapshot, neutral=params["neutral"], soft=params.get("soft", False))
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


@shared_task(base=RowTask)
def gpu_train_orm(job_id: int):
    """Train the outcome reward model baseline on graded candidates and register it (kind orm)."""
    from labeling.services.training import orm

    job = orm.orm_claim(job_id=job_id)  # None when done, failed, or redelivered (then failed)
    if job is None:
        return
    try:
        from workers.ml.orm import train_orm

        params = job.parameters
        rows.job_progress(job_id=job_id, message="reading the graded candidates")
        items = orm.orm_items(job=job)
        rows.job_progress(job_id=job_id, message=f"training on {len(items)} graded solutions")

        def progress(step, total, loss):
            rows.job_progress(job_id=job_id, add=1, total=total, message=f"step {step}/{total}, loss {loss:.4f}")

        out_dir = orm.orm_out_dir(job_id=job_id)
        result = train_orm(base_spec=params["base"], items=items, out_dir=str(out_dir),
                           learning_rate=params["learning_rate"], epochs=params["epochs"],
                           batch_size=params["batch_size"], max_length=params["max_length"], seed=params["seed"],
                           step_separator=params["step_separator"], progress=progress)
        orm.orm_register(job_id=job_id, out_dir=str(out_dir), result=result)
    finally:
        orm.orm_cleanup(job_id=job_id)  # keeps the folder of a registered version


@shared_task(base=RowTask)
def gpu_benchmark(job_id: int):
    """A PRM on named evaluation sets: calibrate its threshold on a dev set, evaluate on the sets, compare
    best-of-N with an ORM (labeling.services.training.benchmarks). A redelivery runs it again."""
    from labeling.models import EvaluationSet, ModelVersion
    from labeling.services.training import benchmarks
    from workers.ml.scorers import scorer_for

    if not rows.job_start(job_id=job_id):
        return
    job = Job.objects.select_related("model_version").get(pk=job_id)
    if job.model_version is None:
        raise ValueError("the model version to evaluate no longer exists")
    plan, version, result = job.parameters["benchmark"], job.model_version, {}
    scorer = scorer_for(path=version.path, config=version.config)

    def progress(done, message):
        rows.job_progress(job_id=job_id, done=done, message=message)

    if plan.get("calibrate_on"):
        version = benchmarks.threshold_calibrate(version=version, scorer=scorer, progress=progress,
                                                 dev_set=EvaluationSet.objects.get(pk=plan["calibrate_on"]))
        result["calibration"] = version.metrics["calibration"]
    if plan.get("sets"):
        sets = list(EvaluationSet.objects.filter(pk__in=plan["sets"]))
        sets.sort(key=lambda s: plan["sets"].index(s.pk))
        result["sets"] = benchmarks.evaluate_on_sets(version=version, scorer=scorer, sets=sets, progress=progress)
        version = benchmarks.benchmarks_save(version=version, sets=result["sets"])
    if plan.get("orm"):
        orm_version = ModelVersion.objects.get(pk=plan["orm"])
        result["orm_comparison"] = benchmarks.best_of_n_compare(
            version=version, scorer=scorer, orm_version=orm_version,
            orm_scorer=scorer_for(path=orm_version.path, config=orm_version.config),
            progress=lambda done, total, message: rows.job_progress(job_id=job_id, done=done, total=total,
                                                                    message=message))
        benchmarks.benchmarks_save(version=version, comparison=result["orm_comparison"])
    rows.job_finish(job_id=job_id, result=result)


@shared_task(base=RowTask)
def gpu_train_generator(job_id: int):
    """One iterative-RPO iteration: write the generator's own pairs, train DPO + NLL on them (TRL), register
    the new generator version and start its held-out evaluation (labeling/services/training/generator_training.py)."""
    from labeling.services.training import generator_training as training

    job = training.generator_train_claim(job_id=job_id)
    if job is None:
        return
    params, out_dir = job.parameters, training.generator_out_dir(job_id=job_id)
    try:
        rows.job_progress(job_id=job_id, message="writing the generator's preference pairs")
        pairs = training.generator_pairs_snapshot(job=job)

        def progress(step, total, loss):
            rows.job_progress(job_id=job_id, done=step, total=total, message=f"step {step}/{total}, loss {loss:.4f}")

        from workers.ml.rpo_training import train_rpo

        result = train_rpo(base_spec=params["base"], pairs=pairs, out_dir=str(out_dir), steps=params["steps"],
                           beta=params["beta"], alpha=params["alpha"], learning_rate=params["learning_rate"],
                           batch_size=params["batch_size"], grad_accum=params["grad_accum"],
                           max_length=params["max_length"], seed=params["seed"], progress=progress)
        if training.generator_train_register(job_id=job_id, out_dir=str(out_dir), result=result) is None:
            log.warning("job %s was stopped before its generator was registered", job_id)
    except Exception as exc:
        training.generator_train_fail_export(job_id=job_id, error=f"train_generator job {job_id}: {exc}")
        raise
    finally:
        training.generator_train_cleanup(job_id=job_id)  # keeps the folder of a registered version


@shared_task(base=RowTask)
def gpu_evaluate_generator(job_id: int):
    """A generator version's held-out accuracy (greedy, majority of N); then promotion as the job says."""
    from labeling.services.training import generator_evaluation as evaluation
    from labeling.services.training import generator_promotion as promotion
    from workers.ml.generator import Generator

    if not rows.job_start(job_id=job_id):
        return
    job = Job.objects.select_related("model_version").get(pk=job_id)
    if job.model_version is None:
        raise ValueError("the generator version to evaluate no longer exists")
    p = job.parameters

    def evaluated(version):
        def progress(done, total, message):
            rows.job_progress(job_id=job_id, done=done, total=total, message=f"{version.name}: {message}")

        metrics = evaluation.evaluate_generator(
            generator=Generator.load(version.path), n=p["n"], problems=p["problems"], temperature=p["temperature"],
            max_new_tokens=p["max_new_tokens"], seed=p["seed"], batch_size=settings.STEPWISE_GENERATION_BATCH,
            progress=progress)
        return evaluation.generator_evaluation_save(version=version, metrics=metrics)

    version = evaluated(job.model_version)
    figures = version.metrics["generator_evaluation"]
    result = {"evaluation": {k: v for k, v in figures.items() if k != "per_problem"}}
    if p["promote"] == "always":
        promotion.generator_promote(version=version, user=job.requested_by)
        result["promoted"] = True
    elif p["promote"] == "if_better":
        baseline = promotion.generator_baseline(version=version)
        if baseline is not None:
            evaluated(baseline)
        result["promoted"] = promotion.generator_promote_if_better(version=version)
    rows.job_finish(job_id=job_id, result=result)
