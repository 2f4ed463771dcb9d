"""Import QC and screening tasks: solutions with gold ratings, one JSON object a line. All-or-nothing, idempotent.

The line format is labeling.formats.qc. The problem must exist; the solution is created (and graded) when missing. A task that already exists with the same gold is
skipped; with different gold the import fails rather than rescoring past answers silently.
"""
from dataclasses import dataclass

from django.db import transaction

from labeling.errors import DataError
from labeling.formats.jsonl import parse_lines
from labeling.formats.qc import GOLD_KINDS, parse_qc_task
from labeling.models import Solution, Task
from labeling.services.data.solution_import import problems_by_line
from labeling.services.quality.gold import GOLD_TASK_OVERLAP

@dataclass
class QcImportResult:
    lines: int = 0
    created: int = 0
    skipped: int = 0
    solutions_created: int = 0


def qc_tasks_import(*, path) -> QcImportResult:
    result = QcImportResult()
    records = []
    for number, _text, record in parse_lines(path, parse_qc_task):
        result.lines += 1
        record["line"] = number
        records.append(record)
    with transaction.atomic():
        problems = problems_by_line(records, path)
        solutions = _solutions(records, problems, result)
        existing = {(t.solution_id, t.kind): t for t in Task.objects.filter(
            solution_id__in={s.id for s in solutions.values()}, kind__in=GOLD_KINDS, round=None)}
        new = {}
        for r in records:
            key = (solutions[r["line"]].id, r["kind"])
            task = existing.get(key) or new.get(key)
            if task is None:
                new[key] = Task(solution_id=key[0], kind=r["kind"], gold_ratings=r["gold"],
                                alternatives=r["alternatives"], overlap=GOLD_TASK_OVERLAP)
            elif task.gold_ratings != r["gold"] or task.alternatives != r["alternatives"]:
                where = f"task {task.pk}" if task.pk else "an earlier line"
                raise DataError(f"this solution already has a {r['kind']} task ({where}) with different gold "
                                "or alternatives", file=path, line=r["line"], field="gold")
        Task.objects.bulk_create(new.values(), batch_size=500)
    result.created = len(new)
    result.skipped = len(records) - len(new)
    return result


def _solutions(records, problems, result):
    """The solution of each line, by line number: found by its steps, else created and graded."""
    from labeling.core.grading import grade_answer
    from labeling.core.solution_text import extract_answer

    keys = {(problems[r["line"]].id, Solution.hash_steps(r["steps"])): r for r in records}
    found = {(s.problem_id, s.steps_hash): s for s in Solution.objects.filter(
        problem_id__in={k[0] for k in keys}, steps_hash__in={k[1] for k in keys})}
    new = []
    for key, r in keys.items():
        if key in found:
            continue
        problem = problems[r["line"]]
        answer = r["answer"] if r["answer"] is not None else extract_answer(r["steps"][-1])
        correct = grade_answer(answer, problem.answer) if answer is not None and problem.answer is not None else None
        new.append(Solution(problem=problem, steps=r["steps"], steps_hash=key[1], final_answer=answer,
                            is_correct=correct, graded_mode="prm800k" if correct is not None else "",
                            generator=r["generator"]))
    Solution.objects.bulk_create(new, batch_size=500)
    result.solutions_created = len(new)
    found.update({(s.problem_id, s.steps_hash): s for s in Solution.objects.filter(
        problem_id__in={k[0] for k in keys}, steps_hash__in={k[1] for k in keys})})
    return {r["line"]: found[(problems[r["line"]].id, Solution.hash_steps(r["steps"]))] for r in records}
