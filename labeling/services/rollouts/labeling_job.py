"""The rollouts job: Monte Carlo step values of solutions under a prover, chunked like scoring, each estimate once.

`rollouts_start` makes a `rollouts` Job (gpu queue, task workers.tasks.gpu_rollouts) with one JobChunk per
STEPWISE_ROLLOUT_CHUNK solutions; `rollouts_chunk` does one chunk with a sampler the worker built (this
module never imports torch). A chunk goes in passes: for every solution it asks the planner
(core/rollout_values.prefixes_to_estimate: every prefix for "mc", the next bisection point for "binary")
which prefixes still need an estimate, given the estimates already stored for (solution, prover, method);
rolls them out STEPWISE_ROLLOUT_BATCH prefixes at a time across solutions; and writes each batch in one
transaction with the job's progress. The unique (solution, step_index, prover, method) constraint plus
the planner's reading of what is stored make a redelivered chunk do only what its dead worker had not
committed: every (solution, step) is estimated exactly once. Progress counts solutions finished.

A rollouts job serves no round (its failure must not fail one): `--round N` only picks the solutions.
Solutions whose problem has no reference answer cannot be graded and are left out (counted in the job's
parameters as `skipped_no_answer`).
"""
from django.conf import settings
from django.db import transaction

from labeling.core.rollout_values import METHODS, PrefixRequest, estimate_fields, prefixes_to_estimate
from labeling.errors import DataError
from labeling.models import Job, JobChunk, RolloutEstimate, RoundSelection, Solution, Task
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_create, job_progress, split


def default_prover(*, round=None) -> str:
    """The round's generator spec, else STEPWISE_GENERATOR."""
    spec = ((round.parameters or {}).get("generator") if round is not None else None)
    return spec or settings.STEPWISE_GENERATOR


def solutions_of_round(*, round) -> list[int]:
    """The solutions a round selected (its queue) and those of every QC task, in id order. QC tasks are served in
    any round as its own tasks: with rollout hints on, a QC solution without estimates would be the one task
    without a hint, and so stand out."""
    selected = set(RoundSelection.objects.filter(round=round).values_list("solution_id", flat=True))
    qc = set(Task.objects.filter(kind=Task.Kind.QC).values_list("solution_id", flat=True))
    return sorted(selected | qc)


def solutions_without_rollouts(*, prover: str, method: str) -> list[int]:
    """Solutions with no rollout estimate yet by this prover and method."""
    done = RolloutEstimate.objects.filter(prover=prover, method=method).values("solution_id")
    return list(Solution.objects.exclude(id__in=done).order_by("id").values_list("id", flat=True))


def read_solution_ids(path) -> list[int]:
    """Solution ids from a file, one per line (blank lines and `#` comments skipped); every id must exist."""
    ids = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not text.isdigit():
                raise DataError(f"expected one solution id (a positive integer), got {text[:40]!r}",
                                file=path, line=number)
            ids.append((int(text), number))
    known = set(Solution.objects.filter(id__in=[i for i, _ in ids]).values_list("id", flat=True))
    for solution_id, number in ids:
        if solution_id not in known:
            raise DataError(f"no solution with id {solution_id}", file=path, line=number)
    return list(dict.fromkeys(i for i, _ in ids))


@transaction.atomic
def rollouts_start(*, solution_ids, n: int = 8, method: str = "mc", prover: str | None = None, seed: int = 0,
                   user=None, round=None, chunk_size: int | None = None, temperature: float = 0.7,
                   top_p: float = 0.95, max_new_tokens: int | None = None) -> Job:
    """Queue a rollouts job over `solution_ids` (those with a gradable problem); the chunks go on commit."""
    from workers import tasks

    if method not in METHODS:
        raise ValueError(f"unknown rollout method {method!r}; expected one of {METHODS}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 < temperature or not 0 < top_p <= 1:
        raise ValueError("temperature must be > 0 and top_p in (0, 1]")
    wanted = list(dict.fromkeys(solution_ids))
    gradable = set(Solution.objects.filter(id__in=wanted, problem__answer__isnull=False)
                   .exclude(problem__answer="").values_list("id", flat=True))
    ids = [i for i in wanted if i in gradable]
    params = {"n": n, "method": method, "prover": prover or default_prover(round=round), "seed": seed,
              "temperature": temperature, "top_p": top_p,
              "max_new_tokens": max_new_tokens or settings.STEPWISE_ROLLOUT_MAX_NEW_TOKENS,
              "batch_prefixes": settings.STEPWISE_ROLLOUT_BATCH, "round": round.number if round else None,
              "skipped_no_answer": len(wanted) - len(ids)}
    chunks = split(ids, chunk_size or settings.STEPWISE_ROLLOUT_CHUNK) if ids else []
    job = job_create(kind=Job.Kind.ROLLOUTS, chunks=chunks, parameters=params, user=user)
    if not chunks:  # nothing to roll out: done at once
        Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE, result={"estimates": 0})
        job.refresh_from_db()
        return job
    for chunk_id in job.chunks.order_by("index").values_list("id", flat=True):
        enqueue(tasks.gpu_rollouts, chunk_id)
    return job


