"""The corrected ("fixed") grading mode's own preprocessing, used by :mod:`labeling.core.normalize`
and :mod:`labeling.core.grading`; the reference mode never runs any of it.

* :func:`rewrite_latex_structures` and :func:`bracket_exponents` spell out LaTeX structures with
  explicit brackets before pylatexenc turns LaTeX into text.
* :func:`fixed_preprocess` and :func:`same_unit` handle spacing and units before any normalisation.
"""
import re

# --------------------------------------------------------------------------
# fixed mode: LaTeX structures written out with explicit brackets
# --------------------------------------------------------------------------
# pylatexenc prints \frac{x+1}{2} as "x+1/2" and \binom{7}{1} as "71", and drops
# the index of \sqrt[3]{..}; that is where most of the reference's false
# accepts and rejects come from. We spell these out before pylatexenc runs.

_FUNCTIONS = ("arcsin", "arccos", "arctan", "sin", "cos", "tan", "sec", "csc", "cot",
              "ln", "log", "exp")
_COMMAND = re.compile(r"\\([A-Za-z]+)")
_NUMBER = re.compile(r"\d+\.?\d*")
_SIMPLE_OPERAND = re.compile(r"^\s*-?(\d+\.?\d*|\.\d+|[A-Za-z]|\\[A-Za-z]+)\s*$")


def rewrite_latex_structures(s):
    out, pos = [], 0
    while pos < len(s):
        cmd = _COMMAND.match(s, pos)
        if not cmd:
            out.append(s[pos])
            pos += 1
            continue
        name, pos = cmd.group(1), cmd.end()
        if name in ("frac", "dfrac", "tfrac"):
            num, pos = _argument(s, pos)
            den, pos = _argument(s, pos)
            out.append(" %s/%s" % (_operand(num), _operand(den)))
        elif name in ("binom", "dbinom", "tbinom"):
            top, pos = _argument(s, pos)
            bottom, pos = _argument(s, pos)
            out.append(_call(out, "binomial(%s,%s)" % (_plain(top), _plain(bottom))))
        elif name == "sqrt":
            index = None
            if s.startswith("[", pos):
                close = s.find("]", pos)
                if close < 0:
                    raise ValueError("unclosed \\sqrt[")
                index, pos = s[pos + 1:close], close + 1
            body, pos = _argument(s, pos)
            text = "sqrt(%s)" % _plain(body) if index is None else \
                "root(%s,%s)" % (_plain(body), _plain(index))
            out.append(_call(out, text))
        elif name in _FUNCTIONS:
            text, pos = _function_application(name, s, pos)
            out.append(_call(out, text))
        else:
            out.append(cmd.group(0))
    return "".join(out)


def bracket_exponents(s):
    """fixed mode: x^{1/2} -> x^(1/2); simple exponents (2^{10}) just lose the braces."""
    out, pos = [], 0
    while True:
        hat = s.find("^{", pos)
        if hat < 0:
            return "".join(out) + s[pos:]
        try:
            group, end = _argument(s, hat + 1)
        except ValueError:
            return "".join(out) + s[pos:]
        group = bracket_exponents(group)
        out.append(s[pos:hat] + ("^" + group if _SIMPLE_OPERAND.match(group) else "^(%s)" % group))
        pos = end


def _argument(s, pos):
    """One macro argument at pos: a {group}, a \\command or a single character."""
    while pos < len(s) and s[pos] == " ":
        pos += 1
    if pos >= len(s):
        raise ValueError("missing argument")
    if s[pos] == "{":
        depth = 0
        for end in range(pos, len(s)):
            depth += {"{": 1, "}": -1}.get(s[end], 0)
            if depth == 0:
                return s[pos + 1:end], end + 1
        raise ValueError("unbalanced braces")
    cmd = _COMMAND.match(s, pos)
    if cmd:
        return cmd.group(0), cmd.end()
    return s[pos], pos + 1


def _function_application(name, s, pos):
    """\\sin^2 x -> sin(x)^2, \\ln 2 -> ln(2), \\log_2 8 -> log(8,2)."""
    base = power = None
    while pos < len(s) and s[pos] in "_^":
        mark = s[pos]
        value, pos = _argument(s, pos + 1)
        if mark == "_":
            base = value
        else:
            power = value
    while pos < len(s) and s[pos] == " ":
        pos += 1
    number = _NUMBER.match(s, pos)
    if s.startswith("(", pos):
        close = _closing_paren(s, pos)
        arg, pos = s[pos + 1:close], close + 1
    elif s.startswith("\\left(", pos):
        arg = None  # \left( ... \right): left to pylatexenc, as bracketed text
    elif number:
        arg, pos = number.group(0), number.end()
    else:
        arg, pos = _argument(s, pos)
    if name == "log" and base is not None and arg is not None:
        text = "log(%s,%s)" % (_plain(arg), _plain(base))
    else:
        text = name if arg is None else "%s(%s)" % (name, _plain(arg))
    if power is not None:
        if arg is None:
            raise ValueError("power of a bracketed function argument")
        text = "%s^(%s)" % (text, _plain(power))
    return text, pos


def _closing_paren(s, pos):
    depth = 0
    for end in range(pos, len(s)):
        depth += {"(": 1, ")": -1}.get(s[end], 0)
        if depth == 0:
            return end
    raise ValueError("unbalanced parentheses")


def _plain(latex):
    return rewrite_latex_structures(latex).strip()


