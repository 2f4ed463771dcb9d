"""Final-answer grading: is a solution's answer the ground truth?

``grade_answer(given, ground_truth, mode="prm800k")``

* ``"prm800k"`` reproduces the PRM800K reference grader (openai/prm800k,
  ``grading/grader.py``), right or wrong, so that labels made here agree with
  labels made there: equal after the MATH normalisation, else equal after the
  PRM800K normalisation, else element-wise for tuples and intervals (same
  brackets), where plain fractions must match as written, an integer ground
  truth wants an integer answer, and otherwise sympy must simplify the
  difference to 0 -- not tried for more than two letters or for ``^{``.
* ``"fixed"`` is the same grader with its known mistakes corrected: powers are
  evaluated, ``\\frac{x+1}{2}`` keeps its brackets, ``i`` is the imaginary
  unit, ``\\binom``/``n!``/``\\sqrt{49}`` count, units after a number are
  dropped (unless both sides name different ones), equations compare as
  equations, matrices cell by cell, and ``1 2`` is not ``12``. Its first pass
  (:mod:`labeling.core.fixed_text`, :mod:`labeling.core.fixed_numbers`) reads
  classes of equal answers written differently: Unicode math, words and markup
  around the answer, a variable named in front (``x = 5`` is 5, ``y = 5`` is
  not ``x = 5``), repeating decimals, signed mixed numbers, percent marks.

sympy can take forever (``9^{9^{9^9}}``, nested powers), so it runs in a helper
process (:mod:`labeling.core.sympy_worker`) and a comparison that takes longer
than SYMPY_TIMEOUT_S counts as "not equal". Answers that are equal as strings,
or that the guards rule out, never reach the helper. The normalisations are in
:mod:`labeling.core.normalize` and, for the fixed mode, :mod:`labeling.core.fixed_mode`
(LaTeX structures, units, thousands) after :mod:`labeling.core.fixed_text`.
"""
import re
from fractions import Fraction

from labeling.core import fixed_mode, fixed_text, sympy_worker
from labeling.core import normalize as mn

MODES = ("prm800k", "fixed")
SYMPY_TIMEOUT_S = 2.0  # a comparison that takes longer counts as "not equal"


def grade_answer(given: str, ground_truth: str, mode: str = "prm800k") -> bool:
    if mode not in MODES:
        raise ValueError(f"unknown grading mode {mode!r}; expected one of {MODES}")
    if given is None:
        return False
    try:
        if mode == "fixed":
            return _grade_fixed(given, ground_truth)
        return _grade(given, ground_truth, fixed=False)
    except RecursionError:  # thousands of nested braces: not an answer we can read
        return False


def _grade(given, truth, fixed):
    if mn.mathd_normalize(truth) == mn.mathd_normalize(given):
        return True
    truth, given = mn.prm_normalize(truth, fixed), mn.prm_normalize(given, fixed)
    if truth is None:
        return False
    if truth == given:
        return True
    if not given:
        return False
    truth_parts, given_parts = mn.split_elements(truth, fixed), mn.split_elements(given, fixed)
    if len(truth_parts) > 1 and (truth[0] != given[0] or truth[-1] != given[-1]):
        return False  # "(a,b)" against "[a,b)" or against "a,b"
    if len(truth_parts) != len(given_parts):
        return False
    return all(_elements_equal(t, g, fixed) for t, g in zip(truth_parts, given_parts))


def _elements_equal(truth, given, fixed):
    if mn.is_plain_fraction(truth) and mn.is_plain_fraction(given):
        return truth == given  # an unreduced 2/4 is not 1/2
    if not fixed and mn.str_is_int(truth) != mn.str_is_int(given):
        # The reference wants an integer answer written as one. That is also
        # why it rejects 2^{10} for 1024 and \sqrt{49} for 7; fixed mode lets
        # sympy decide (still with the plain-fraction rule above).
        return False
    if not fixed:
        expr = f"({truth})-({given})"
        return _reference_may_evaluate(expr) and sympy_worker.ask({"mode": "prm800k", "expr": expr},
                                                                  SYMPY_TIMEOUT_S)
    if _DECIMAL.match(truth) and _DECIMAL.match(given):
        return Fraction(truth) == Fraction(given)  # two plain numbers: no need to ask sympy
    truth_py, given_py = _python_text(truth), _python_text(given)
    if truth_py is None or given_py is None or truth_py[1] != given_py[1]:
        return False  # text, or an equation against a non-equation
    return sympy_worker.ask({"mode": "fixed", "truth": truth_py[0], "given": given_py[0],
                             "equation": truth_py[1]}, SYMPY_TIMEOUT_S)


