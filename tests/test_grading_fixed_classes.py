"""The fixed grading mode on whole classes of equal answers written differently (issue 10).

Each class has pairs that must be equal and pairs that must not be (the false accepts a careless
rule would make), written from the class's definition; where a class has a rule (a repeating
decimal's value, a mixed number's sign, a thousands grouping) answers are also generated from it.
The reference mode is untouched: tests/test_grading.py checks it against the shared data.
Pure functions: no database.
"""
import random
from fractions import Fraction

import pytest

from labeling.core.grading import grade_answer

MINUS, EN_DASH, HYPHEN, FULLWIDTH_MINUS = "\u2212", "\u2013", "\u2010", "\uff0d"
NBSP, THIN, NARROW_NBSP, ZERO_WIDTH = "\u00a0", "\u2009", "\u202f", "\u200b"

EQUAL = {
    "unicode minus": [
        (MINUS + "5", "-5"), (EN_DASH + "5", "-5"), (HYPHEN + "5", "-5"), (FULLWIDTH_MINUS + "7", "-7"),
        (f"x {MINUS} 1", "x-1"), (MINUS + "\\frac{1}{2}", "-\\frac12"), (f"({MINUS}1, 2)", "(-1,2)"),
        (f"2{MINUS}√3", "2-\\sqrt{3}"), (f"5{MINUS}3", "2")],
    "unicode math": [
        ("3×4", "12"), ("2·5", "10"), ("2⋅5", "10"), ("12÷4", "3"), ("√2", "\\sqrt{2}"), ("2√3", "\\sqrt{12}"),
        ("√(x+1)", "\\sqrt{x+1}"), ("∛8", "2"), ("π", "\\pi"), ("2π", "2\\pi"), ("πr²", "\\pi r^2"),
        (f"({MINUS}∞, 3)", "(-\\infty,3)"), ("x²", "x^2"), ("2³", "8"), ("10⁶", "1000000"), ("x⁻¹", "\\frac{1}{x}"),
        ("½", "\\frac12"), ("2½", "\\frac52"), ("¾", "0.75"), ("１２", "12"), ("３.５", "3.5"),
        (f"1{NBSP}000", "1000"), (f"1{THIN}000", "1000"), (f"1{NARROW_NBSP}000", "1000"),
        (f"x{NBSP}+{NBSP}1", "x+1"), (f"1{ZERO_WIDTH}0", "10"), ("x ≤ 3", "x \\le 3"), ("x≥3", "x\\geq 3"),
        ("x ≠ 3", "x \\neq 3"), ("x \\ne 3", "x \\neq 3"), ("±2", "\\pm 2")],
    "units and degree marks": [
        ("30^\\circ", "30"), ("30°", "30"), ("30 °", "30"), ("30 degrees", "30"), ("30^{\\circ}", "30"),
        ("45°", "45^\\circ"), ("30\\text{ cm}^2", "30"), ("5\\mbox{ inches}", "5"), ("\\$5", "5"),
        ("5 dollars", "5"), ("\\$5.00", "5"), ("€5", "5"), ("12 \\text{ square units}", "12"),
        ("12 square feet", "12"), ("12 sq ft", "12"), ("5 \\text{ cm}", "5\\text{ cm}"),
        ("5 inches", "5\\text{ in}"), ("4\\text{ m}^2", "4"), ("6\\,\\text{cm}", "6"), ("6 \\mathrm{cm}", "6"),
        ("7\\text{ hours}", "7"), ("100\\text{ km/h}", "100"), ("12 square feet", "12\\text{ feet}^2")],
    "repeating decimals": [
        ("0.\\overline{3}", "\\frac{1}{3}"), ("0.1\\overline{6}", "\\frac{1}{6}"), ("0.(3)", "\\frac13"),
        ("0.\\bar{3}", "1/3"), ("0.\\dot{6}", "\\frac{2}{3}"), ("0.(142857)", "\\frac{1}{7}"),
        ("0.\\overline{142857}", "\\frac{1}{7}"), ("-0.\\overline{3}", "-\\frac{1}{3}"), ("0.\\overline{9}", "1"),
        ("2.\\overline{5}", "\\frac{23}{9}"), ("0.\\overline{36}", "\\frac{4}{11}"), ("1.\\overline{3}", "\\frac43"),
        ("\\frac{1}{3}", "0.\\overline{3}"), (".\\overline{6}", "\\frac23"), ("0.\\overline3", "\\frac13"),
        ("0.1\\overline{6}", "0.1\\overline{6}")],
    "mixed numbers": [
        ("2\\frac{1}{2}", "\\frac52"), ("2 1/2", "5/2"), ("2\\frac12", "2.5"), ("-2\\frac{1}{2}", "-\\frac{5}{2}"),
        ("-2 1/2", "-2.5"), ("3\\dfrac{3}{4}", "\\frac{15}{4}"), ("1\\tfrac{1}{3}", "4/3"),
        ("2 \\frac{1}{2}", "\\frac{5}{2}"), ("\\frac{5}{2}", "2\\frac{1}{2}"), ("7 3/4", "7.75"),
        ("2\\frac{1}{2}\\text{ inches}", "2.5"), ("2½", "2.5")],
    "percent": [
        ("50\\%", "50"), ("50%", "50"), ("50", "50\\%"), ("50 percent", "50"), ("12.5\\%", "12.5"),
        ("50\\%", "50\\%"), ("50\\text{ percent}", "50"), ("\\frac{100}{3}\\%", "\\frac{100}{3}")],
    "thousands separators": [
        ("1,000", "1000"), ("1{,}000", "1000"), ("1\\,000", "1000"), ("1 000", "1000"), ("1\\ 000", "1000"),
        ("1~000", "1000"), ("1,000,000", "10^6"), ("12,345.67", "12345.67"), ("\\$1,000", "1000"),
        ("(1,000, 2)", "(1000, 2)"), ("1{,}234{,}567", "1234567"), ("1000", "1,000")],
    "words around the answer": [
        ("x = 5", "5"), ("x=5", "5"), ("The answer is 5", "5"), ("The answer is $5$.", "5"),
        ("\\text{The answer is } 5", "5"), ("Answer: 5", "5"), ("The final answer is \\frac{1}{2}", "0.5"),
        ("5 \\text{ (units)}", "5"), ("\\text{B}", "B"), ("(B)", "B"), ("\\textbf{(B)}", "B"),
        ("B", "\\text{(B)}"), ("\\text{(A) is correct}", "\\text{(A)}"), ("\\boxed{5}", "5"),
        ("$\\frac{1}{2}$", "0.5"), ("\\(\\frac{1}{2}\\)", "1/2"), ("x = 1 \\text{ or } x = 2", "1, 2"),
        ("x=1, x=2", "1,2"), ("f(x) = x^2", "x^2"), ("5 is the answer", "5"), ("k = 3", "3"), ("x_1 = 4", "4"),
        ("\\displaystyle\\frac{1}{2}", "1/2"), ("y = 2x+3", "y=2x+3"), ("y = 2x+3", "x = (y-3)/2"),
        ("5.", "5"), ("\\frac{1}{2}.", "\\frac12"), ("\\theta = 30^\\circ", "30"), ("So x is 5", "5")],
    "LaTeX spellings": [
        ("\\dfrac{1}{2}", "\\frac12"), ("\\tfrac{3}{4}", "0.75"), ("\\left( 1, 2 \\right)", "(1,2)"),
        ("0.50", "1/2"), ("\\frac12", "0.5"), ("\\frac{1}{2}", ".5"), ("\\left[ 0, 1 \\right)", "[0,1)"),
        ("12 \\div 4", "3"), ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}"), ("2^{10}", "1024")],
}

