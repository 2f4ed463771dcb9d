"""Retraining the selector PRM on the collected step labels: a snapshot, a training job, a new version.

`retrain_start` records what to train on as an `Export` row (format hf: one row per labeled solution
with its -1/0/+1 ratings, made by labeling.services.data.training_exports with the step rules of
labeling.formats.training: the chosen completion per step, up to and including the first -1) and a
RETRAIN `Job`, and enqueues `workers.tasks.gpu_retrain` on commit. The worker writes the snapshot first,
so the web request or the submission that starts a retrain never waits for an export; it then trains
on exactly that file's rows (its sha256 is checked again) and registers the new PRM with the
snapshot's id, sha256 and counts in `metrics` and `how_made`.

Held-out problems (split "test"), quality-control and screening answers are never trained on, and
the snapshot holds only annotations that existed when the retrain was asked for.

A retrain never switches the selector itself. With promote "manual" an admin does; with "if_better"
an evaluation run (labeling.services.training.evaluation) compares the new version with
the active selector and promotes it only if it wins. A failed run (a bad hyperparameter, a diverging
loss, an exception, out of memory) marks the job failed and registers nothing; the trainer writes
its folder whole or not at all. A message delivered again while its worker lives (a visibility timeout
shorter than the training) is dropped and touches neither the job nor its folder; one whose worker was
lost (killed, out of memory: no heartbeat for STEPWISE_JOB_STALE_SECONDS) takes the job over and starts
clean, at most STEPWISE_JOB_MAX_ATTEMPTS times in all, so a run that dies of memory every time fails
with that reason instead of holding a GPU worker forever (labeling.services.jobs.rows.job_claim).

One retrain at a time: asking for one while another is pending or running returns that one.
"""
import logging
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from labeling.models import Annotation, Export, Job, ModelVersion, Round
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import LIVE, job_claim, job_create, job_finish
from labeling.formats.training import LABEL_SOURCES
from labeling.services.data.prm800k_export import ExportFilters
from labeling.services.data.rollout_exports import rollout_solutions
from labeling.errors import InvalidInput
from labeling.services.rounds.registry import model_version_register
from labeling.services.training.evaluation import evaluation_start
from labeling.services.training.model_folders import remove_unregistered
from labeling.services.training.parameters import check_model_spec, check_number, check_whole_numbers, loss_curve
from workers import tasks

log = logging.getLogger(__name__)

NEUTRAL = ("class", "positive", "negative", "drop")
PROMOTE = ("manual", "if_better")
SEPARATOR = "\n\n"
RETRAIN_LOCK = 0x5739_0001  # the PostgreSQL advisory lock that makes "one retrain at a time" hold under races


@dataclass(frozen=True)
class RetrainParameters:
    """neutral: what a 0 rating trains as. class (PRM800K's way: the neutral class of the 3-way head),
    positive or negative (+1 / -1), or drop (leave out every labeled solution with a 0).
    rounds: train only on these rounds' labels (None: every round, and labels outside rounds).
    source: which labels (human; rollout: rollout labels alone, which can bootstrap a PRM before any human
    label; consensus: human labels the rollouts confirm; both). soft: rollout rows train on their soft
    targets (the share of rollouts that reached the answer) instead of hard ones."""
    base: str = field(default_factory=lambda: settings.STEPWISE_RETRAIN_BASE)
    learning_rate: float = 2e-5
    epochs: int = 1
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = field(default_factory=lambda: settings.STEPWISE_MAX_LENGTH)  # scoring's too
    seed: int = 0
    neutral: str = "class"
    rounds: tuple[int, ...] | None = None
    promote: str = field(default_factory=lambda: settings.STEPWISE_AUTO_PROMOTE)
    source: str = "human"
    soft: bool = False

    def check(self):
        if self.source not in LABEL_SOURCES:
            raise InvalidInput(f"source must be one of {', '.join(LABEL_SOURCES)}, got {self.source!r}",
                               field="source")
        if not isinstance(self.soft, bool):
            raise InvalidInput(f"soft must be true or false, got {self.soft!r}", field="soft")
        check_model_spec(self.base)
        check_number("learning_rate", self.learning_rate)
        check_whole_numbers(self, (("epochs", 1), ("batch_size", 1), ("grad_accum", 1), ("max_length", 16),
                                   ("seed", 0)))
        if self.neutral not in NEUTRAL:
            raise InvalidInput(f"neutral must be one of {', '.join(NEUTRAL)}, got {self.neutral!r}", field="neutral")
        if self.rounds is not None and (not self.rounds or any(isinstance(n, bool) or not isinstance(n, int)
                                                                for n in self.rounds)):
            raise InvalidInput(f"rounds must be round numbers, got {self.rounds!r}", field="rounds")
        if self.promote not in PROMOTE:
            raise InvalidInput(f"promote must be one of {', '.join(PROMOTE)}, got {self.promote!r}", field="promote")


