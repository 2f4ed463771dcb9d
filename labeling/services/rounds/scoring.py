"""Scoring candidate solutions with a selector PRM, one job chunk at a time, each solution once.

The scorer is passed in (workers build it; this module never imports torch). It has
`score(items, batch_size=, max_length=)` returning per-step values for (problem, steps) items and
`solution_score(step_values)` returning the solution's score, or None when the solution is
unscorable: a step did not fit `max_length`. Such a solution is stored with score None (its step
values too, None for the steps cut), counted as `unscorable` in its round's stats and never selected:
a score over the steps that fit would rank a long wrong solution by its harmless beginning.

One maximum length: a version is scored with the `max_length` it was trained with (its config), else
settings.STEPWISE_MAX_LENGTH, which the round-0 bootstrap and retraining also train with.
"""
from django.conf import settings
from django.db import transaction

from labeling.models import JobChunk, ModelVersion, Solution, VerifierScore
from labeling.services.jobs.rows import job_progress, split


def scoring_max_length(*, version: ModelVersion | None, default: int | None = None) -> int:
    """The token budget to score with `version`: what it was trained with (config["max_length"]), else
    `default`, else STEPWISE_MAX_LENGTH (a version registered from outside has no recorded length)."""
    trained = ((version.config or {}) if version is not None else {}).get("max_length")
    return int(trained or default or settings.STEPWISE_MAX_LENGTH)


def rounded_step_values(values):
    """Per-step values as stored in VerifierScore.step_scores: floats (or triples of them) to 6 decimals."""
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        return [rounded_step_values(v) for v in values]
    return round(float(values), 6)


def score_chunk(*, chunk: JobChunk, scorer, batch_size: int = 16, max_length: int | None = None) -> int:
    """Score the chunk's solutions that have no score by the job's model yet; returns how many were written.

    `max_length` is used only for a version without a recorded one (see scoring_max_length).

    Each forward batch is committed on its own, so progress shows and a killed worker loses one batch
    at most; the (solution, model) unique constraint keeps a duplicate delivery from writing twice.
    """
    # The version's own length wins over the job's: scored as it was trained, whatever the settings now.
    max_length = scoring_max_length(version=chunk.job.model_version, default=max_length)
    written = 0
    for ids in split(list(chunk.ids), batch_size):
        written += len(scores_write(version_id=chunk.job.model_version_id, solution_ids=ids, scorer=scorer,
                                    batch_size=batch_size, max_length=max_length,
                                    within=lambda n: job_progress(job_id=chunk.job_id, add=n)))
    return written


def scores_write(*, version_id, solution_ids, scorer, batch_size, max_length, within=None) -> list[VerifierScore]:
    """Score those of `solution_ids` the version has no score for yet (one forward batch: keep them few) and
    write them in one transaction, in which `within(count)` also runs (a job's progress); the new rows."""
    done = set(VerifierScore.objects.filter(model_version_id=version_id, solution_id__in=solution_ids)
               .values_list("solution_id", flat=True))
    rows = list(Solution.objects.filter(id__in=[i for i in solution_ids if i not in done]).order_by("id")
                .values_list("id", "problem__text", "steps"))
    if not rows:
        return []
    step_values = scorer.score([(text, steps) for _, text, steps in rows], batch_size=batch_size, max_length=max_length)
    new = [VerifierScore(solution_id=sid, model_version_id=version_id, step_scores=rounded_step_values(values),
                         score=_solution_score(scorer, values))
           for (sid, _, _), values in zip(rows, step_values)]
    with transaction.atomic():
        VerifierScore.objects.bulk_create(new, ignore_conflicts=True)
        if within is not None:
            within(len(new))
    return new


def _solution_score(scorer, values) -> float | None:
    score = scorer.solution_score(values)
    return None if score is None else float(score)