DIFFERENT = {
    "unicode minus": [(MINUS + "5", "5"), (f"{MINUS}(x{MINUS}1)", "x-1"), (f"5{MINUS}3", "8"),
                      (MINUS + "½", "\\frac12")],
    "unicode math": [
        ("√2", "2"), ("2³", "6"), ("x²", "2x"), ("½", "2"), ("x ≤ 3", "x \\ge 3"), ("x ≤ 3", "x < 3"),
        ("x ≠ 3", "x = 3"), ("∛8", "\\sqrt{8}"), ("π", "3.14"), (f"1{NBSP}2", "12"), ("3×4", "34"),
        ("x₂", "x2"), ("2½", "1")],
    "units and degree marks": [
        ("5 cm", "5\\text{ m}"), ("30°", "60"), ("30^\\circ", "\\frac{\\pi}{6}"), ("5 dollars", "6"),
        ("\\$5", "50"), ("4 ab", "4"), ("5 \\text{ cm}", "50\\text{ mm}"), ("12 sq ft", "144")],
    "repeating decimals": [
        ("0.\\overline{3}", "0.3"), ("0.\\overline{3}", "0.33"), ("0.\\overline{12}", "\\frac{12}{100}"),
        ("0.\\overline{16}", "\\frac16"), ("0.1\\overline{6}", "\\frac{16}{99}"), ("0.(3)", "(0,3)"),
        ("0.333", "\\frac{1}{3}"), ("0.\\overline{3}", "\\frac{3}{9}")],
    "mixed numbers": [
        ("2\\frac{1}{2}", "1"), ("-2\\frac{1}{2}", "-\\frac{3}{2}"), ("2\\frac{1}{2}", "\\frac{5}{4}"),
        ("21/2", "5/2"), ("2 1/2", "\\frac{21}{2}"), ("x\\frac{1}{2}", "x+\\frac12")],
    "percent": [("50\\%", "0.5"), ("0.5", "50\\%"), ("50\\%", "5"), ("5\\%", "50"), ("50 percent", "0.5")],
    "thousands separators": [
        ("(1,000)", "1000"), ("1,000", "1"), ("1,00", "100"), ("1,0000", "10000"), ("1, 000", "1000"),
        ("1 2", "12"), ("1,2", "12"), ("1,000", "(1,0)"), ("1\\,2", "12")],
    "words around the answer": [
        ("y = 5", "x = 5"), ("The answer is 6", "5"), ("(B)", "C"), ("\\text{B}", "\\text{(C)}"),
        ("x = 1 \\text{ or } y = 2", "1,2"), ("x=1, x=2", "1"), ("x = 5", "x = 6"), ("x > 5", "5"),
        ("x = -5", "5"), ("\\boxed{6}", "5"), ("The answer is not 5", "5"), ("x \\ne 5", "5")],
    "LaTeX spellings": [
        ("\\left( 1, 2 \\right)", "[1,2]"), ("[1,2]", "(1,2)"), ("(1,2)", "(2,1)"), ("\\frac12", "2"),
        ("0.50", "\\frac{1}{5}"), ("(0, 1)", "0.5"), ("[1,2]", "1,2"), ("\\frac{2}{4}", "\\frac{1}{2}")],
}