# --- starting --------------------------------------------------------------------------------------

@transaction.atomic
def retrain_start(*, params: RetrainParameters, user=None, trigger: dict | None = None) -> Job:
    """The snapshot's Export row and the RETRAIN job; the worker is sent the job once both are committed.

    While a retrain is pending or running, that one is returned instead (with `already_running` set):
    a second click never starts a second training on the GPU."""
    params.check()
    if connection.vendor == "postgresql":  # two requests at once: the second waits, then finds the first
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RETRAIN_LOCK])
    running = Job.objects.filter(kind=Job.Kind.RETRAIN, status__in=LIVE).order_by("id").first()
    if running is not None:
        running.already_running = True
        return running
    rounds = sorted(set(params.rounds)) if params.rounds is not None else None
    if rounds is not None:
        missing = set(rounds) - set(Round.objects.filter(number__in=rounds).values_list("number", flat=True))
        if missing:
            raise InvalidInput(f"no round {', '.join(map(str, sorted(missing)))}", field="rounds")
    filters = {"exclude_qc": True, "exclude_screening": True, "exclude_test": True, "generations": rounds,
               "until_id": Annotation.objects.aggregate(n=Max("id"))["n"] or 0}
    human = params.source != "rollout" and ExportFilters(**filters).queryset().exists()
    rollout = params.source in ("rollout", "both") and rollout_solutions(ExportFilters(**filters)).exists()
    if not (human or rollout) or (params.source == "consensus" and not rollout_solutions(
            ExportFilters(**filters)).exists()):
        where = f" in round(s) {', '.join(map(str, rounds))}" if rounds else ""
        what = {"human": "labels", "rollout": "rollout labels", "consensus": "human labels with rollout labels",
                "both": "labels or rollout labels"}[params.source]
        raise InvalidInput(f"no {what} to train on{where} (quality-control, screening and test-split labels "
                           "never count; `manage.py rollout_labels` makes rollout labels)", field="rounds")
    # The hf rows carry the -1/0/+1 ratings; its `neutral` option matters only for dropping.
    export = Export.objects.create(format="hf", requested_by=user, filters={
        **filters, "options": {"neutral": "drop" if params.neutral == "drop" else "positive",
                               "source": params.source}})
    job = job_create(kind=Job.Kind.RETRAIN, total=0, user=user, parameters={
        **asdict(params), "rounds": rounds, "step_separator": SEPARATOR, "snapshot_export_id": export.pk,
        "trigger": trigger or {"by": getattr(user, "username", None)}})
    enqueue(tasks.gpu_retrain, job.pk)
    return job


