"""Round 0's selector without step labels: an implicit PRM trained on graded final answers.

Until annotators have labeled steps, there is no step-level PRM to select with. Yuan et al. (2024)
show that a language model trained on outcome labels with the reward r = beta * log(pi/pi_ref)
yields step rewards for free; the round trains one on the graded candidates of some problems and
validates it on those of the others (validation.py). It becomes the active selector only if its
validation AUROC beats chance; otherwise the round records why and selects wrong answers at random
(labeling.core.selection.select_random_wrong), and an admin may still activate it by a recorded click.

While the active selector is such an implicit PRM and no PRM trained on human labels beats it, each
round first trains a fresh one on all graded outcomes ("refresh") and uses it if it validates.
"""
from django.conf import settings
from django.db import transaction

from labeling.core.draws import Drawable, split_for_validation
from labeling.models import Job, ModelVersion, Problem, Round, Solution
from labeling.services.jobs.rows import job_create
from labeling.services.rounds.registry import (model_version_register, selector_activate, selector_active,
                                               selector_validated, validation_text)

BOOTSTRAP, REFRESH = "bootstrap", "refresh"


def bootstrap_job_create(*, round_: Round, purpose: str = BOOTSTRAP) -> Job:
    """The TRAIN_SELECTOR job: train on the graded candidates of some problems, validate on the others'."""
    fraction, seed = settings.STEPWISE_BOOTSTRAP_VALIDATION_FRACTION, round_.parameters.get("seed", 0)
    train_problems, validation_problems = split_for_validation(graded_problems(), fraction=fraction, seed=seed)
    items = training_solution_ids(limit=settings.STEPWISE_BOOTSTRAP_MAX_ITEMS, problem_ids=train_problems)
    if not items:
        raise ValueError("no graded solutions to train the round-0 selector on: grade candidates first")
    params = {"base": settings.STEPWISE_BOOTSTRAP_BASE, "beta": settings.STEPWISE_BOOTSTRAP_BETA,
              "learning_rate": settings.STEPWISE_BOOTSTRAP_LR, "epochs": settings.STEPWISE_BOOTSTRAP_EPOCHS,
              "batch_size": settings.STEPWISE_BOOTSTRAP_BATCH, "max_length": settings.STEPWISE_MAX_LENGTH,
              "trainable_layers": settings.STEPWISE_BOOTSTRAP_TRAINABLE_LAYERS or None,
              "solution_ids": items, "purpose": purpose,
              "validation": {"fraction": fraction, "seed": seed, "problem_ids": validation_problems,
                             "solution_ids": training_solution_ids(limit=settings.STEPWISE_BOOTSTRAP_MAX_ITEMS,
                                                                   problem_ids=validation_problems)}}
    steps = -(-len(items) // params["batch_size"]) * params["epochs"]
    return job_create(kind=Job.Kind.TRAIN_SELECTOR, round=round_, total=steps, parameters=params)


def graded_problems() -> list[Drawable]:
    """Problems outside the test split with graded candidates: what the bootstrap trains and validates on."""
    rows = (Problem.objects.filter(solutions__is_correct__isnull=False).exclude(split="test").distinct()
            .order_by("id").values_list("id", "subject", "level"))
    return [Drawable(*row) for row in rows]


def training_solution_ids(*, limit: int, problem_ids: list[int] | None = None) -> list[int]:
    """Graded solutions outside the test split (of `problem_ids` when given), correct and wrong
    alternating so both outcomes are seen."""
    base = (Solution.objects.filter(is_correct__isnull=False).exclude(problem__split="test")
            .order_by("id"))
    if problem_ids is not None:
        base = base.filter(problem_id__in=problem_ids)
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
    """Register the trained implicit PRM; it selects only once validated (bootstrap_activate_if_validated)."""
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
                "step_separator": "\n\n", "max_length": params["max_length"]})
    Job.objects.filter(pk=job.pk).update(model_version=version)
    return version