def _cases(table):
    return [pytest.param(g, t, id=f"{cls}: {g!r} vs {t!r}") for cls, pairs in table.items() for g, t in pairs]


@pytest.mark.parametrize("given, truth", _cases(EQUAL))
def test_equal_when_written_differently(given, truth):
    assert grade_answer(given, truth, mode="fixed") is True


@pytest.mark.parametrize("given, truth", _cases(DIFFERENT))
def test_not_equal(given, truth):
    assert grade_answer(given, truth, mode="fixed") is False


def test_every_class_has_both_kinds():
    assert set(EQUAL) == set(DIFFERENT)
    assert all(len(EQUAL[c]) >= 8 and len(DIFFERENT[c]) >= 4 for c in EQUAL)


# ---------------------------------------------------------------- generated from each class's rule

RNG = random.Random(10)


def _decimal_with_cycle(value):
    """p/q as "i.f\\overline{c}" by long division (the cycle starts where a remainder repeats)."""
    whole, rest = divmod(value.numerator, value.denominator)
    digits, seen = [], {}
    while rest and rest not in seen:
        seen[rest] = len(digits)
        digit, rest = divmod(rest * 10, value.denominator)
        digits.append(str(digit))
    if not rest:
        return None  # terminates: not a repeating decimal
    start = seen[rest]
    return whole, "".join(digits[:start]), "".join(digits[start:])


REPEATING = [v for v in (Fraction(RNG.randint(1, 300), RNG.choice([3, 6, 7, 9, 11, 12, 15, 22, 27, 33, 37]))
                         for _ in range(40)) if v.denominator > 1 and _decimal_with_cycle(v)][:15]


