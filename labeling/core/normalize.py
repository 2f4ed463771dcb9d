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
those lines. Code for ``fixed=True`` (the corrected mode) is marked as such; its
LaTeX rewriting and unit handling are in :mod:`labeling.core.fixed_mode`.
"""
import re

from pylatexenc.latex2text import LatexNodes2Text

from labeling.core.fixed_mode import bracket_exponents, rewrite_latex_structures

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
    if not (fixed and len(expr) > 2 and expr[0] in _BRACKETS and expr[-1] in _BRACKETS):
        expr = strip_thousands_commas(expr)  # fixed: "(1,000)" is a pair (fixed_text.first_pass reads "(1,000, 2)")
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
