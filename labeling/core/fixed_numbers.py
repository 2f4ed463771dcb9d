"""The fixed grading mode's numbers written differently: repeating decimals, mixed numbers, percent.

* Repeating decimals are exact fractions: ``0.\\overline{3}``, ``0.\\bar{3}``, ``0.\\dot{3}``,
  ``0.(3)`` and ``0.1\\overline{6}`` become ``\\frac{1}{3}`` and ``\\frac{1}{6}`` (reduced; an
  integer when the value is one: ``0.\\overline{9}`` is 1). ``0.333...`` is not read as 1/3:
  how many digits repeat is a guess.
* A mixed number (a whole number, then a proper fraction of integers: ``2\\frac{1}{2}``,
  ``2\\frac12``, ``2 1/2``) is one number, its sign included: ``-2\\frac{1}{2}`` is -5/2, where
  the reference reads -2 + 1/2. An improper fraction after a number (``2\\frac{3}{2}``) is left
  as it is written.
* Percent: ``%``, ``\\%``, "percent" and "per cent" after a number are a unit mark. The number is
  compared as written, as PRM800K's ground truths omit the sign: ``50\\%`` is ``50``, never ``0.5``
  (whichever side has the sign). Conservative on purpose: a problem whose answer is 0.5 asked for a
  decimal or a probability.
"""
import re
from fractions import Fraction

_REPEATING = re.compile(
    r"(?<![\d.])(?P<sign>-?)(?P<whole>\d*)\.(?P<fixed>\d*)"
    r"(?:\\(?:overline|bar|dot|overset\{\\cdot\})\s*(?:\{(?P<braced>\d+)\}|(?P<one>\d))|\((?P<paren>\d+)\))")
_FRACTION = r"(?:\\[dt]?frac\s*(?:\{\s*(?P<n1>\d+)\s*\}\s*\{\s*(?P<d1>\d+)\s*\}|(?P<n2>\d)(?P<d2>\d))" \
            r"|(?P<n3>\d+)\s*/\s*(?P<d3>\d+)(?![\d.]))"
_MIXED = re.compile(r"(?<![\w.^_}\\)])(?P<sign>[-+]?)\s*(?P<whole>\d+)(?:\s+|\s*(?=\\))" + _FRACTION)
_PERCENT_WORD = re.compile(r"(?<=\d)\s*(?:\\text\{\s*(?:percent|per cent)\s*\}|\\?%|percent\b|per cent\b)",
                           re.I)


def repeating_to_fractions(s):
    return _REPEATING.sub(_repeating_fraction, s)


def _repeating_fraction(found):
    whole, fixed = found.group("whole") or "0", found.group("fixed")
    cycle = found.group("braced") or found.group("one") or found.group("paren")
    # x = whole.fixed(cycle): x = whole + (fixed + cycle/(10^len(cycle) - 1)) / 10^len(fixed)
    value = Fraction(int(fixed or 0), 1) + Fraction(int(cycle), 10 ** len(cycle) - 1)
    value = int(whole) + value / 10 ** len(fixed)
    if found.group("sign"):
        value = -value
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return "%s\\frac{%d}{%d}" % (sign, abs(value.numerator), value.denominator)


def mixed_to_fractions(s):
    return _MIXED.sub(_improper, s)


def _improper(found):
    num = next(found.group(k) for k in ("n1", "n2", "n3") if found.group(k) is not None)
    den = next(found.group(k) for k in ("d1", "d2", "d3") if found.group(k) is not None)
    whole, num, den = int(found.group("whole")), int(num), int(den)
    if not 0 < num < den:
        return found.group(0)  # "2\frac{3}{2}", "1 0/5": not a mixed number
    sign = found.group("sign").strip()
    return " %s\\frac{%d}{%d}" % (sign, whole * den + num, den)


def drop_percent(s):
    return _PERCENT_WORD.sub("", s)
