"""Training the outcome reward model (ORM) baseline and registering it as its own kind.

The ORM learns P(final answer correct) from the same graded candidates the rounds produce: every
solution with a grade whose problem is not held out (split "test" is never trained on), graded in
the mode rounds select in (STEPWISE_SELECTION_GRADING; those graded otherwise are regraded first),
fixed when the job is asked for (solutions up to `until_solution_id`). The model is
workers.ml.orm (a value head read at the last step's separator, the PRM's own layout).

`orm_train_start` makes a TRAIN_ORM job and sends `workers.tasks.gpu_train_orm` on commit; the worker
trains and `orm_register` registers `orm-job<N>` (kind orm, config architecture "orm") and finishes
the job in one transaction. Nothing is promoted: an ORM never selects; `evaluate --orm` compares it
with a PRM by best-of-N (labeling.services.training.benchmarks). A copy of the message delivered while the
training worker lives (its heartbeat is fresh) is dropped; one delivered after that worker was lost takes the
job over and starts clean (labeling.services.jobs.rows.job_claim, as every job does).
"""
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from labeling.errors import InvalidInput
from labeling.models import Job, ModelVersion, Solution, Split
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_claim, job_create, job_finish
from labeling.services.rounds.registry import model_version_register
from labeling.services.training.model_folders import remove_unregistered
from labeling.services.training.parameters import check_model_spec, check_number, check_whole_numbers
from workers import tasks

SEPARATOR = "\n\n"


@dataclass(frozen=True)
class OrmParameters:
    base: str = field(default_factory=lambda: settings.STEPWISE_RETRAIN_BASE)
    learning_rate: float = 2e-5
    epochs: int = 1
    batch_size: int = 4
    max_length: int = field(default_factory=lambda: settings.STEPWISE_MAX_LENGTH)
    seed: int = 0

    def check(self):
        check_model_spec(self.base)
        check_number("learning_rate", self.learning_rate)
        check_whole_numbers(self, (("epochs", 1), ("batch_size", 1), ("max_length", 16), ("seed", 0)))


def orm_candidates():
    """Graded candidate solutions of problems that are not held out."""
    return Solution.objects.filter(is_correct__isnull=False).exclude(problem__split=Split.TEST)


@transaction.atomic
def orm_train_start(*, params: OrmParameters, user=None) -> Job:
    params.check()
    candidates = orm_candidates()
    if not candidates.exists():
        raise InvalidInput("no graded candidate solutions of non-test problems to train an ORM on", field="base")
    until = candidates.aggregate(n=Max("id"))["n"]
    job = job_create(kind=Job.Kind.TRAIN_ORM, total=0, user=user, parameters={
        **asdict(params), "until_solution_id": until, "step_separator": SEPARATOR,
        "grading": settings.STEPWISE_SELECTION_GRADING})
    enqueue(tasks.gpu_train_orm, job.pk)
    return job


def orm_out_dir(*, job_id: int) -> Path:
    return Path(settings.STEPWISE_MODEL_DIR) / f"orm-job{job_id}"


def orm_claim(*, job_id: int) -> Job | None:
    """pending -> running (or taken over from a lost worker: what it left on disk goes first); None when the
    job is over or a live worker holds it (the copy is dropped, the live job untouched)."""
    if not job_claim(job_id=job_id):
        return None
    orm_cleanup(job_id=job_id)
    return Job.objects.get(pk=job_id)


def orm_items(*, job: Job) -> list[tuple[str, list[str], bool]]:
    """(problem, steps, is_correct) of the job's candidates, in id order, graded in the job's mode."""
    from labeling.services.data.solution_grading import solutions_grade_in_mode

    params = job.parameters
    candidates = orm_candidates().filter(id__lte=params["until_solution_id"])
    solutions_grade_in_mode(solutions=candidates, mode=params["grading"])
    return [(text, steps, bool(correct)) for text, steps, correct in
            orm_candidates().filter(id__lte=params["until_solution_id"]).order_by("id")
            .values_list("problem__text", "steps", "is_correct")]


@transaction.atomic
def orm_register(*, job_id: int, out_dir: str, result: dict) -> ModelVersion | None:
    """Register the trained ORM and finish the job in one transaction; None when the job stopped meanwhile."""
    job = Job.objects.select_for_update().get(pk=job_id)
    if job.status != Job.Status.RUNNING:
        return None
    params = job.parameters
    curve = result.get("loss_curve", [])
    train = {k: v for k, v in result.items() if k != "loss_curve"}
    version = model_version_register(
        name=f"orm-job{job.pk}", kind=ModelVersion.Kind.ORM, path=str(out_dir), base_model=params["base"],
        how_made=(f"outcome reward model ({params['base']}) trained on the final-answer grades ({params['grading']} "
                  f"mode) of {train.get('items')} candidate solutions of non-test problems ({train.get('correct')} "
                  f"correct), solutions up to id {params['until_solution_id']}, lr={params['learning_rate']:g}, "
                  f"epochs={params['epochs']}, batch={params['batch_size']}, max_length={params['max_length']}, "
                  f"seed={params['seed']}; job {job.pk}"),
        metrics={"loss_curve": curve, "final_loss": curve[-1] if curve else None, "train": train},
        config={"architecture": "orm", "step_separator": params["step_separator"], "score_how": "last",
                "max_length": params["max_length"]})
    Job.objects.filter(pk=job.pk).update(model_version=version)
    if not job_finish(job_id=job.pk, result={"model_version": {"id": version.pk, "name": version.name},
                                             "final_loss": curve[-1] if curve else None, "train": train}):
        raise RuntimeError(f"job {job.pk} stopped running while it was being registered")
    return version


def orm_cleanup(*, job_id: int) -> None:
    """Remove the job's model folder and the trainer's temporary folders, unless a version was registered."""
    remove_unregistered(orm_out_dir(job_id=job_id))
