"""The generated-solution line format: one decoded line validated into a solution record.

A solution names its problem by `unique_id` (the problem file's) or by the problem's text.
"""
from labeling.errors import DataError
from labeling.formats.fields import get, reject_unknown

KEYS = ("unique_id", "problem", "steps", "answer", "generator", "sampling")


def parse_solution(obj):
    reject_unknown(obj, KEYS)
    if "unique_id" not in obj and "problem" not in obj:
        raise DataError("missing: a solution names its problem by 'unique_id' or 'problem'", field="unique_id")
    steps = get(obj, "steps", list)
    if not steps:
        raise DataError("must hold at least one step", field="steps")
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            raise DataError(f"must be a string, got {type(step).__name__}", field=f"steps[{i}]")
        if not step.strip():
            raise DataError("is empty", field=f"steps[{i}]")
    return {
        "unique_id": get(obj, "unique_id", str, required=False),
        "problem": get(obj, "problem", str, required=False),
        "steps": steps,
        "answer": get(obj, "answer", str, nullable=True, required=False),
        "generator": get(obj, "generator", str, nullable=True, required=False) or "",
        "sampling": get(obj, "sampling", dict, nullable=True, required=False) or {},
    }