def retrain_if_due(*, round_: Round) -> Job | None:
    """Start the round's retrain once its submitted labels reach `parameters["label_target"]`.

    Exactly once per round: `retrain_job_id` is written with a conditional update in the transaction
    that creates the job, so of two submissions crossing the target at once one starts it.
    """
    target = (round_.parameters or {}).get("label_target")
    if not target or "retrain_job_id" in round_.parameters:
        return None
    labels = Annotation.objects.filter(round_id=round_.pk, is_quality_control=False, is_screening=False).count()
    if labels < target:
        return None
    try:
        with transaction.atomic():
            current = Round.objects.select_for_update().get(pk=round_.pk)
            if "retrain_job_id" in current.parameters:
                return None
            job = retrain_start(params=RetrainParameters(), trigger={
                "round": current.number, "label_target": target, "labels": labels})
            claimed = Round.objects.filter(pk=current.pk, parameters__retrain_job_id__isnull=True).update(
                parameters={**current.parameters, "retrain_job_id": job.pk})
            if claimed != 1:
                raise _Lost
    except _Lost:
        return None
    return job


class _Lost(Exception):
    """Another process started the round's retrain first: roll this one back."""


def retrain_after_submission(*, round_id: int) -> None:
    """on_commit hook of a submission: never slows or fails the request (embedded mode trains in a thread)."""
    from labeling.services.jobs.dispatch import in_background

    try:
        with in_background():
            retrain_if_due(round_=Round.objects.get(pk=round_id))
    except Exception:  # the submission is committed; a retrain that cannot start is logged, not a 500
        log.exception("round %s: could not start the label-target retrain", round_id)


def wants_retrain(round_: Round | None) -> bool:
    """Whether a submission to this round may cross its label target (no query: the round is loaded)."""
    params = round_.parameters if round_ is not None else None
    return bool(params and params.get("label_target") and "retrain_job_id" not in params)


# --- what the worker calls -------------------------------------------------------------------------

def retrain_out_dir(*, job_id: int) -> Path:
    return Path(settings.STEPWISE_MODEL_DIR) / f"prm-job{job_id}"


def retrain_claim(*, job_id: int) -> Job | None:
    """The job, claimed (rows.job_claim); None when it is over or a live worker holds it (a duplicate
    delivery, which must touch nothing). Taken over from a lost worker, it starts clean: that worker's
    folders go, and a snapshot it left half written is written again."""
    if not job_claim(job_id=job_id):
        return None
    job = Job.objects.get(pk=job_id)
    if job.attempts > 1:
        retrain_cleanup(job_id=job_id)
        Export.objects.filter(pk=job.parameters.get("snapshot_export_id"), status=Export.Status.RUNNING).update(
            status=Export.Status.PENDING, message="")
    return job


def retrain_cleanup(*, job_id: int) -> None:
    """Remove the job's model folder and the trainer's temporary folders, unless a version was registered."""
    remove_unregistered(retrain_out_dir(job_id=job_id))


def retrain_snapshot(*, job: Job) -> dict:
    """Write the job's snapshot export (if not yet written) and record it on the job."""
    from labeling.services.data.exports import export_run

    export_id = job.parameters["snapshot_export_id"]
    export_run(export_id=export_id)
    export = Export.objects.get(pk=export_id)
    if export.status != Export.Status.DONE:
        raise RuntimeError(f"snapshot export {export_id} is {export.status}: {export.error or 'not written'}")
    provenance = export.provenance or {}
    snapshot = {"export_id": export.pk, "sha256": export.sha256, "file": export.file, "format": export.format,
                "records": export.record_count, "steps": export.step_count,
                "annotations": provenance.get("annotations"),
                "rounds": [r["number"] for r in provenance.get("rounds", [])],
                "selectors": [s["name"] for s in provenance.get("selectors", [])],
                "filters": export.filters, "stats": provenance.get("output", {})}
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(result={"snapshot": snapshot})
    return snapshot