@pytest.mark.parametrize("value", REPEATING, ids=str)
def test_repeating_decimals_by_rule(value):
    whole, fixed, cycle = _decimal_with_cycle(value)
    fraction = "\\frac{%d}{%d}" % (value.numerator, value.denominator)
    for written in (f"{whole}.{fixed}\\overline{{{cycle}}}", f"{whole}.{fixed}({cycle})"):
        assert grade_answer(written, fraction, mode="fixed") is True, written
        assert grade_answer(fraction, written, mode="fixed") is True, written
        cut = f"{whole}.{fixed}{cycle * 2}"  # the same digits, not repeating
        assert grade_answer(cut, fraction, mode="fixed") is False, cut
        assert grade_answer(written, cut, mode="fixed") is False, cut


MIXED = [(sign, RNG.randint(1, 20), num, den) for sign, num, den in
         ((RNG.choice("+-"), *sorted(RNG.sample(range(1, 13), 2))) for _ in range(30))
         if Fraction(num, den).denominator == den][:12]


@pytest.mark.parametrize("sign, whole, num, den", MIXED)
def test_mixed_numbers_by_rule(sign, whole, num, den):
    sign, value = ("-", -(whole + Fraction(num, den))) if sign == "-" else ("", whole + Fraction(num, den))
    misread = Fraction(-whole if sign else whole) + Fraction(num, den)  # the reference's "-2 + 1/2"
    for written in (f"{sign}{whole}\\frac{{{num}}}{{{den}}}", f"{sign}{whole} {num}/{den}",
                    f"{sign}{whole}\\dfrac{{{num}}}{{{den}}}", f"{sign}{whole}\\tfrac{{{num}}}{{{den}}}"):
        for truth in (_frac(value), str(float(value)) if value.denominator in (2, 4, 5, 8, 10) else _frac(value)):
            assert grade_answer(written, truth, mode="fixed") is True, (written, truth)
        if sign:
            assert grade_answer(written, _frac(misread), mode="fixed") is False, written


def _frac(value):
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


THOUSANDS = [RNG.randint(1000, 99_999_999) for _ in range(10)]
SEPARATORS = [",", "{,}", "\\,", " ", "\\ ", "~", NBSP, THIN, NARROW_NBSP]


def _grouped(n, separator):
    text = f"{n:,}"
    return text.replace(",", separator)


@pytest.mark.parametrize("n", THOUSANDS)
def test_thousands_separators_by_rule(n):
    for separator in SEPARATORS:
        assert grade_answer(_grouped(n, separator), str(n), mode="fixed") is True, (n, separator)
        assert grade_answer(MINUS + _grouped(n, separator), f"-{n}", mode="fixed") is True, (n, separator)
        assert grade_answer(_grouped(n, separator), str(n + 1), mode="fixed") is False, (n, separator)
    assert grade_answer(f"({n:,})", str(n), mode="fixed") is False  # a tuple, not a number


@pytest.mark.parametrize("n", [3, 12, 250, 7.5])
def test_units_and_marks_by_rule(n):
    forms = [f"{n}^\\circ", f"{n}°", f"{n} degrees", f"{n}\\text{{ cm}}", f"{n}\\text{{ cm}}^2",
             f"{n}\\mbox{{ inches}}", f"\\${n}", f"{n} dollars", f"{n}\\%", f"{n} percent",
             f"x = {n}", f"The answer is {n}", f"\\boxed{{{n}}}", f"${n}$", f"{n} \\text{{ (units)}}"]
    for written in forms:
        assert grade_answer(written, str(n), mode="fixed") is True, written
        assert grade_answer(written, str(n * 2), mode="fixed") is False, written


def test_reference_mode_keeps_its_quirks_on_these_classes():
    # prm800k mode stays the reference grader: the classes above are fixed-mode corrections only.
    assert grade_answer("2^{10}", "1024", mode="prm800k") is False
    assert grade_answer("-2\\frac{1}{2}", "-\\frac{3}{2}", mode="prm800k") is True
    assert grade_answer("0.\\overline{3}", "0.3", mode="prm800k") is True
