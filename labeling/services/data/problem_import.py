"""Import MATH-style problems: all-or-nothing, idempotent by unique_id (and by problem text)."""
from dataclasses import dataclass

from django.db import transaction

from labeling.errors import DataError
from labeling.formats.jsonl import parse_lines
from labeling.formats.problems import parse_problem
from labeling.models import Problem, Split, text_sha256

@dataclass
class ProblemImportResult:
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    split_changed: int = 0


def problems_import(*, path, split="", change_split=False) -> ProblemImportResult:
    """`split` is recorded on new problems and on known ones without a split. A known problem already in
    another split is an error naming its line, unless `change_split` moves it: a held-out problem never
    joins the training side (nor the reverse) by accident."""
    if split not in Split.values:
        raise DataError(f"unknown split {split!r} (expected one of: {', '.join(v for v in Split.values if v)})")
    result = ProblemImportResult()
    records = []
    ids, hashes = set(), set()
    for number, _text, record in parse_lines(path, parse_problem):
        result.lines += 1
        if record["answer"] is None:
            # MATH keeps the answer inside the solution's last \boxed{}.
            from labeling.core.solution_text import extract_answer
            record["answer"] = extract_answer(record["solution"] or "")
        record["text_hash"] = text_sha256(record["text"])
        record["line"] = number
        if record["source_id"] in ids or record["text_hash"] in hashes:
            raise DataError("the same problem appears twice in this file", file=path, line=number,
                            field="unique_id" if record["source_id"] in ids else "problem")
        if record["source_id"]:
            ids.add(record["source_id"])
        hashes.add(record["text_hash"])
        records.append(record)
    with transaction.atomic():
        _write(records, split, result, path=path, change_split=change_split)
    return result


def _write(records, split, result, *, path, change_split):
    """New problems are created; known ones only get their missing fields filled, never overwritten.

    A problem first seen in a PRM800K file keeps that file's ground truth, so its export stays exact.
    """
    by_id = {p.source_id: p for p in Problem.objects.filter(source_id__in=[r["source_id"] for r in records
                                                                            if r["source_id"]])}
    by_hash = {p.text_hash: p for p in Problem.objects.filter(text_hash__in=[r["text_hash"] for r in records])}
    new, changed = [], []
    for r in records:
        problem = by_id.get(r["source_id"]) or by_hash.get(r["text_hash"])
        if problem is None:
            new.append(Problem(text=r["text"], text_hash=r["text_hash"], answer=r["answer"], solution=r["solution"],
                               subject=r["subject"], level=r["level"], source_id=r["source_id"], split=split))
            continue
        dirty = False
        if split and problem.split and problem.split != split:
            if not change_split:
                raise DataError(f"problem {problem.source_id or problem.id} is already in split "
                                f"{problem.split!r}; importing it as {split!r} would move it (pass --change-split "
                                f"to move it on purpose)", file=path, line=r["line"], field="split")
            problem.split = split
            result.split_changed += 1
            dirty = True
        for field, value in (("source_id", r["source_id"]), ("solution", r["solution"]), ("answer", r["answer"]),
                             ("subject", r["subject"]), ("level", r["level"]), ("split", split)):
            if value not in (None, "") and getattr(problem, field) in (None, ""):
                setattr(problem, field, value)
                dirty = True
        if dirty:
            changed.append(problem)
        else:
            result.unchanged += 1
    Problem.objects.bulk_create(new, batch_size=500)
    if changed:
        Problem.objects.bulk_update(changed, ["source_id", "solution", "answer", "subject", "level", "split"])
    result.created = len(new)
    result.updated = len(changed)
