"""String normalisation of final answers, used by :mod:`labeling.core.grading`.

Two passes, applied one after the other by the grader:

* :func:`mathd_normalize` -- the Hendrycks MATH convention: unwrap ``\\text{}``,
  drop ``\\left``/``\\right``, degrees, dollars, percent, units after
  ``\\text{ ``, a short ``x=`` prefix and spaces; brace ``\\sqrt3``/``\\frac12``.
* :func:`prm_normalize` -- the PRM800K second pass: a list of unit words,
  million/billion, LaTeX to plain text with pylatexenc, mixed numbers,
  lower case.

By default both reproduce the PRM800K reference grader exactly, odd corners
included, because labels made here are compared with labels made by that
grader. Where the reference behaves oddly the comment says so; do not "tidy"
those lines. Code for ``fixed=True`` (the corrected mode) is marked as such.
"""
import re

from pylatexenc.latex2text import LatexNodes2Text

# --------------------------------------------------------------------------
# Pass 1: Hendrycks MATH normalisation
# --------------------------------------------------------------------------

# The whole answer is one \text{...}. Non-greedy but anchored, so the body is
# everything up to the last "}" (also for "\text{a} + \text{b}": a quirk).
_TEXT_ENVELOPE = re.compile(r"^\\text\{(?P<body>.+?)\}$")


class _GiveUp(Exception):
    """The MATH normaliser hit input it cannot handle; the answer is kept as is."""


def mathd_normalize(answer):
    if answer is None:
        return None
    answer = answer.strip()
    envelope = _TEXT_ENVELOPE.search(answer)
    if envelope:
        answer = envelope.group("body").strip()
    try:
        return _mathd_pass(answer)
    except _GiveUp:
        return answer


