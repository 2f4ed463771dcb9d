"""Round 0's selector without step labels: an implicit PRM trained on graded final answers.

Until annotators have labeled steps, there is no step-level PRM to select with. Yuan et al. (2024)
show that a language model trained on outcome labels with the reward r = beta * log(pi/pi_ref)
yields step rewards for free; the round trains one on the graded candidates and makes it the
active selector, unless one became active meanwhile.
"""
from django.conf import settings
from django.db import transaction

from labeling.models import Job, ModelVersion, Round, Solution
from labeling.services.jobs.rows import job_create
from labeling.services.rounds.registry import model_version_register, selector_activate, selector_active


def bootstrap_job_create(*, round_: Round) -> Job:
    items = training_solution_ids(limit=settings.STEPWISE_BOOTSTRAP_MAX_ITEMS)
    if not items:
        raise ValueError("no graded solutions to train the round-0 selector on: grade candidates first")
    params = {"base": settings.STEPWISE_BOOTSTRAP_BASE, "beta": settings.STEPWISE_BOOTSTRAP_BETA,
              "learning_rate": settings.STEPWISE_BOOTSTRAP_LR, "epochs": settings.STEPWISE_BOOTSTRAP_EPOCHS,
              "batch_size": settings.STEPWISE_BOOTSTRAP_BATCH, "max_length": settings.STEPWISE_BOOTSTRAP_MAX_LENGTH,
              "trainable_layers": settings.STEPWISE_BOOTSTRAP_TRAINABLE_LAYERS or None,
              "solution_ids": items}
    steps = -(-len(items) // params["batch_size"]) * params["epochs"]
    return job_create(kind=Job.Kind.TRAIN_SELECTOR, round=round_, total=steps, parameters=params)


def training_solution_ids(*, limit: int) -> list[int]:
    """Graded solutions outside the test split, correct and wrong alternating so both outcomes are seen."""
    base = (Solution.objects.filter(is_correct__isnull=False).exclude(problem__split="test")
            .order_by("id"))
    correct = list(base.filter(is_correct=True).values_list("id", flat=True)[:limit])
    wrong = list(base.filter(is_correct=False).values_list("id", flat=True)[:limit])
    mixed = [sid for pair in zip(correct, wrong) for sid in pair]
    rest = correct[len(wrong):] + wrong[len(correct):]
    return (mixed + rest)[:limit]


def training_items(*, solution_ids: list[int]) -> list[tuple[str, list[str], bool]]:
    rows = {sid: (text, steps, correct) for sid, text, steps, correct in
            Solution.objects.filter(id__in=solution_ids).values_list("id", "problem__text", "steps", "is_correct")}
    return [rows[sid] for sid in solution_ids if sid in rows]


@transaction.atomic
def bootstrap_register(*, job: Job, out_dir: str, result: dict) -> ModelVersion:
    """Register the trained implicit PRM and make it the selector if none is active yet."""
    params = job.parameters
    job.refresh_from_db()
    if job.model_version_id is not None:  # a redelivered job registers nothing twice
        return job.model_version
    version = model_version_register(
        name=f"implicit-prm-round{job.round.number}-job{job.pk}", kind=ModelVersion.Kind.PRM, path=out_dir,
        base_model=params["base"],
        how_made=(f"implicit PRM (Yuan et al. 2024) trained on {result.get('items')} graded solutions' outcomes, "
                  f"beta={params['beta']}, lr={params['learning_rate']}, epochs={params['epochs']}, "
                  f"trained layers: {'all' if not result.get('frozen_layers') else 'top ' + str(params.get('trainable_layers'))}"),
        metrics={"loss_curve": result.get("loss_curve", []), "train_seconds": result.get("seconds"),
                 "tokens_per_second": result.get("tokens_per_second")},
        config={"architecture": "implicit", "reference": params["base"], "beta": params["beta"], "score_how": "min",
                "step_separator": "\n\n"})
    Job.objects.filter(pk=job.pk).update(model_version=version)
    if selector_active() is None:
        selector_activate(version=version)
    return version