def _operand(latex):
    text = _plain(latex)
    return text if _SIMPLE_OPERAND.match(text) else "(%s)" % text


def _call(out, text):
    # "i\sqrt{2}" must not turn into the name "isqrt": make the product explicit;
    # after "\cdot" or "\pi" a space ends the command name instead.
    previous = out[-1] if out else ""
    if previous.startswith("\\"):
        return " " + text
    if previous[-1:].isalnum() or previous[-1:] in (")", "!"):
        return "*" + text
    return text


# --------------------------------------------------------------------------
# fixed mode: spacing and units before any normalisation
# --------------------------------------------------------------------------

# "40\,000", "40{,}000", "40~000": thousands separators, not products.
_SPACED_THOUSANDS = re.compile(r"(?<=\d)(?:\\,|\\ |\\;|~|\{,\})(?=\d{3}(?!\d))")
# A digit, blanks, a digit: "1 2" is two numbers, unless it is a thousands
# grouping ("1 000 000") or a mixed number ("7 3/4").
_DIGIT_GAP = re.compile(r"(?<=\d)\s+(?=\d)")
_GROUPED_NUMBER = re.compile(r"^\s*[-+]?\d{1,3}(?: \d{3})+(?:\.\d+)?\s*$")
_MIXED_NUMBER_AHEAD = re.compile(r"\d+\s*/\s*\d+")
# Marks a gap between two numbers; no pass removes it and sympy cannot parse it.
NUMBER_GAP = "\u2423"

_TEXT_COMMANDS = re.compile(r"\\(?:mbox|textrm|mathrm|textnormal)\{")
_TEXT_UNIT = re.compile(r"^(?P<value>.*?\S)\s*\\text\{\s*(?P<unit>[^{}]*?)\s*\}\s*(?:\^\{?\d\}?)?\s*$")
_WORD_UNIT = re.compile(r"^(?P<value>\s*[-+]?(?:\\\$|\$)?\s*\d[\d,]*(?:\.\d+)?)\s+"
                        r"(?P<unit>[A-Za-z]{2,}\.?(?:\s+[A-Za-z]{2,}\.?){0,2}(?:/[A-Za-z]{1,3})?)"
                        r"(?:\s*\^\{?\d\}?)?\s*$")
_NOT_UNITS = {"million", "billion", "trillion", "thousand", "hundred", "pi", "and", "or",
              "inf", "infty", "sqrt", "mod", "percent", "sin", "cos", "tan", "log", "ln", "exp", "not"}
# A two-letter word after a number is a unit only when it is a known one ("4 ab" is a product).
_SHORT_UNITS = {"cm", "mm", "km", "ft", "in", "yd", "mi", "oz", "lb", "kg", "mg", "ml", "hr", "hz", "kw", "gb",
                "mb", "kb", "sq", "cu", "mph", "am", "pm"}
_QUALIFIERS = {"square", "sq", "cubic", "cu", "sq.", "cu."}
_IRREGULAR_UNITS = {"feet": "foot", "ft": "foot", "in": "inch", "hrs": "hour", "hr": "hour",
                    "mins": "minute", "min": "minute", "secs": "second", "sec": "second"}


def fixed_preprocess(answer):
    """(answer without a trailing unit, the unit or None), for the fixed mode."""
    answer = _TEXT_COMMANDS.sub("\\\\text{", answer.strip())
    answer = _SPACED_THOUSANDS.sub("", answer)
    answer, unit = _split_unit(answer)
    if not _GROUPED_NUMBER.match(answer):
        answer = _mark_number_gaps(answer)
    return answer, unit


def _split_unit(answer):
    for pattern in (_TEXT_UNIT, _WORD_UNIT):
        found = pattern.match(answer)
        if not found:
            continue
        unit = found.group("unit").strip().lower().rstrip(".")
        if not unit or unit in _NOT_UNITS or not re.search("[a-z]", unit):
            continue
        if pattern is _WORD_UNIT and any(w in _NOT_UNITS or (len(w) == 2 and w not in _SHORT_UNITS)
                                         for w in unit.split()):
            continue
        if pattern is _TEXT_UNIT and re.search(r"\d", found.group("value")) is None:
            continue  # "x \text{ or } y" or a bare word: no number before the unit
        return found.group("value").strip(), unit
    return answer, None


def _mark_number_gaps(answer):
    def gap(match):
        start = match.start()
        while start > 0 and answer[start - 1].isdigit():
            start -= 1
        if answer[start - 1:start] in ("_", "^"):  # "\log_2 8": the digit is an index
            return match.group(0)
        mixed = _MIXED_NUMBER_AHEAD.match(answer, match.end())
        return match.group(0) if mixed else NUMBER_GAP
    return _DIGIT_GAP.sub(gap, answer)


def same_unit(a, b):
    """Loose equality of unit names: 'inches'/'inch', 'ft'/'feet'."""
    def forms(unit):
        words = re.sub(r"\s+", " ", unit.strip("() ")).split(" ")
        unit = " ".join(w for w in words if w not in _QUALIFIERS) or " ".join(words)  # "square feet": feet
        stems = {unit, unit[:-1] if unit.endswith("s") else unit,
                 unit[:-2] if unit.endswith("es") else unit}
        return {_IRREGULAR_UNITS.get(stem, stem) for stem in stems}
    return bool(forms(a) & forms(b))