def _mathd_pass(s):
    s = s.replace("\n", "").replace("\\!", "")
    s = s.replace("\\\\", "\\")  # also turns matrix row breaks into "\"
    # No backslash here, so "\dfrac" becomes "\frac" and "tfrac" becomes "frac".
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    s = _cut_text_unit(s)
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "k = 5", "y=2x+3"
        s = sides[1]
    s = _brace_sqrt_argument(s)
    s = s.replace(" ", "")
    s = _brace_frac_arguments(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _integer_slash_to_frac(s)


def _cut_text_unit(s):
    # "\text{ " (with the space) is taken to start a unit; more than one is
    # more than the convention expects, and the whole pass gives up.
    if "\\text{ " not in s:
        return s
    parts = s.split("\\text{ ")
    if len(parts) != 2:
        raise _GiveUp
    return parts[0]


def _brace_sqrt_argument(s):
    """\\sqrt3 -> \\sqrt{3}: only the one character after \\sqrt is taken."""
    pieces = s.split("\\sqrt")
    out = [pieces[0]]
    for piece in pieces[1:]:
        if not piece:  # "\sqrt" at the very end, or twice in a row
            raise _GiveUp
        if piece[0] == "{":
            out.append("\\sqrt" + piece)
        else:
            out.append("\\sqrt{" + piece[0] + "}" + piece[1:])
    return "".join(out)


def _brace_frac_arguments(s):
    """\\frac12 -> \\frac{1}{2}, \\frac1{72} -> \\frac{1}{72} (one character each)."""
    pieces = s.split("\\frac")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise _GiveUp
        if piece[0] == "{":
            out += "\\frac" + piece
        elif len(piece) < 2:
            return s  # leaves the whole string alone, earlier fixes included
        elif piece[1] == "{":
            out += "\\frac{" + piece[0] + "}" + piece[1:]
        else:
            out += "\\frac{" + piece[0] + "}{" + piece[1] + "}" + piece[2:]
    return out


def _integer_slash_to_frac(s):
    """'3/4' -> '\\frac{3}{4}', only when both sides are plainly written integers."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        num, den = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    if f"{num}/{den}" != s:
        return s
    return "\\frac{%d}{%d}" % (num, den)


# --------------------------------------------------------------------------
# Pass 2: the PRM800K normalisation
# --------------------------------------------------------------------------

# Removed one word after the other, anywhere in the string (so "Tuesday"
# loses its "day" and "centimeters" goes whole); the order matters.
_UNIT_WORDS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour",
               "day", "week", "month", "year", "foot", "feet", "inch", "yard")
_UNIT_PATTERNS = [re.compile(word + r"(es)?(s)? *(\^[0-9]+)?") for word in _UNIT_WORDS]
_DEGREE_MARK = re.compile(r"\^ *\\circ")
_COMMA_THIN_SPACE = re.compile(r",\\! *")
_MIXED_NUMBER = re.compile(r"([0-9]) +([0-9])")  # "7 3/4" -> "7+3/4"; also "1 2" -> "1+2"
_THOUSANDS_COMMA = re.compile(r"(\d),(\d{3})($|\D)")
# What pylatexenc prints for some symbols, spelt the way sympy reads them.
_GLYPHS = (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*"))


def prm_normalize(expr, fixed=False):
    if expr is None:
        return None
    envelope = _TEXT_ENVELOPE.search(expr)
    if envelope:
        expr = envelope.group("body")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for pattern in _UNIT_PATTERNS:
        expr = pattern.sub("", expr)
    expr = _DEGREE_MARK.sub("", expr)
    if expr and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = _COMMA_THIN_SPACE.sub("", expr)
    if _float_or_none(expr) is not None and _near_integer(float(expr)):
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        try:
            expr = latex_to_plain(expr, fixed)
        except Exception:  # pylatexenc or our rewriting choked: keep the LaTeX
            pass
    expr = re.sub("- *", "-", expr)  # "- 7" -> "-7" before mixed numbers
    expr = _MIXED_NUMBER.sub(r"\1+\2", expr)
    if fixed:  # the braces go next; "x^{1/2}" must not become "x^1/2"
        expr = bracket_exponents(expr)
    expr = expr.replace(" ", "").replace("{", "").replace("}", "")
    expr = expr.lower()
    if str_is_int(expr):
        expr = str(_str_to_int(expr))
    return expr


def latex_to_plain(expr, fixed=False):
    if fixed:
        expr = rewrite_latex_structures(expr)
    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac")
    # The leading space keeps "4\frac{2}{3}" a mixed number ("4 2/3").
    expr = expr.replace("\\frac", " \\frac")
    expr = LatexNodes2Text().latex_to_text(expr)
    for glyph, word in _GLYPHS:
        expr = expr.replace(glyph, word)
    return expr.strip()


def _float_or_none(s):
    try:
        return float(s)  # accepts "1e3", "inf", "1_000" and surrounding spaces
    except ValueError:
        return None


def _near_integer(x):
    try:
        return abs(x - int(round(x))) <= 1e-7
    except (OverflowError, ValueError):  # inf, nan
        return False


def strip_thousands_commas(expr):
    """'1,234,567' -> '1234567', leaving the commas of '(1,2)' alone."""
    while True:
        shorter = _THOUSANDS_COMMA.sub(r"\1\2\3", expr)
        if shorter == expr:
            return expr
        expr = shorter


def str_is_int(s):
    value = _float_or_none(strip_thousands_commas(s))
    return value is not None and _near_integer(value)


def _str_to_int(s):
    # Truncates: "4.99999999" passes the 1e-7 test above and becomes "4".
    return int(float(s.replace(",", "")))


# Both sides are plain fractions: then they must match as written, so that an
# unreduced 2/4 is not accepted for 1/2. The "." wildcards are the reference's.
_PLAIN_FRACTION = re.compile(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$")


def is_plain_fraction(s):
    return bool(_PLAIN_FRACTION.search(s))


_BRACKETS = "()[]"


def split_elements(expr, fixed=False):
    """Elements of a tuple or interval '(a,b]'; anything else is one element."""
    expr = strip_thousands_commas(expr)
    if not expr:
        return []
    if len(expr) > 2 and expr[0] in _BRACKETS and expr[-1] in _BRACKETS:
        inner = expr[1:-1]
        if not any(ch in inner for ch in _BRACKETS):
            return [part.strip() for part in inner.split(",")]
        if fixed:  # fixed: "(\sqrt(2), (1)/2)" has brackets inside but still splits
            parts = _split_top_level(inner)
            if parts is not None:
                return parts
    return [expr]


def _split_top_level(inner):
    parts, depth, start = [], 0, 0
    for pos, ch in enumerate(inner):
        depth += (ch in "([") - (ch in ")]")
        if depth < 0:
            return None  # "(a,b)U(c,d)": the outer brackets are not a pair
        if ch == "," and depth == 0:
            parts.append(inner[start:pos].strip())
            start = pos + 1
    if depth != 0:
        return None
    parts.append(inner[start:].strip())
    return parts


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
                        r"(?P<unit>[A-Za-z]{2,}\.?)(?:\s*\^\{?\d\}?)?\s*$")
_NOT_UNITS = {"million", "billion", "trillion", "thousand", "hundred", "pi", "and", "or",
              "inf", "infty", "sqrt", "mod", "percent"}
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
        unit = re.sub(r"\s+", " ", unit.strip("() "))
        stems = {unit, unit[:-1] if unit.endswith("s") else unit,
                 unit[:-2] if unit.endswith("es") else unit}
        return {_IRREGULAR_UNITS.get(stem, stem) for stem in stems}
    return bool(forms(a) & forms(b))