@transaction.atomic
def bootstrap_activate_if_validated(*, version: ModelVersion) -> bool:
    """Make the validated `version` the selector when there is none, or when the active one is an implicit
    PRM (the one a refresh replaces); never over a PRM trained on human labels. True if it became it."""
    list(ModelVersion.objects.select_for_update().filter(kind=ModelVersion.Kind.PRM).order_by("id")
         .values_list("id", flat=True))
    version = ModelVersion.objects.get(pk=version.pk)
    active = selector_active()
    if version.is_active_selector:
        return True
    if not selector_validated(version) or (active is not None and _architecture(active) != "implicit"):
        return False
    selector_activate(version=version)
    return True


def bootstrap_settle(*, round_: Round, job: Job) -> None:
    """Once the round's TRAIN_SELECTOR job is done: fix the round's selector and record in
    round.stats["selector"] what became of the trained version.

    Activated: it is the round's selector. Not activated while another selector is active (a refresh
    that did not validate): the round keeps the active one. Not activated and none active: the round
    records the trained version as its selector (its scores are still computed, so its yield can be
    compared later) and falls back to random wrong answers ("fallback": "random_wrong").
    """
    trained = job.model_version
    active = selector_active()
    record = {"version": trained.pk, "name": trained.name, "purpose": job.parameters.get("purpose", BOOTSTRAP),
              "validated": (trained.metrics or {}).get("validation"), "activated": trained.is_active_selector}
    text = validation_text(trained)
    if trained.is_active_selector:
        round_.selector = trained
    elif active is not None:
        round_.selector = active
        record["kept"] = active.pk
        why = "validated, but a PRM trained on human labels is active" if selector_validated(trained) else \
            "did not beat chance on validation"
        record["reason"] = f"{trained.name} {why} ({text}): the active selector {active.name} stays"
    else:
        round_.selector = trained
        record["fallback"] = "random_wrong"
        record["reason"] = f"round-0 selector did not beat chance on validation: {text}"
    round_.stats = {**(round_.stats or {}), "selector": record}
    round_.save(update_fields=["selector", "stats"])


def selection_fallback(round_: Round) -> str | None:
    """Why the round must pick wrong answers at random instead of by its selector's score; None when it
    selects by score. Decided when the round settled its selector (bootstrap_settle)."""
    record = (round_.stats or {}).get("selector") or {}
    return record.get("reason") if record.get("fallback") else None


def implicit_refresh_due(active: ModelVersion | None) -> bool:
    """True when a round should train a fresh implicit PRM on all graded outcomes before selecting: the
    setting is on, the active selector is an implicit PRM, and no PRM trained on human labels beats it."""
    if not settings.STEPWISE_RETRAIN_IMPLICIT_EACH_ROUND or active is None or _architecture(active) != "implicit":
        return False
    step_heads = ModelVersion.objects.filter(kind=ModelVersion.Kind.PRM, config__architecture="step_head")
    return not any(beats_on_validation(candidate, active) for candidate in step_heads)


def beats_on_validation(candidate: ModelVersion, incumbent: ModelVersion) -> bool:
    """True when `candidate` does better than `incumbent` on figures measured on the same data: their
    held-out evaluations (same digest; the promotion rule of services.training.promotion), else their
    validation AUROCs. Without comparable figures, False."""
    from labeling.services.training.promotion import evaluation_better

    new, old = ((v.metrics or {}).get("evaluation") for v in (candidate, incumbent))
    if new and old and new["held_out"]["digest"] == old["held_out"]["digest"]:
        return evaluation_better(new, old)
    new, old = ((((v.metrics or {}).get("validation") or {}).get("outcome_auroc") or {}).get("auroc")
                for v in (candidate, incumbent))
    return new is not None and old is not None and new > old


def _architecture(version: ModelVersion) -> str:
    return (version.config or {}).get("architecture", "step_head")
