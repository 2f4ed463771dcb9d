"""The problem line format (MATH-style JSONL): one decoded line validated into a problem record."""
import re

from labeling.errors import DataError
from labeling.formats.fields import get, reject_unknown

KEYS = ("problem", "solution", "answer", "subject", "level", "unique_id")
# Hendrycks' MATH writes "Level 3"; MATH-500 writes 3. "Level ?" exists in MATH too.
LEVEL = re.compile(r"^(?:Level\s*)?([1-5?])$")


def parse_problem(obj):
    reject_unknown(obj, KEYS)
    level = get(obj, "level", (int, str), nullable=True, required=False)
    if level is not None:
        match = LEVEL.match(str(level).strip())
        if not match:
            raise DataError(f"must be 1..5 or 'Level N', got {level!r}", field="level")
        level = None if match.group(1) == "?" else int(match.group(1))
    return {
        "text": get(obj, "problem", str),
        "solution": get(obj, "solution", str, nullable=True, required=False),
        "answer": get(obj, "answer", str, nullable=True, required=False),
        "subject": get(obj, "subject", str, nullable=True, required=False) or "",
        "level": level,
        "source_id": get(obj, "unique_id", str, nullable=True, required=False),
    }
