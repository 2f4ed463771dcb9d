"""The demo: the project's own problems and candidate solutions, and two logins."""
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model

from labeling.models import Solution
from labeling.services.annotation.accounts import annotator_create
from labeling.services.data.problem_import import problems_import
from labeling.services.annotation.queue import tasks_enqueue
from labeling.services.data.solution_import import solutions_import

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
LOGINS = (("admin", "stepwise-admin", True), ("annotator", "stepwise-annotator", False))


@dataclass
class DemoResult:
    problems: int
    solutions: int
    queued: int
    logins: tuple


def demo_load() -> DemoResult:
    problems = problems_import(path=DEMO_DIR / "problems.jsonl", split="train")
    solutions = solutions_import(path=DEMO_DIR / "solutions.jsonl")
    User = get_user_model()
    for username, password, admin in LOGINS:
        if not User.objects.filter(username=username).exists():
            annotator_create(username=username, password=password, admin=admin)
    # Annotators can start at once; the active-learning round will later re-prioritise by selector score.
    queued = tasks_enqueue(overlap=1)
    return DemoResult(problems=problems.created, solutions=solutions.created, queued=queued, logins=LOGINS)


def demo_rollout_solutions(count: int = 3) -> list[int]:
    """A few demo solutions to roll out (`manage.py demo_rollouts`): those annotators labeled first, so the
    rollouts show beside human labels, then the shortest (fewest prefixes to continue); one per problem."""
    rows = Solution.objects.filter(problem__source_id__startswith="demo/", problem__answer__isnull=False) \
        .values_list("id", "problem_id", "steps")
    labeled = set(Solution.objects.filter(annotations__isnull=False).values_list("id", flat=True))
    picked, problems = [], set()
    for sid, pid, steps in sorted(rows, key=lambda r: (r[0] not in labeled, len(r[2]), r[0])):
        if pid not in problems:
            picked.append(sid)
            problems.add(pid)
        if len(picked) == count:
            break
    return picked