def _reference_may_evaluate(expr):
    # The reference's guards against text and against sympy hanging on powers.
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    if len(letters) > 2 or "^{" in expr or "^(" in expr:
        return False
    return re.search(r"\^[0-9]+\^|\^[0-9][0-9]+", expr) is None


# --------------------------------------------------------------------------
# fixed mode
# --------------------------------------------------------------------------

_DECIMAL = re.compile(r"^-?\d+(?:\.\d+)?$")
_MATRIX = re.compile(r"^\s*\\begin\{([pbB]?matrix)\}(?P<body>.*)\\end\{\1\}\s*$", re.S)


def _grade_fixed(given, truth):
    if truth is None:
        return False
    given, truth = fixed_text.first_pass(given), fixed_text.first_pass(truth)
    (given_name, given_value), (truth_name, truth_value) = fixed_text.split_name(given), fixed_text.split_name(truth)
    if given_name and truth_name and given_name != truth_name:
        if not (fixed_text.has_variable(given_value) or fixed_text.has_variable(truth_value)):
            return False  # "y = 5" is not "x = 5"; "x = (y-3)/2" is the line "y = 2x+3", compared below
    elif "=" not in given_value + truth_value:  # a name is a label: "x = 5" is 5
        given, truth = given_value, truth_value
    given_cells, truth_cells = _matrix_cells(given), _matrix_cells(truth)
    if given_cells is not None and truth_cells is not None:
        # pylatexenc flattens matrices oddly; compare cell by cell instead.
        return [len(r) for r in given_cells] == [len(r) for r in truth_cells] and all(
            grade_answer(g, t, "fixed")
            for g_row, t_row in zip(given_cells, truth_cells) for g, t in zip(g_row, t_row))
    given, given_unit = fixed_mode.fixed_preprocess(given)
    truth, truth_unit = fixed_mode.fixed_preprocess(truth)
    if given_unit and truth_unit and not fixed_mode.same_unit(given_unit, truth_unit):
        return False  # "5 cm" is not "5 m"; one unit alone is just dropped
    return _grade(given, truth, fixed=True)


def _matrix_cells(s):
    found = _MATRIX.match(s)
    if not found:
        return None
    rows = re.split(r"\\\\", found.group("body"))
    if len(rows) > 1 and not rows[-1].strip():
        rows.pop()  # a trailing "\\" before \end
    return [[cell.strip() for cell in row.split("&")] for row in rows]


# Names sympy should see whole; any other run of letters is a product of
# one-letter variables ("xyz" = x*y*z, "pir" = pi*r). Longest first.
_NAMES = sorted(("binomial", "factorial", "arcsin", "arccos", "arctan", "sqrt", "root",
                 "sin", "cos", "tan", "sec", "csc", "cot", "exp", "log", "ln", "pi", "inf"),
                key=len, reverse=True)
_SYMPY_SPELLING = {"inf": "oo", "arcsin": "asin", "arccos": "acos", "arctan": "atan"}


class _LooksLikeText(Exception):
    pass


def _python_text(element):
    """(text for sympy, is_equation), or None where sympy should not be tried."""
    if "_" in element or fixed_mode.NUMBER_GAP in element or re.search("[<>≤≥]", element):
        return None  # base subscripts (1011_2 would read as 10112), two numbers, inequalities
    sides = element.split("=")
    if len(sides) > 2 or not all(sides):
        return None
    text = element if len(sides) == 1 else "(%s)-(%s)" % tuple(sides)
    try:
        text = re.sub(r"[a-z]+", _spell_letters, text)
    except _LooksLikeText:
        return None
    return text.replace("^", "**"), len(sides) == 2


def _spell_letters(match):
    run, tokens, pos = match.group(0), [], 0
    while pos < len(run):
        name = next((n for n in _NAMES if run.startswith(n, pos)), run[pos])
        tokens.append(_SYMPY_SPELLING.get(name, name))
        pos += len(name)
    if len(run) >= 4 and all(len(t) == 1 for t in tokens):
        raise _LooksLikeText(run)  # "east", "neither": words, not products
    return "*".join(tokens)
