"""Evaluating a generator version on held-out problems: accuracy greedy and by majority of N.

The held-out problems are those of split "test" with a reference answer (rounds never draw them, and
generator pairs leave them out), in id order, the first `problems` of them where a limit is given. Per
problem the generator answers once greedily (temperature 0) and N times by sampling; the majority answer
is the most frequent among the sampled final answers, compared after the MATH and PRM800K normalisations
(labeling.services.training.evaluation.answer_key; a tie goes to the answer sampled first; samples
without an answer do not vote). Answers are graded in `fixed` mode (labeling.core.grading). The samples
are not stored as solutions: test-split candidates are what PRMs are evaluated on, and these would
change that set.

The evaluation's `held_out.digest` covers the problems, their answers and the sampling settings, so two
evaluations compare (promotion: labeling.services.training.generator_promotion) only when they asked the
same questions the same way.
"""
import hashlib
import time
from collections import Counter

from django.db import transaction
from django.utils import timezone

from labeling.errors import EvaluationError
from labeling.models import Job, ModelVersion, Problem, Split
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_create
from workers import tasks

GRADING = "fixed"
PROMOTE = ("manual", "if_better", "always")


def heldout_problems(*, limit: int | None = None):
    qs = Problem.objects.filter(split=Split.TEST, answer__isnull=False).order_by("id")
    return qs[:limit] if limit else qs


@transaction.atomic
def generator_evaluation_start(*, version: ModelVersion, user=None, n: int = 4, problems: int | None = None,
                               temperature: float = 0.7, max_new_tokens: int = 512, seed: int = 0,
                               promote: str = "manual") -> Job:
    """A Job EVALUATE_GENERATOR for `version`, sent to a GPU worker on commit."""
    if version.kind != ModelVersion.Kind.GENERATOR:
        raise EvaluationError(f"{version.name} is a {version.kind}, not a generator")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise EvaluationError(f"n (samples per problem for the majority vote) must be at least 1, got {n!r}")
    if promote not in PROMOTE:
        raise EvaluationError(f"promote must be one of {', '.join(PROMOTE)}, got {promote!r}")
    if not heldout_problems().exists():
        raise EvaluationError("no held-out problems: a generator is evaluated on problems in split 'test' with a "
                              "reference answer, and there are none")
    job = job_create(kind=Job.Kind.EVALUATE_GENERATOR, model_version=version, total=0, user=user, parameters={
        "n": n, "problems": problems, "temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed,
        "promote": promote})
    enqueue(tasks.gpu_evaluate_generator, job.pk)
    return job


def majority_answer(answers):
    """The most frequent answer by answer_key (ties: the first sampled); None when none answered."""
    from labeling.services.training.evaluation import answer_key

    keys = [answer_key(a) for a in answers]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a, k in zip(answers, keys) if k is not None and counts[k] == top)


def evaluate_generator(*, generator, n: int = 4, problems: int | None = None, temperature: float = 0.7,
                       max_new_tokens: int = 512, seed: int = 0, batch_size: int = 8, progress=None) -> dict:
    """The figures of the module docstring for a loaded `generator` (workers.ml.generator.Generator)."""
    from labeling.core.grading import grade_answer

    rows = list(heldout_problems(limit=problems).values_list("id", "text", "answer"))
    if not rows:
        raise EvaluationError("no held-out problems (split 'test' with a reference answer)")
    texts = [text for _, text, _ in rows]
    sampling = {"n": n, "temperature": temperature, "top_p": 0.95, "max_new_tokens": max_new_tokens, "seed": seed}
    start = time.perf_counter()
    if progress:
        progress(0, 2, f"greedy answers to {len(rows)} held-out problems")
    greedy = generator.sample(texts, 1, temperature=0, max_new_tokens=max_new_tokens, batch_size=batch_size)
    tokens = generator.last_stats["tokens"]
    if progress:
        progress(1, 2, f"{n} sampled answers to each of {len(rows)} held-out problems")
    sampled = generator.sample(texts, n, temperature=temperature, top_p=0.95, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, seed=seed)
    tokens += generator.last_stats["tokens"]
    per_problem, greedy_right, majority_right = [], 0, 0
    for (pid, _, reference), [first], samples in zip(rows, greedy, sampled):
        vote = majority_answer([s.final_answer for s in samples])
        g = first.final_answer is not None and grade_answer(first.final_answer, reference, mode=GRADING)
        m = vote is not None and grade_answer(vote, reference, mode=GRADING)
        greedy_right += g
        majority_right += m
        per_problem.append({"problem_id": pid, "greedy": first.final_answer, "greedy_correct": bool(g),
                            "majority": vote, "majority_correct": bool(m),
                            "answered": sum(s.final_answer is not None for s in samples)})
    seconds = time.perf_counter() - start
    key = "\x1e".join(f"{pid}:{ref}" for pid, _, ref in rows) + repr(sorted(sampling.items()))
    return {"greedy_accuracy": greedy_right / len(rows), "majority_accuracy": majority_right / len(rows), "n": n,
            "problems": len(rows), "grading": GRADING, "sampling": sampling, "per_problem": per_problem,
            "held_out": {"problems": len(rows), "digest": hashlib.sha256(key.encode()).hexdigest()},
            "seconds": seconds, "tokens": tokens, "tokens_per_second": tokens / seconds if seconds else None}


@transaction.atomic
def generator_evaluation_save(*, version: ModelVersion, metrics: dict) -> ModelVersion:
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    version.metrics = {**(version.metrics or {}),
                       "generator_evaluation": {**metrics, "evaluated_at": timezone.now().isoformat()}}
    version.save(update_fields=["metrics"])
    return version
