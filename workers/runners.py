"""What a worker does for each job kind: claim the row, build the ML object, call the service, record.

Tasks in workers/tasks.py are one-line adapters over these. Every failure is written to the job row
(and fails its round), never left only in a worker log; a redelivered message finds its chunk done
or half done and does only the rest.
"""
import logging
import traceback

from django.conf import settings

from labeling.models import Job
from labeling.services.jobs import rows as jobs
from labeling.services.jobs.dispatch import send

log = logging.getLogger(__name__)


def _fail(job_id, exc):
    error = f"{type(exc).__name__}: {exc}"
    log.error("job %s failed: %s\n%s", job_id, error, traceback.format_exc())
    jobs.job_fail(job_id=job_id, error=error)
    job = Job.objects.filter(pk=job_id).only("round_id").first()
    if job is not None and job.round_id:
        from labeling.services.rounds.stages import round_fail
        round_fail(round_id=job.round_id, error=f"job {job_id}: {error}")


def _finished(job_id):
    job = Job.objects.only("round_id").get(pk=job_id)
    if job.round_id:
        send("workers.tasks.round_advance", job.round_id)


def _run_chunk(chunk_id, work):
    chunk = jobs.chunk_claim(chunk_id=chunk_id)
    if chunk is None:
        return
    try:
        work(chunk)
        if jobs.chunk_finish(chunk=chunk):
            _finished(chunk.job_id)
    except jobs.JobCancelled:
        log.warning("job %s was stopped; chunk %s abandoned", chunk.job_id, chunk_id)
    except Exception as exc:  # recorded on the row; the round shows it
        _fail(chunk.job_id, exc)
        raise


def score_chunk(chunk_id: int) -> None:
    def work(chunk):
        from labeling.services.rounds.scoring import score_chunk as score
        from workers.ml.scorers import scorer_for

        version = chunk.job.model_version
        scorer = scorer_for(path=version.path, config=version.config)
        params = chunk.job.parameters
        score(chunk=chunk, scorer=scorer, batch_size=params.get("batch_size", settings.STEPWISE_SCORING_BATCH),
              max_length=params.get("max_length", settings.STEPWISE_SCORING_MAX_LENGTH))

    _run_chunk(chunk_id, work)


def generate_chunk(chunk_id: int) -> None:
    def work(chunk):
        from labeling.services.rounds.generation import generate_chunk as generate
        from workers.ml.generator import Generator

        params = chunk.job.parameters
        generator = Generator.load(params["spec"])
        generate(chunk=chunk, generator=generator, candidates=params["candidates"], spec=params["spec"],
                 sampling=params["sampling"])

    _run_chunk(chunk_id, work)


def train_selector(job_id: int) -> None:
    """The round-0 implicit PRM. The model folder is written whole or not at all (a rename at the end)."""
    from pathlib import Path

    from labeling.services.rounds.bootstrap import bootstrap_register, training_items

    if not jobs.job_start(job_id=job_id):
        return
    job = Job.objects.select_related("round").get(pk=job_id)
    out_dir = Path(settings.STEPWISE_MODEL_DIR) / f"implicit-prm-round{job.round.number}-job{job.pk}"
    try:
        params = job.parameters
        if not out_dir.exists():
            from workers.ml.implicit_training import train_implicit_prm

            items = training_items(solution_ids=params["solution_ids"])
            jobs.job_progress(job_id=job_id, message=f"training on {len(items)} graded solutions")

            def progress(step, total, loss):
                jobs.job_progress(job_id=job_id, add=1, message=f"step {step}/{total}, loss {loss:.4f}")

            out_dir.parent.mkdir(parents=True, exist_ok=True)
            result = train_implicit_prm(base_spec=params["base"], items=items, out_dir=str(out_dir),
                                        beta=params["beta"], learning_rate=params["learning_rate"],
                                        epochs=params["epochs"], batch_size=params["batch_size"],
                                        max_length=params["max_length"], progress=progress,
                                        trainable_layers=params.get("trainable_layers"))
            result = {k: v for k, v in result.items() if k != "loss_curve"} | {"loss_curve": result["loss_curve"]}
        else:  # a redelivery after the folder was completed: register what is there
            result = job.result or {}
        bootstrap_register(job=job, out_dir=str(out_dir), result=result)
        if jobs.job_finish(job_id=job_id, result=result):
            _finished(job_id)
    except jobs.JobCancelled:
        log.warning("job %s was stopped", job_id)
    except Exception as exc:
        _fail(job_id, exc)
        raise