def snapshot_items(*, snapshot: dict, neutral: str, soft: bool = False) -> list[tuple[str, list[str], list[int]]]:
    """(problem, steps, ratings) per labeled solution of the snapshot file, read back from its parquet. With
    `soft`, a rollout row's ratings are its soft labels (floats: the trainer's soft targets) where it has them."""
    import pyarrow.parquet as pq

    from labeling.services.data.training_exports import file_sha256

    path = Path(settings.EXPORT_DIR) / snapshot["file"]
    if file_sha256(path) != snapshot["sha256"]:
        raise RuntimeError(f"snapshot {path} changed since it was written (sha256 differs)")
    with zipfile.ZipFile(path) as archive, archive.open("data.parquet") as data:
        table = pq.read_table(data)
    zero = {"positive": 1, "negative": -1}.get(neutral, 0)
    n = table.num_rows
    sources = table.column("label_source").to_pylist() if "label_source" in table.column_names else ["human"] * n
    softs = table.column("soft_labels").to_pylist() if "soft_labels" in table.column_names else [None] * n
    items = []
    for prompt, steps, ratings, source, soft_labels in zip(
            *(table.column(name).to_pylist() for name in ("prompt", "completions", "ratings")), sources, softs):
        if soft and source == "rollout" and soft_labels is not None:
            items.append((prompt, steps, [float(q) for q in soft_labels]))
        else:
            items.append((prompt, steps, [zero if r == 0 else r for r in ratings]))
    return items


@transaction.atomic
def retrain_register(*, job_id: int, out_dir: str, result: dict) -> ModelVersion | None:
    """Register the trained PRM and finish the job in one transaction; None when the job stopped meanwhile."""
    job = Job.objects.select_for_update().get(pk=job_id)
    if job.status != Job.Status.RUNNING:
        return None
    params, snapshot = job.parameters, (job.result or {}).get("snapshot", {})
    curve, every = loss_curve(result.get("loss_curve", []))
    train = {k: v for k, v in result.items() if k not in ("loss_curve", "step_tokens")}
    metrics = {"loss_curve": curve, "loss_curve_every": every, "final_loss": curve[-1] if curve else None,
               "train": train, "snapshot": snapshot}
    rounds = ", ".join(map(str, snapshot.get("rounds") or [])) or "none"
    version = model_version_register(
        name=f"prm-job{job.pk}", kind=ModelVersion.Kind.PRM, path=str(out_dir), base_model=params["base"],
        how_made=(f"step-head PRM ({params['base']}) trained on {train.get('items')} labeled solutions "
                  f"({train.get('labeled_steps')} rated steps) of snapshot export {snapshot.get('export_id')} "
                  f"(sha256 {snapshot.get('sha256')}; rounds {rounds}; no QC, screening or test-split labels), "
                  f"labels {params.get('source', 'human')}{' (soft rollout targets)' if params.get('soft') else ''}, "
                  f"neutral as {params['neutral']}, lr={params['learning_rate']:g}, epochs={params['epochs']}, "
                  f"batch={params['batch_size']}x{params['grad_accum']}, max_length={params['max_length']}, "
                  f"seed={params['seed']}; retrain job {job.pk}"),
        metrics=metrics,
        config={"architecture": "step_head", "step_separator": params["step_separator"], "score_how": "product",
                "max_length": params["max_length"]})
    Job.objects.filter(pk=job.pk).update(model_version=version)
    promotion = _promotion(version=version, policy=params["promote"], user=job.requested_by)
    if not job_finish(job_id=job.pk, result={**metrics, "model_version": {"id": version.pk, "name": version.name},
                                             "promotion": promotion}):
        raise RuntimeError(f"job {job.pk} stopped running while it was being registered")
    return version


def _promotion(*, version: ModelVersion, policy: str, user=None) -> dict:
    """The promotion hook: "if_better" starts an evaluation that may promote; "manual" does nothing.

    An evaluation that cannot start (no held-out data) is recorded, and the new version stays registered.
    """
    if policy != "if_better":
        return {"policy": policy}
    try:
        with transaction.atomic():
            run = evaluation_start(version=version, user=user, promote_if_better=True)
    except Exception as exc:  # a savepoint: the registration stands without its evaluation
        log.warning("%s: no evaluation started: %s", version.name, exc)
        return {"policy": policy, "error": f"{type(exc).__name__}: {exc}"}
    return {"policy": policy, "evaluation_job_id": getattr(run, "pk", None)}
