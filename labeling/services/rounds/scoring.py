"""Scoring candidate solutions with a selector PRM, one job chunk at a time, each solution once.

The scorer is passed in (workers build it; this module never imports torch). It has
`score(items, batch_size=, max_length=)` returning per-step values for (problem, steps) items and
`solution_score(step_values)` returning the solution's score, or None when no step could be scored
(a first step longer than max_length): such a solution is stored with score 0, last in the queue.
"""
from django.db import transaction

from labeling.models import JobChunk, Solution, VerifierScore
from labeling.services.jobs.rows import job_progress, split


def rounded_step_values(values):
    """Per-step values as stored in VerifierScore.step_scores: floats (or triples of them) to 6 decimals."""
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        return [rounded_step_values(v) for v in values]
    return round(float(values), 6)


def score_chunk(*, chunk: JobChunk, scorer, batch_size: int = 16, max_length: int = 1024) -> int:
    """Score the chunk's solutions that have no score by the job's model yet; returns how many were written.

    Each forward batch is committed on its own, so progress shows and a killed worker loses one batch
    at most; the (solution, model) unique constraint keeps a duplicate delivery from writing twice.
    """
    version_id = chunk.job.model_version_id
    written = 0
    for ids in split(list(chunk.ids), batch_size):
        done = set(VerifierScore.objects.filter(model_version_id=version_id, solution_id__in=ids)
                   .values_list("solution_id", flat=True))
        rows = list(Solution.objects.filter(id__in=[i for i in ids if i not in done]).order_by("id")
                    .values_list("id", "problem__text", "steps"))
        if not rows:
            continue
        step_values = scorer.score([(text, steps) for _, text, steps in rows], batch_size=batch_size,
                                   max_length=max_length)
        scores = [VerifierScore(solution_id=sid, model_version_id=version_id, step_scores=rounded_step_values(values),
                                score=_solution_score(scorer, values))
                  for (sid, _, _), values in zip(rows, step_values)]
        with transaction.atomic():
            VerifierScore.objects.bulk_create(scores, ignore_conflicts=True)
            job_progress(job_id=chunk.job_id, add=len(scores))
        written += len(scores)
    return written


def _solution_score(scorer, values) -> float:
    score = scorer.solution_score(values)
    return 0.0 if score is None else float(score)
