"""Streaming JSONL reading with located errors and bounded memory."""
import json
import re

from labeling.errors import DataError

# A PRM800K line is a few KB; anything near this is not a record but an accident or an attack.
MAX_LINE_BYTES = 8 * 1024 * 1024
# A PRM800K record nests 6 deep. Deeper input is refused here, located, before it can exhaust the
# recursion limit of the parser or of anything that walks the record later (validation, storage).
MAX_DEPTH = 64
_TOO_DEEP = object()
# JSON escapes of what no database row can hold: NUL (PostgreSQL refuses it in text and JSON) and UTF-16
# surrogates, which are fine in a pair and unencodable alone. A cheap scan of the raw line; only a line that
# has one is walked to find the field (and whether a surrogate is really alone).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def read_jsonl(path, *, max_line_bytes=MAX_LINE_BYTES):
    """Yield (line_number, raw_line_without_newline, parsed_object) for each non-blank line.

    Raises DataError naming file and line for undecodable bytes, oversized lines, invalid JSON and
    JSON nested deeper than MAX_DEPTH, and for a file with no records at all.
    """
    seen_any = False
    with open(path, "rb") as fh:
        number = 0
        while True:
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                break
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                size = len(raw) + _drain_line(fh)
                raise DataError(
                    f"line is {size / 1e6:.1f} MB, longer than the {max_line_bytes // (1024 * 1024)} MiB limit",
                    file=path, line=number)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                                file=path, line=number) from None
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg} at column {exc.colno}", file=path, line=number) from None
            except RecursionError:
                obj = _TOO_DEEP
            if obj is _TOO_DEEP or _too_deep(obj):
                raise DataError(f"JSON nested too deeply (more than {MAX_DEPTH} levels)", file=path, line=number)
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, got {type(obj).__name__}", file=path, line=number)
            if _SUSPECT_ESCAPE.search(text):
                _refuse_unstorable(obj, path=path, line=number)
            seen_any = True
            yield number, text, obj
    if not seen_any:
        raise DataError("file is empty: no records found", file=path)


def parse_lines(path, parse):
    """Yield (line_number, raw_line, parse(obj)) for each record of read_jsonl(path); a DataError that
    `parse` raises is located at its file and line."""
    for number, text, obj in read_jsonl(path):
        try:
            record = parse(obj)
        except DataError as exc:
            raise exc.located(file=path, line=number)
        yield number, text, record


def _drain_line(fh, chunk=1 << 20):
    """Skip the rest of an oversized line without holding it; return how many bytes it had."""
    total = 0
    while True:
        part = fh.readline(chunk)
        total += len(part)
        if not part or part.endswith(b"\n"):
            return total


def _too_deep(obj) -> bool:
    """Whether `obj` nests containers more than MAX_DEPTH deep (walked without recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


def _refuse_unstorable(obj, *, path, line):
    """Raise a located DataError at the first string (key or value) holding NUL or a lone surrogate."""
    stack = [(obj, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key in reversed(list(value)):
                name = f"{where}.{key}" if where else str(key)
                _check_string(key, name, path=path, line=line)
                stack.append((value[key], name))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            _check_string(value, where, path=path, line=line)


def _check_string(text, where, *, path, line):
    if "\x00" in text:
        raise DataError("contains a NUL character (\\u0000), which cannot be stored", file=path, line=line,
                        field=where)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"contains a lone UTF-16 surrogate (\\u{ord(text[exc.start]):04x}) at character "
                        f"{exc.start + 1}, which is not text", file=path, line=line, field=where) from None
