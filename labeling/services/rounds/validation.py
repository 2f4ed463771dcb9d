"""Validating a trained selector on problems it was not trained on, before it may select.

The round-0 implicit PRM is trained on the graded candidates of some problems (bootstrap.py splits
them with labeling.core.draws.split_for_validation) and scored here on the graded candidates of the
others. Its outcome AUROC (score against is_correct, DeLong 95% interval) decides: a selector whose
interval's low end is not above one half does not beat chance and is not activated automatically.
Where annotators labeled steps of validation problems, the ProcessBench first-error F1 at the fixed
threshold is reported too (it decides nothing: round 0 rarely has such labels).

The scores are stored as the version's VerifierScore rows (a candidate of the round's own problems
then needs no second pass when the round scores), so a redelivered job scores nothing twice. The
scorer is passed in: workers build it, this module never imports torch.
"""
from django.db import transaction

from labeling.core import evaluation
from labeling.core.intervals import auroc_interval, beats_chance
from labeling.core.step_scores import p_not_negative
from labeling.formats.training import annotation_steps
from labeling.models import Annotation, ModelVersion, Solution, VerifierScore
from labeling.services.data.training_exports import annotation_pages
from labeling.services.jobs.rows import split
from labeling.services.rounds.scoring import scores_write

FIXED_THRESHOLD = 0.5


def validation_figures(*, scores, outcomes, problem_ids, first_error=None, unscorable=0) -> dict:
    """What is stored as ModelVersion.metrics["validation"]: pure, so a test can feed it figures.

    `scores` and `outcomes` (is_correct) are paired lists of the scorable validation solutions.
    """
    interval = auroc_interval(scores, outcomes) if scores else None
    return {"outcome_auroc": interval, "beats_chance": beats_chance(interval),
            "first_error_f1": (first_error or {}).get("f1"), "first_error": first_error,
            "problems": list(problem_ids), "n": len(scores), "unscorable": unscorable}


def selector_validate(*, version: ModelVersion, problem_ids: list, solution_ids: list, scorer,
                      batch_size: int, max_length: int, progress=None) -> ModelVersion:
    """Score the validation solutions with `scorer` (the version's), store the figures on the version."""
    stored = _scores(version=version, solution_ids=solution_ids, scorer=scorer, batch_size=batch_size,
                     max_length=max_length, progress=progress)
    outcomes = dict(Solution.objects.filter(id__in=solution_ids, is_correct__isnull=False)
                    .values_list("id", "is_correct"))
    pairs = [(stored[sid], outcomes[sid]) for sid in solution_ids if sid in outcomes and stored.get(sid) is not None]
    figures = validation_figures(
        scores=[s for s, _ in pairs], outcomes=[c for _, c in pairs], problem_ids=problem_ids,
        first_error=_first_error(problem_ids, scorer, batch_size, max_length),
        unscorable=sum(1 for sid in solution_ids if sid in stored and stored[sid] is None))
    return validation_save(version=version, figures=figures)


@transaction.atomic
def validation_save(*, version: ModelVersion, figures: dict) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    version.metrics = {**(version.metrics or {}), "validation": figures}
    version.save(update_fields=["metrics"])
    return version


def _scores(*, version, solution_ids, scorer, batch_size, max_length, progress) -> dict:
    """{solution id: score or None (unscorable)}, scoring only those the version has no score for."""
    stored = dict(VerifierScore.objects.filter(model_version=version, solution_id__in=solution_ids)
                  .values_list("solution_id", "score"))
    missing = [sid for sid in solution_ids if sid not in stored]
    for ids in split(missing, batch_size):
        new = scores_write(version_id=version.pk, solution_ids=ids, scorer=scorer, batch_size=batch_size,
                           max_length=max_length)
        stored.update({s.solution_id: s.score for s in new})
        if progress:
            progress(len(stored), len(solution_ids))
    return stored


def _first_error(problem_ids, scorer, batch_size, max_length) -> dict | None:
    """ProcessBench figures on the annotators' trajectories of the validation problems; None without any."""
    from labeling.services.training.evaluation import Trajectory

    trajectories = []
    annotations = Annotation.objects.filter(problem_id__in=problem_ids, is_quality_control=False, is_screening=False)
    for header, steps, completions in annotation_pages(annotations, ("problem_id", "problem__text", "finish_reason")):
        for aid, pid, prompt, finish_reason in header:
            path = annotation_steps(steps.get(aid, []), completions.get(aid, {}))
            if path:
                t = Trajectory(aid, pid, prompt, tuple(s for s, _ in path), tuple(r for _, r in path),
                               finish_reason == "solution")
                if t.gold is not None:
                    trajectories.append(t)
    golds, predictions = [], []
    for part in split(trajectories, batch_size):
        values = scorer.score([(t.prompt, list(t.steps)) for t in part], batch_size=batch_size, max_length=max_length)
        for t, step_values in zip(part, values):
            ok = [p_not_negative(v) for v in step_values]
            if ok and None not in ok:
                golds.append(t.gold)
                predictions.append(evaluation.first_error_prediction(ok, FIXED_THRESHOLD))
    if not golds:
        return None
    return {"threshold": FIXED_THRESHOLD, **evaluation.processbench_f1(golds, predictions)}
