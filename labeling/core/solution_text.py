"""A solution's text read the PRM800K way: its steps, and its final answer after "# Answer" or in \\boxed{}.

Step splitting and answer extraction read the same heading, so a generated solution's last step and its
final answer agree on where the answer starts.
"""
import re

DEFAULT_DELIMITER = "\n\n"
ANSWER_MARK = "# Answer"

_ANSWER_HEADING = re.compile(r"^[ \t]*#[ \t]*Answer[ \t]*$", re.M)
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls but \t \n \r


def split_into_steps(text: str, delimiter: str = DEFAULT_DELIMITER) -> "list[str]":
    """Steps of a solution, PRM800K style: the "# Answer" tail stays on the last step.

    The text before the last "# Answer" line is split on `delimiter`, pieces stripped and empty ones
    dropped; the heading and what follows it are appended to the last step as "\\n\\n# Answer\\n\\nX"
    (just "\\n\\n# Answer" when nothing follows), or form the only step when nothing precedes them.
    """
    if not delimiter:
        raise ValueError("step delimiter must not be empty")
    if not text:
        return []
    headings = list(_ANSWER_HEADING.finditer(text))
    if not headings:
        return _pieces(text, delimiter)
    body, answer = text[:headings[-1].start()], text[headings[-1].end():].strip()
    tail = f"{ANSWER_MARK}\n\n{answer}" if answer else ANSWER_MARK
    steps = _pieces(body, delimiter)
    if not steps:
        return [tail]
    steps[-1] = f"{steps[-1]}\n\n{tail}"
    return steps


def _pieces(text, delimiter):
    return [piece.strip() for piece in text.split(delimiter) if piece.strip()]


def extract_answer(text: str) -> "str | None":
    """The final answer: after the last "# Answer" line, else the last \\boxed{}."""
    if not text:
        return None
    headings = list(_ANSWER_HEADING.finditer(text))
    if headings:
        answer = text[headings[-1].end():].strip()
        if answer:
            return answer
    boxes = list(_BOX.finditer(text))
    return _box_content(text, boxes[-1].end()) if boxes else None


def _box_content(text, pos):
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    if text.startswith("{", pos):
        depth, i = 0, pos
        while i < len(text):
            if text[i] == "\\":
                i += 2  # "\{" and "\}" are not grouping braces
                continue
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                return text[pos + 1:i].strip()
            i += 1
        return None  # unbalanced: a cut-off generation has no answer
    if pos > 0 and text[pos - 1] in " \t":  # "\boxed 5": up to "$" or the line's end
        answer = re.split(r"[$\n]", text[pos:], maxsplit=1)[0].strip()
        return answer or None
    return None


def storable_text(text: str) -> str:
    """`text` as a database can store it: C0 control characters other than tab, newline and carriage
    return dropped, a lone surrogate replaced by U+FFFD (a valid pair becomes its character).

    A sampled text can hold both: PostgreSQL rejects NUL in text and JSON ("\\u0000 cannot be converted
    to text"), and a lone surrogate cannot be encoded as UTF-8, so either would fail a whole chunk.
    """
    text = _CONTROL.sub("", text)
    if any("\ud800" <= c <= "\udfff" for c in text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
