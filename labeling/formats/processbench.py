"""The ProcessBench format (Zheng et al. 2024, `Qwen/ProcessBench`): reading and writing.

A record is `{"id", "generator", "problem", "steps", "final_answer_correct", "label"}`: `steps` a list of
strings, `label` the index of the earliest erroneous step or -1 when every step is correct. The
published files are one JSON list per subset (gsm8k, math, olympiadbench, omnimath); the Hugging Face
export of the same data is JSONL. Both are read here; a JSONL line is located by its line number, a
list element by its index (`[3].steps[1]`). Writing produces a JSON list in ProcessBench's key order, so
a file read and written back is the same data (`json.load` equal).

Every record of a file is checked before any is returned (the import writes all or nothing), and an
`id` may appear once per subset.
"""
import json

from labeling.errors import DataError
from labeling.formats.fields import get, reject_unknown
from labeling.formats.jsonl import MAX_DEPTH, _too_deep, read_jsonl

KEYS = ("id", "generator", "problem", "steps", "final_answer_correct", "label")
SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
MAX_FILE_BYTES = 512 * 1024 * 1024


def parse(obj, *, path=""):
    """One record, checked: a dict with KEYS (`generator` and `final_answer_correct` may be absent)."""
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got {type(obj).__name__}", field=path or None)
    reject_unknown(obj, KEYS, path=path)
    rid = get(obj, "id", (str, int), path=path)
    steps = get(obj, "steps", list, path=path)
    if not steps:
        raise DataError("must hold at least one step", field=f"{path}.steps" if path else "steps")
    for i, step in enumerate(steps):
        if not isinstance(step, str):
            raise DataError(f"must be a string, got {type(step).__name__}",
                            field=f"{path}.steps[{i}]" if path else f"steps[{i}]")
        _storable(step, f"{path}.steps[{i}]" if path else f"steps[{i}]")
    label = get(obj, "label", int, path=path)
    if not -1 <= label < len(steps):
        raise DataError(f"must be -1 or a step index 0..{len(steps) - 1}, got {label}",
                        field=f"{path}.label" if path else "label")
    correct = get(obj, "final_answer_correct", bool, path=path, nullable=True, required=False)
    generator = get(obj, "generator", str, path=path, required=False, default="") or ""
    problem = get(obj, "problem", str, path=path)
    for name, value, longest in (("id", str(rid), 255), ("generator", generator, 200), ("problem", problem, None)):
        _storable(value, f"{path}.{name}" if path else name)
        if longest and len(value) > longest:
            raise DataError(f"is {len(value)} characters, more than {longest}", field=f"{path}.{name}" if path else name)
    return {"id": str(rid), "generator": generator, "problem": problem, "steps": list(steps),
            "final_answer_correct": correct, "label": label}


def _storable(text, where):
    """NUL and lone UTF-16 surrogates (valid JSON escapes) cannot be stored as text."""
    if "\x00" in text:
        raise DataError("contains a NUL character (\\u0000), which the database cannot store", field=where)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"contains a lone UTF-16 surrogate (\\u{ord(text[exc.start]):04x}), which is not text",
                        field=where) from None


def read(path):
    """[(location, record)]: every record of a ProcessBench file, JSON list or JSONL, all checked.

    location is ("line", n) for JSONL and ("index", i) for a list, for the caller's own errors.
    Raises DataError naming the file and the line or element and field of the first bad record.
    """
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith(b"["):
        return _read_list(path)
    records = []
    for number, _text, obj in read_jsonl(path):
        try:
            records.append((("line", number), parse(obj)))
        except DataError as exc:
            raise exc.located(file=path, line=number)
    return records


def _read_list(path):
    import os

    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise DataError(f"file is {size / 1e6:.0f} MB, more than the {MAX_FILE_BYTES // 2**20} MiB limit", file=path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})", file=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg} at column {exc.colno}", file=path, line=exc.lineno) from None
    except RecursionError:
        raise DataError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)", file=path) from None
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of records, got {type(data).__name__}", file=path)
    if not data:
        raise DataError("file is empty: no records found", file=path)
    records = []
    for i, obj in enumerate(data):
        if _too_deep(obj):
            raise DataError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)", file=path, field=f"[{i}]")
        try:
            records.append((("index", i), parse(obj, path=f"[{i}]")))
        except DataError as exc:
            if exc.field is None:
                exc.field = f"[{i}]"
            raise exc.located(file=path)
    return records


def record(*, id, generator, problem, steps, final_answer_correct, label) -> dict:  # noqa: A002 (the format's name)
    """A record in ProcessBench's key order."""
    return {"id": id, "generator": generator, "problem": problem, "steps": list(steps),
            "final_answer_correct": final_answer_correct, "label": label}


def write(records, fh):
    """Write `records` (dicts from `record`) to the text file `fh` as a JSON list, one record per line,
    streamed: memory holds one record at a time."""
    fh.write("[")
    first = True
    for rec in records:
        fh.write("\n" if first else ",\n")
        fh.write(json.dumps(rec, ensure_ascii=False))
        first = False
    fh.write("\n]\n" if not first else "]\n")