def round_advance(round_id: int) -> None:
    from labeling.services.rounds.stages import round_advance as advance, round_fail

    try:
        advance(round_id=round_id)
    except Exception as exc:
        log.error("round %s failed: %s\n%s", round_id, exc, traceback.format_exc())
        round_fail(round_id=round_id, error=f"{type(exc).__name__}: {exc}")
        raise


def evaluate(job_id: int) -> None:
    """Evaluate the job's PRM version on the held-out set; with promote_if_better, compare and maybe promote.

    A redelivery evaluates again, reading the candidate scores already written instead of scoring them.
    """
    from labeling.services.training import evaluation as evaluation_runs
    from workers.ml.scorers import scorer_for

    if not jobs.job_start(job_id=job_id):
        return
    job = Job.objects.select_related("model_version").get(pk=job_id)

    def progress(done, total, message):
        jobs.job_progress(job_id=job_id, message=message)
        Job.objects.filter(pk=job_id).update(done=done, total=total)

    def evaluated(version):
        scorer = scorer_for(path=version.path, config=version.config)
        metrics = evaluation_runs.evaluate_version(version=version, scorer=scorer, progress=progress)
        return evaluation_runs.evaluation_save(version=version, metrics=metrics)

    try:
        if job.model_version is None:
            raise ValueError("the model version to evaluate no longer exists")
        version = evaluated(job.model_version)
        result = {"evaluation": version.metrics["evaluation"]}
        if job.parameters.get("promote_if_better"):
            baseline = evaluation_runs.promotion_baseline(version=version)
            if baseline is not None:
                jobs.job_progress(job_id=job_id, message=f"evaluating the active selector {baseline.name} to compare")
                try:
                    evaluated(baseline)
                except jobs.JobCancelled:
                    raise
                except Exception as exc:  # no comparison, so no promotion; this version's evaluation stands
                    log.error("evaluating selector %s failed: %s\n%s", baseline.pk, exc, traceback.format_exc())
                    result["baseline_error"] = f"{type(exc).__name__}: {exc}"
            result["promoted"] = evaluation_runs.promote_if_better(version=version)
        jobs.job_finish(job_id=job_id, result=result)
    except jobs.JobCancelled:
        log.warning("job %s was stopped", job_id)
    except Exception as exc:
        _fail(job_id, exc)
        raise


def retrain(job_id: int) -> None:
    """Retrain the step-head PRM on the labels: write the snapshot export, train on it, register the version.

    The trainer writes the model folder whole or not at all; a failure leaves no folder and no version,
    and the active selector is never touched here (labeling.services.training.retraining has the promotion hook).
    """
    from labeling.services.training import retraining

    job = retraining.retrain_claim(job_id=job_id)  # None when done, failed, or redelivered (then failed)
    if job is None:
        return
    out_dir = retraining.retrain_out_dir(job_id=job_id)
    try:
        params = job.parameters
        jobs.job_progress(job_id=job_id, message="writing the label snapshot")
        snapshot = retraining.retrain_snapshot(job=job)
        items = retraining.snapshot_items(snapshot=snapshot, neutral=params["neutral"])
        jobs.job_progress(job_id=job_id, message=f"training on {len(items)} labeled solutions "
                                                 f"(snapshot export {snapshot['export_id']})")

        def progress(step, total, loss):
            if step == 1:  # the step count is known only once the snapshot is encoded
                Job.objects.filter(pk=job_id).update(total=total)
            jobs.job_progress(job_id=job_id, add=1, message=f"step {step}/{total}, loss {loss:.4f}")

        from workers.ml.prm_training import train_step_prm

        result = train_step_prm(base_spec=params["base"], items=items, out_dir=str(out_dir),
                                learning_rate=params["learning_rate"], epochs=params["epochs"],
                                batch_size=params["batch_size"], max_length=params["max_length"],
                                seed=params["seed"], step_separator=params["step_separator"],
                                grad_accum=params["grad_accum"], progress=progress)
        if retraining.retrain_register(job_id=job_id, out_dir=str(out_dir), result=result) is None:
            log.warning("job %s was stopped before its model was registered", job_id)
            retraining.retrain_cleanup(job_id=job_id)
    except jobs.JobCancelled:
        log.warning("job %s was stopped", job_id)
        retraining.retrain_cleanup(job_id=job_id)
    except Exception as exc:
        _fail(job_id, exc)
        retraining.retrain_cleanup(job_id=job_id)
        raise
