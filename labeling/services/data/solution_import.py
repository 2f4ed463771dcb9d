"""Import generated solutions (one JSON object a line), grading each on import. All-or-nothing, idempotent."""
from dataclasses import dataclass

from django.db import transaction

from labeling.errors import DataError
from labeling.formats.jsonl import parse_lines
from labeling.formats.solutions import parse_solution
from labeling.models import Problem, Solution, text_sha256

@dataclass
class SolutionImportResult:
    lines: int = 0
    created: int = 0
    skipped: int = 0
    correct: int = 0
    ungraded: int = 0


def solutions_import(*, path) -> SolutionImportResult:
    from labeling.core.grading import grade_answer
    from labeling.core.solution_text import extract_answer

    result = SolutionImportResult()
    records = []
    for number, _text, record in parse_lines(path, parse_solution):
        result.lines += 1
        record["line"] = number
        if record["answer"] is None:
            record["answer"] = extract_answer(record["steps"][-1])
        records.append(record)
    problems = problems_by_line(records, path)
    keys = {}
    for r in records:
        problem = problems[r["line"]]
        keys.setdefault((problem.id, Solution.hash_steps(r["steps"])), (problem, r))
    existing = set(Solution.objects.filter(problem_id__in={k[0] for k in keys},
                                           steps_hash__in={k[1] for k in keys}).values_list("problem_id", "steps_hash"))
    verdicts = {}
    new = []
    for key, (problem, r) in keys.items():
        if key in existing:
            continue
        correct = None
        if r["answer"] is not None and problem.answer is not None:
            pair = (r["answer"], problem.answer)
            if pair not in verdicts:
                verdicts[pair] = grade_answer(*pair)
            correct = verdicts[pair]
        result.correct += bool(correct)
        result.ungraded += correct is None
        new.append(Solution(problem=problem, steps=r["steps"], steps_hash=key[1], final_answer=r["answer"],
                            is_correct=correct, graded_mode="prm800k" if correct is not None else "",
                            generator=r["generator"], sampling=r["sampling"]))
    with transaction.atomic():
        Solution.objects.bulk_create(new, batch_size=500)
    result.created = len(new)
    result.skipped = len(records) - len(new)
    return result


def problems_by_line(records, path):
    """line number -> the imported problem the line names (DataError where none)."""
    by_id = {p.source_id: p for p in Problem.objects.filter(
        source_id__in={r["unique_id"] for r in records if r["unique_id"]})}
    by_hash = {p.text_hash: p for p in Problem.objects.filter(
        text_hash__in={text_sha256(r["problem"]) for r in records if r["problem"] and not r["unique_id"]})}
    resolved = {}
    for r in records:
        if r["unique_id"]:
            problem = by_id.get(r["unique_id"])
            if problem is None:
                raise DataError(f"no imported problem has unique_id {r['unique_id']!r} (import_problems first)",
                                file=path, line=r["line"], field="unique_id")
        else:
            problem = by_hash.get(text_sha256(r["problem"]))
            if problem is None:
                raise DataError("no imported problem has this text (import_problems first)",
                                file=path, line=r["line"], field="problem")
        resolved[r["line"]] = problem
    return resolved
