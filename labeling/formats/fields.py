"""Typed field access for validating decoded JSON, with the field's path in every error."""
from labeling.errors import DataError

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "an object",
               float: "a number"}

MISSING = object()


def _describe(value):
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def get(obj, key, kind, *, path="", nullable=False, required=True, default=None):
    """Return obj[key] checked against `kind` (a type or tuple of types); bool is never an int here."""
    name = f"{path}.{key}" if path else key
    if key not in obj:
        if required:
            raise DataError("missing", field=name)
        return default
    value = obj[key]
    if value is None:
        if nullable:
            return None
        raise DataError(f"must be {_expected(kind)}, got null", field=name)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = any(isinstance(value, k) for k in kinds)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    if not ok:
        raise DataError(f"must be {_expected(kind)}, got {_describe(value)}", field=name)
    if isinstance(value, str) and "\x00" in value:
        raise DataError("contains a NUL character (\\u0000), which the database cannot store", field=name)
    return value


def _expected(kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def reject_unknown(obj, allowed, *, path=""):
    for key in obj:
        if key not in allowed:
            name = f"{path}.{key}" if path else key
            raise DataError(f"unknown field (expected one of: {', '.join(allowed)})", field=name)
