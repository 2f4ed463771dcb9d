"""Factories for the queue and submission tests: problems, solutions, tasks, annotators, payloads."""
import itertools
import uuid

from django.contrib.auth import get_user_model

from labeling.models import Annotator, Problem, Round, Solution, Task

_n = itertools.count(1)


def problem_make(*, answer="42"):
    n = next(_n)
    return Problem.objects.create(text=f"Problem {n}: what is $6 \\times 7$?", answer=answer,
                                  solution=f"Six sevens are $\\boxed{{{answer}}}$.")


def solution_make(*, problem=None, n_steps=4):
    n = next(_n)
    problem = problem or problem_make()
    steps = [f"Step {k} of solution {n}: $x_{k} = {k}$." for k in range(n_steps)]
    steps[-1] += "\n\n# Answer\n\n42"
    return Solution.objects.create(problem=problem, steps=steps, final_answer="42")


def round_make(**fields):
    fields.setdefault("number", next(_n))
    return Round.objects.create(**fields)


def task_make(*, kind=Task.Kind.ROUND, priority=0.0, overlap=1, round=None, n_steps=4, alternatives=None,
              gold=None, solution=None):
    solution = solution or solution_make(n_steps=n_steps)
    if gold is None and kind != Task.Kind.ROUND:
        gold = [1] * len(solution.steps)
    if kind != Task.Kind.ROUND and overlap == 1:
        overlap = 10_000  # as labeling.services.quality.gold makes gold tasks
    return Task.objects.create(solution=solution, kind=kind, priority=priority, overlap=overlap, round=round,
                               alternatives=alternatives or {}, gold_ratings=gold)


def annotator_make(name=None):
    """An annotator login without a password (hashing one costs a third of a second)."""
    user = get_user_model().objects.create_user(name or f"annotator{next(_n)}")
    return Annotator.objects.create(user=user)


def ratings(*values, flagged=False):
    return [{"step": i, "rating": r, "flagged": flagged} for i, r in enumerate(values)]


def submission(n_steps=4, **overrides):
    """A valid submission for a solution of `n_steps` steps (all +1) as the API takes it."""
    body = {"client_id": str(uuid.uuid4()), "ratings": ratings(*[1] * n_steps), "finish_reason": "solution",
            "total_time_ms": 1000}
    body.update(overrides)
    return body
