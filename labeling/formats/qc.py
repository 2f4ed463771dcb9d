"""The QC/screening task line format, and the validation of gold ratings and alternatives.

A line: {"unique_id" or "problem", "steps": [...], "gold": [-1/0/1 ...], "kind": "qc"|"screening",
"alternatives"?: {"step index": [texts]}, "answer"?, "generator"?}: a solution line (formats.solutions)
plus its gold. The admin's task form and labeling.services.quality.gold validate gold with the same rules.
"""
from labeling.core.agreement import RATINGS, first_error
from labeling.errors import DataError
from labeling.formats.fields import get, reject_unknown
from labeling.formats.solutions import KEYS as SOLUTION_KEYS
from labeling.formats.solutions import parse_solution

# The task kinds that carry gold: the values of Task.Kind.QC and Task.Kind.SCREENING.
GOLD_KINDS = ("qc", "screening")
KEYS = ("unique_id", "problem", "steps", "gold", "kind", "alternatives", "answer", "generator")


def gold_validate(gold, n_steps):
    """Raise DataError (field 'gold...') unless `gold` is valid gold for a solution of `n_steps` steps."""
    if not isinstance(gold, list) or not gold:
        raise DataError("must be a non-empty list of ratings (-1, 0, 1)", field="gold")
    for i, rating in enumerate(gold):
        if type(rating) is not int or rating not in RATINGS:
            raise DataError(f"must be -1, 0 or 1, got {rating!r}", field=f"gold[{i}]")
    if len(gold) > n_steps:
        raise DataError(f"rates {len(gold)} steps but the solution has {n_steps}", field="gold")
    error = first_error(gold)
    if error is not None and error < len(gold) - 1:
        raise DataError(f"gold ends at the first -1 (step {error}); nothing may follow it", field=f"gold[{error + 1}]")
    if error is None and len(gold) < n_steps:
        raise DataError(f"has no -1, so it must rate all {n_steps} steps (it rates {len(gold)})", field="gold")
    return gold


def alternatives_validate(alternatives, n_steps):
    """{"step index": [texts]}: alternative completions offered once that step is rated -1."""
    if alternatives is None:
        return {}
    if not isinstance(alternatives, dict):
        raise DataError("must be an object mapping step indexes to lists of texts", field="alternatives")
    for key, texts in alternatives.items():
        name = f"alternatives.{key}"
        if not key.isdigit() or int(key) >= n_steps:
            raise DataError(f"not a step index of this solution (0 to {n_steps - 1})", field=name)
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise DataError("must be a list of non-empty texts", field=name)
    return alternatives


def kind_validate(kind):
    if kind not in GOLD_KINDS:
        raise DataError(f"must be one of {', '.join(GOLD_KINDS)}, got {kind!r}", field="kind")
    return kind


def parse_qc_task(obj):
    reject_unknown(obj, KEYS)
    record = parse_solution({k: v for k, v in obj.items() if k in SOLUTION_KEYS})
    record["kind"] = kind_validate(get(obj, "kind", str, required=False, default="qc"))
    record["gold"] = gold_validate(get(obj, "gold", list), len(record["steps"]))
    record["alternatives"] = alternatives_validate(
        get(obj, "alternatives", dict, nullable=True, required=False), len(record["steps"]))
    return record