def rollouts_chunk(*, chunk: JobChunk, sampler) -> int:
    """Estimate what the chunk's solutions still lack; returns how many estimates this call wrote.

    `sampler.rollouts(requests, n, temperature=, top_p=, max_new_tokens=, seed=, batch_prefixes=)` takes
    PrefixRequests and returns, in their order, objects with key, k, n, n_correct and tokens
    (workers/ml/rollouts.RolloutSampler, or a scripted one in tests)."""
    params = chunk.job.parameters
    solutions = {s.id: s for s in Solution.objects.filter(id__in=chunk.ids).select_related("problem")}
    written = 0
    while True:
        requests, pending = _plan(solutions, params)
        if not requests:
            return written
        for batch in split(requests, max(1, params.get("batch_prefixes", 1))):
            written += rollouts_write(job=chunk.job, requests=batch, sampler=sampler, pending=pending)


def _plan(solutions, params):
    """The prefix requests of this pass, and per solution how many prefixes it waits for (its pending count)."""
    stored = {}
    for e in RolloutEstimate.objects.filter(solution_id__in=list(solutions), prover=params["prover"],
                                            method=params["method"]).only("solution_id", "step_index", "n",
                                                                          "n_correct"):
        stored.setdefault(e.solution_id, []).append(e)
    requests, pending = [], {}
    for sid in sorted(solutions):
        solution = solutions[sid]
        steps = tuple(solution.steps or ())
        if not steps:
            continue
        todo = prefixes_to_estimate(len(steps), stored.get(sid, []), params["method"])
        pending[sid] = len(todo)
        requests += [PrefixRequest(sid, solution.problem.text, steps, k, solution.problem.answer) for k in todo]
    return requests, pending


def rollouts_write(*, job: Job, requests, sampler, pending: dict) -> int:
    """Roll out `requests` (one batch) and write their estimates with the job's progress in one transaction.

    `pending[solution]` counts the prefixes of this pass the solution still waits for; a solution whose
    count reaches 0 and whose plan is then empty counts as one more solution done."""
    params = job.parameters
    results = sampler.rollouts(requests, params["n"], temperature=params["temperature"], top_p=params["top_p"],
                               max_new_tokens=params["max_new_tokens"], seed=params["seed"],
                               batch_prefixes=params.get("batch_prefixes", len(requests)))
    rows = [RolloutEstimate(solution_id=r.key, step_index=r.k, prover=params["prover"], method=params["method"],
                            n=r.n, n_correct=r.n_correct, seed=params["seed"], tokens=r.tokens, job=job,
                            **estimate_fields(n=r.n, n_correct=r.n_correct))
            for r in results]
    with transaction.atomic():
        RolloutEstimate.objects.bulk_create(rows, ignore_conflicts=True)
        finished = 0
        for r in results:
            pending[r.key] -= 1
            if pending[r.key] == 0 and _finished(r.key, requests, params):
                finished += 1
        job_progress(job_id=job.pk, add=finished)
    return len(rows)


def _finished(solution_id, requests, params) -> bool:
    steps = next(r.steps for r in requests if r.key == solution_id)
    stored = RolloutEstimate.objects.filter(solution_id=solution_id, prover=params["prover"], method=params["method"])
    return not prefixes_to_estimate(len(steps), list(stored.only("step_index", "n", "n_correct")), params["method"])
