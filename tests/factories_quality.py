"""Rows for quality tests: solutions, tasks, and submitted annotations written straight through the ORM."""
import datetime as dt
import itertools

from django.utils import timezone

from labeling.models import Annotation, Assignment, Completion, Problem, Solution, StepLabel, Task
from labeling.services.annotation.accounts import annotator_create

_serial = itertools.count(1)


def annotator(username):
    return annotator_create(username=username, password=f"{username}-pw-long-enough")


def solution(n_steps, problem=None):
    n = next(_serial)
    problem = problem or Problem.objects.create(text=f"Problem {n}: what is {n} + {n}?", answer=str(2 * n))
    return Solution.objects.create(problem=problem, steps=[f"Step {i} of solution {n}." for i in range(n_steps)])


def task(n_steps=4, *, kind=Task.Kind.ROUND, gold=None, round=None, overlap=3):
    return Task.objects.create(solution=solution(n_steps), kind=kind, gold_ratings=gold, round=round, overlap=overlap)


def submit(task, annotator, ratings, *, total_time_ms=60_000, ago=dt.timedelta(hours=1)):
    """A submitted annotation of `task` by `annotator`: completion 0 of step i rated ratings[i]."""
    when = timezone.now() - ago
    steps = task.solution.steps
    finish = "found_error" if -1 in ratings else "solution" if len(ratings) == len(steps) else "give_up"
    annotation = Annotation.objects.create(
        annotator=annotator, solution=task.solution, problem=task.solution.problem, round=task.round,
        timestamp=when, total_time_ms=total_time_ms, finish_reason=finish,
        is_quality_control=task.kind == Task.Kind.QC, is_screening=task.kind == Task.Kind.SCREENING)
    StepLabel.objects.bulk_create(StepLabel(annotation=annotation, index=i, chosen_completion=0)
                                  for i in range(len(ratings)))
    Completion.objects.bulk_create(Completion(annotation=annotation, step_index=i, index=0, text=steps[i], rating=r)
                                   for i, r in enumerate(ratings))
    Assignment.objects.create(task=task, annotator=annotator, status=Assignment.Status.SUBMITTED, leased_at=when,
                              expires_at=when + dt.timedelta(minutes=30), submitted_at=when, annotation=annotation)
    return annotation
