"""labeling.core.grading: agreement with the PRM800K reference grader, the fixed mode, answer
extraction (labeling.core.solution_text), and time limits (labeling.core.sympy_worker). Pure
functions: no database, no Django."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from labeling.core import grading, sympy_worker
from labeling.core.grading import grade_answer
from labeling.core.solution_text import extract_answer

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXTRA_PAIRS = Path(__file__).resolve().parent / "data" / "grader_extra_pairs.jsonl"
THRESHOLD = 99.5


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _shared(name):
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"shared reference data not found: {path}")
    return _rows(path)


def _agreement(rows, mode, key, label, show=20):
    misses = [r for r in rows if grade_answer(r["given"], r["ground_truth"], mode) != r[key]]
    agree, total = len(rows) - len(misses), len(rows)
    pct = 100.0 * agree / total
    print(f"\n{label}: {agree}/{total} = {pct:.2f}%")
    for r in misses[:show]:
        print(f"  disagrees: {r['given']!r} vs {r['ground_truth']!r} (wanted {r[key]})")
    return pct


def _pair(row):
    return row["given"], row["ground_truth"]


# ---------------------------------------------------------------- reference mode

def test_reference_vectors():
    rows = _shared("grader_vectors.jsonl")
    start = time.perf_counter()
    pct = _agreement(rows, "prm800k", "expected", "agreement with reference (vectors)")
    print(f"graded {len(rows)} vectors in {time.perf_counter() - start:.2f}s")
    assert pct >= THRESHOLD


def test_reference_extra_pairs():
    # Our own pairs, labelled by running the reference grader itself.
    rows = _rows(EXTRA_PAIRS)
    assert len(rows) >= 200
    assert _agreement(rows, "prm800k", "expected", "agreement with reference (extra pairs)") >= THRESHOLD


def test_reference_known_errors_are_reproduced():
    rows = _shared("grader_known_errors.jsonl")
    assert _agreement(rows, "prm800k", "reference", "reference quirks reproduced") >= THRESHOLD


def test_unknown_mode_raises():
    with pytest.raises(ValueError):
        grade_answer("1", "1", mode="lenient")


def test_none_given_is_wrong():
    assert grade_answer(None, "5") is False
    assert grade_answer("5", None, mode="fixed") is False


# ---------------------------------------------------------------- fixed mode

def test_fixed_mode_known_errors():
    rows = _shared("grader_known_errors.jsonl")
    assert _agreement(rows, "fixed", "correct", "fixed mode right on known errors") >= 90.0


# Vectors where the reference is wrong though grader_known_errors.jsonl does not list them: a
# variable named in front of the answer (issue 10, "words around the answer"). Fixed mode
# overrules the reference on exactly these, on purpose.
REFERENCE_WRONG_UNLISTED = {("x=1, x=2", "1, 2"), ("x = 1 \\text{ or } x = 2", "1,2"), ("f(x)=x^2", "x^2"),
                            ("f^{-1}(x) = \\frac{x-3}{2}", "\\frac{x-3}{2}")}


def test_fixed_mode_keeps_reference_where_it_is_right():
    known = {_pair(r) for r in _shared("grader_known_errors.jsonl")} | REFERENCE_WRONG_UNLISTED
    vectors = _shared("grader_vectors.jsonl")
    rows = [r for r in vectors if _pair(r) not in known]
    assert _agreement(rows, "fixed", "expected", "fixed mode = reference elsewhere (vectors)") >= THRESHOLD
    overruled = [r for r in vectors if _pair(r) in REFERENCE_WRONG_UNLISTED]
    assert len(overruled) == len(REFERENCE_WRONG_UNLISTED)
    assert all(grade_answer(r["given"], r["ground_truth"], "fixed") is not r["expected"] for r in overruled)


def test_fixed_mode_on_extra_pairs_reported():
    # No verdict of ours to compare with here: print how often fixed mode
    # overrules the reference so that a change in the figure gets noticed.
    _agreement(_rows(EXTRA_PAIRS), "fixed", "expected", "fixed mode = reference (extra pairs)", show=0)


@pytest.mark.parametrize("given, truth, verdict", [
    ("2^{10}", "1024", True),               # powers are evaluated
    ("4^{50}", "2^{100}", True),
    ("\\binom{10}{5}", "252", True),         # pylatexenc reads \binom{10}{5} as "105"
    ("\\binom{7}{1}", "71", False),
    ("5040", "7!", True),
    ("\\sqrt{49}", "7", True),
    ("-1", "i^2", True),                    # i is the imaginary unit
    ("x+\\frac{1}{2}", "\\frac{x+1}{2}", False),  # the fraction keeps its brackets
    ("\\frac{x}{2}+1", "\\frac{x+2}{2}", True),
    ("\\frac{2}{4}", "\\frac{1}{2}", False),  # unreduced fractions stay wrong
    ("1 2", "12", False),                   # two numbers are not one
    ("1 000 000", "1000000", True),         # ... but a thousands grouping is
    ("40\\,000", "40000", True),
    ("7 3/4", "7.75", True),                # ... and so is a mixed number
    ("40 mph", "40", True),                 # a unit after the number is dropped
    ("5 cm", "5 \\text{ m}", False),         # ... unless the units differ
    ("y=3+2x", "y = 2x + 3", True),          # equations compare as equations
    ("y=2x", "y = -2x", False),
    ("xyz", "zyx", True),
    ("\\text{east}", "\\text{seat}", False),  # words are not products of letters
    ("\\sin^2 x + \\cos^2 x", "1", True),
    ("\\frac{x^9-1}{x-1}", "x^8+x^7+x^6+x^5+x^4+x^3+x^2+x+1", False),  # not defined at 1
    ("\\begin{pmatrix} 0.5 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} \\frac{1}{2} \\\\ 3 \\end{pmatrix}", True),
    ("\\begin{pmatrix} 3 \\\\ 0.5 \\end{pmatrix}", "\\begin{pmatrix} \\frac{1}{2} \\\\ 3 \\end{pmatrix}", False),
    ("11", "1011_2", False),
])
def test_fixed_mode_corrections(given, truth, verdict):
    assert grade_answer(given, truth, mode="fixed") is verdict


def test_modes_differ_where_the_reference_is_wrong():
    assert grade_answer("1 2", "12") is True
    assert grade_answer("2^{10}", "1024") is False


# ---------------------------------------------------------------- time limits

NESTED = "x"
for _k in range(1, 9):
    NESTED = f"({NESTED}+{_k})^3"  # passes the reference's guards; simplify takes minutes

PATHOLOGICAL = [("9^{9^{9^{9}}}", "1"), ("9**9**9**9", "0.5"), (NESTED, "x+0.5"),
                ("\\frac{" * 3000 + "1" + "}{2}" * 3000, "1"), ("(" * 5000 + "x" + ")" * 5000, "x")]


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(grading, "SYMPY_TIMEOUT_S", 1.0)


def _grade_all_pathological():
    verdicts = []
    for mode in grading.MODES:
        for given, truth in PATHOLOGICAL:
            start = time.monotonic()
            verdicts.append((grade_answer(given, truth, mode), time.monotonic() - start))
    return verdicts


@pytest.mark.slow
def test_pathological_input_main_thread(short_timeout):
    for verdict, seconds in _grade_all_pathological():
        assert verdict is False
        assert seconds < 8


@pytest.mark.slow
def test_pathological_input_other_thread(short_timeout):
    results = []
    worker = threading.Thread(target=lambda: results.extend(_grade_all_pathological()))
    worker.start()
    worker.join(120)
    assert not worker.is_alive()
    assert results and all(v is False and s < 8 for v, s in results)


def test_stuck_helper_is_killed(short_timeout):
    # A helper stuck where no signal reaches it (C code) is killed from outside.
    helper = sympy_worker._Helper()
    os.kill(helper.proc.pid, signal.SIGSTOP)
    start = time.monotonic()
    assert helper.ask({"mode": "prm800k", "expr": "(x+1)-(1+x)", "timeout": 0.5}) is None
    assert time.monotonic() - start < 5
    assert helper.proc.poll() is not None
    assert grade_answer("x+1", "1+x") is True  # and grading carries on


def test_concurrent_grading_agrees_with_serial():
    pairs = [("x^2-1", "(x-1)(x+1)"), ("2x+3", "3+2x"), ("\\sqrt{8}", "2\\sqrt{2}"),
             ("x-1", "1-x"), ("\\frac{\\pi}{4}", "\\frac{1}{4}\\pi"), ("3x^2-7x-2", "3x^2-7x+2")] * 5
    serial = [grade_answer(g, t) for g, t in pairs]
    results = {}

    def grade(index):
        results[index] = [grade_answer(g, t) for g, t in pairs]

    threads = [threading.Thread(target=grade, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(results[i] == serial for i in range(4))


# ---------------------------------------------------------------- extraction

def test_extract_answer_prm800k_heading():
    text = "Step one.\n\nSo $x=3$.\n\n# Answer\n\n3"
    assert extract_answer(text) == "3"
    assert extract_answer("# Answer\n\n1\n\nWait.\n\n# Answer\n\n\\frac{1}{2}\n") == "\\frac{1}{2}"


def test_extract_answer_boxed():
    assert extract_answer("so the answer is $\\boxed{\\frac{1}{2}}$.") == "\\frac{1}{2}"
    assert extract_answer("\\boxed{1} then \\boxed{\\sqrt{\\frac{3}{4}}}") == "\\sqrt{\\frac{3}{4}}"
    assert extract_answer("the answer is $\\boxed 5$") == "5"
    assert extract_answer("\\fbox{(2,3)}") == "(2,3)"
    assert extract_answer("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"


def test_extract_answer_none():
    assert extract_answer("no final answer here") is None
    assert extract_answer("") is None
    assert extract_answer("cut off: \\boxed{\\frac{1}{2}") is None
