"""Sampling candidate solutions for a round's problems, graded and stored, up to M per problem.

The generator is passed in (workers build it). Each problem's samples are seeded from (seed,
problem id, attempt), so a redelivered chunk regenerates the same texts and the (problem, steps)
unique constraint drops what its dead worker had already stored. A sample's steps and final answer
are made storable here, where they become rows (labeling.core.solution_text.storable_text): a model
can emit a NUL or a lone surrogate, which PostgreSQL would refuse for the whole chunk.
"""
from collections import defaultdict

from django.db import transaction
from django.db.models import Count

from labeling.core.solution_text import storable_text
from labeling.models import JobChunk, Problem, Solution
from labeling.services.jobs.rows import job_progress

MAX_ATTEMPTS = 3  # sampling the same text twice leaves a problem short; retry this often with new seeds


def generate_chunk(*, chunk: JobChunk, generator, candidates: int, spec: str, sampling: dict) -> int:
    """Bring each of the chunk's problems up to `candidates` solutions; returns how many were stored."""
    stored = 0
    for attempt in range(MAX_ATTEMPTS):
        missing = _missing(chunk.ids, candidates)
        if not missing:
            break
        by_count = defaultdict(list)
        for problem in Problem.objects.filter(id__in=missing).order_by("id"):
            by_count[missing[problem.id]].append(problem)
        for n, problems in sorted(by_count.items()):
            stored += _generate(chunk, generator, problems, n, spec, sampling, attempt)
    job_progress(job_id=chunk.job_id, add=len(chunk.ids))
    return stored


def _missing(problem_ids, candidates) -> dict[int, int]:
    have = dict(Solution.objects.filter(problem_id__in=problem_ids).values("problem_id")
                .annotate(n=Count("id")).values_list("problem_id", "n"))
    return {pid: candidates - have.get(pid, 0) for pid in problem_ids if have.get(pid, 0) < candidates}


def _generate(chunk, generator, problems, n, spec, sampling, attempt) -> int:
    from labeling.core.grading import grade_answer

    seed = int(sampling.get("seed", 0)) + 1000003 * attempt + problems[0].id
    samples = generator.sample([p.text for p in problems], n, seed=seed,
                               **{k: v for k, v in sampling.items() if k != "seed"})
    rows = []
    for problem, group in zip(problems, samples):
        for sample in group:
            steps = [step for step in map(storable_text, sample.steps) if step.strip()]
            if not steps:
                continue
            answer = None if sample.final_answer is None else (storable_text(sample.final_answer).strip() or None)
            correct = None
            if answer is not None and problem.answer is not None:
                correct = grade_answer(answer, problem.answer)
            rows.append(Solution(problem=problem, steps=steps, steps_hash=Solution.hash_steps(steps),
                                 final_answer=answer, is_correct=correct,
                                 graded_mode="prm800k" if correct is not None else "", generator=spec,
                                 sampling={**sample.sampling, "finish_reason": sample.finish_reason}))
    with transaction.atomic():
        before = Solution.objects.filter(problem_id__in=[p.id for p in problems]).count()
        Solution.objects.bulk_create(rows, ignore_conflicts=True)
        after = Solution.objects.filter(problem_id__in=[p.id for p in problems]).count()
    return after - before
