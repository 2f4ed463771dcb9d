"""Checks on what an annotator sends (drafts, texts): what PostgreSQL can store, within size limits."""
import json
import math

from labeling.errors import InvalidInput, TooLarge

DRAFT_MAX_BYTES = 64 * 1024
DRAFT_MAX_DEPTH = 32


def draft_validate(draft) -> dict:
    """A draft is any JSON object that PostgreSQL's jsonb can hold, up to DRAFT_MAX_BYTES."""
    if not isinstance(draft, dict):
        raise InvalidInput(f"a draft must be a JSON object, got {_json_type(draft)}", field="draft")
    _json_check(draft, "draft", 0)
    size = len(json.dumps(draft, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > DRAFT_MAX_BYTES:
        raise TooLarge(f"a draft may hold {DRAFT_MAX_BYTES} bytes of JSON, this one {size}", field="draft")
    return draft


def _json_type(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _json_check(value, path, depth):
    if depth > DRAFT_MAX_DEPTH:
        raise InvalidInput(f"nested deeper than {DRAFT_MAX_DEPTH} levels", field=path)
    if isinstance(value, str):
        text_check(value, path)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("NaN and infinities are not JSON", field=path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput("object keys must be strings", field=path)
            text_check(key, path)
            _json_check(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _json_check(item, f"{path}[{i}]", depth + 1)


def text_check(text, path):
    """PostgreSQL stores neither NUL characters nor lone surrogates (text and jsonb alike)."""
    if "\x00" in text:
        raise InvalidInput("NUL characters are not allowed", field=path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("not valid Unicode (a lone surrogate)", field=path) from None
