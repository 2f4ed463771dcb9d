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
  equations, matrices cell by cell, and ``1 2`` is not ``12``.

sympy can take forever (``9^{9^{9^9}}``, nested powers), and a timeout counts
as "not equal". Signal timers only work in the main thread and not inside long
C calls, so every sympy call runs in a helper process: it stops itself with a
timer at SYMPY_TIMEOUT_S and is killed if it has not answered a second later.
That works the same from Django or Celery threads. Answers that are equal as
strings, or that the guards rule out, never reach the helper.
"""
import atexit
import json
import logging
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

from labeling.core import normalize as mn

log = logging.getLogger(__name__)

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
        return _reference_may_evaluate(expr) and _ask_sympy({"mode": "prm800k", "expr": expr})
    truth_py, given_py = _python_text(truth), _python_text(given)
    if truth_py is None or given_py is None or truth_py[1] != given_py[1]:
        return False  # text, or an equation against a non-equation
    return _ask_sympy({"mode": "fixed", "truth": truth_py[0], "given": given_py[0],
                       "equation": truth_py[1]})


def _reference_may_evaluate(expr):
    # The reference's guards against text and against sympy hanging on powers.
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    if len(letters) > 2 or "^{" in expr or "^(" in expr:
        return False
    return re.search(r"\^[0-9]+\^|\^[0-9][0-9]+", expr) is None


# --------------------------------------------------------------------------
# fixed mode
# --------------------------------------------------------------------------

_MATRIX = re.compile(r"^\s*\\begin\{([pbB]?matrix)\}(?P<body>.*)\\end\{\1\}\s*$", re.S)


def _grade_fixed(given, truth):
    if truth is None:
        return False
    given_cells, truth_cells = _matrix_cells(given), _matrix_cells(truth)
    if given_cells is not None and truth_cells is not None:
        # pylatexenc flattens matrices oddly; compare cell by cell instead.
        return [len(r) for r in given_cells] == [len(r) for r in truth_cells] and all(
            grade_answer(g, t, "fixed")
            for g_row, t_row in zip(given_cells, truth_cells) for g, t in zip(g_row, t_row))
    given, given_unit = mn.fixed_preprocess(given)
    truth, truth_unit = mn.fixed_preprocess(truth)
    if given_unit and truth_unit and not mn.same_unit(given_unit, truth_unit):
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
    if "_" in element or mn.NUMBER_GAP in element or re.search("[<>≤≥]", element):
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


# --------------------------------------------------------------------------
# sympy, in a helper process
# --------------------------------------------------------------------------

_KILL_GRACE_S = 1.0  # the helper stops itself at the timeout; the kill is for C code
_MAX_IDLE_HELPERS = 4
_idle_helpers = []
_helpers_lock = threading.Lock()
_helpers_unavailable = False


def _ask_sympy(request):
    global _helpers_unavailable
    request["timeout"] = SYMPY_TIMEOUT_S
    for _attempt in range(2):  # a helper that died while idle is replaced once
        if _helpers_unavailable:
            return _evaluate_here(request)
        try:
            helper = _borrow_helper()
        except OSError as exc:
            log.warning("sympy helper process unavailable (%s); grading in-process", exc)
            _helpers_unavailable = True
            continue
        answer = helper.ask(request)
        if answer is _Helper.BROKEN:
            continue
        if answer is not None:
            _return_helper(helper)
        return bool(answer)  # None: timed out, the helper was killed
    return False


def _borrow_helper():
    with _helpers_lock:
        if _idle_helpers:
            return _idle_helpers.pop()
    return _Helper()


def _return_helper(helper):
    with _helpers_lock:
        if len(_idle_helpers) < _MAX_IDLE_HELPERS:
            _idle_helpers.append(helper)
            return
    helper.close()


class _Helper:
    """A python process running :func:`_serve`, spoken to in JSON lines.

    A plain subprocess rather than multiprocessing: Celery's prefork workers
    are daemonic and may not start multiprocessing children, and spawning
    does not re-import the caller's __main__.
    """
    BROKEN = object()

    def __init__(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        boot = f"import sys; sys.path.insert(0, {root!r}); from labeling.core.grading import _serve; _serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", boot], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.pending = b""
        if self._read_line(time.monotonic() + 60) != b"ready":
            self.close()
            raise OSError("sympy helper did not start")

    def ask(self, request):
        """The helper's verdict, None on timeout, BROKEN if it was already dead."""
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.close()
            return self.BROKEN
        line = self._read_line(time.monotonic() + request["timeout"] + _KILL_GRACE_S)
        if line is None:
            self.close()
            return None
        return json.loads(line)["equal"]

    def _read_line(self, deadline):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None  # the helper died (crashed, or killed by the OS)
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _forget_helpers_after_fork():
    # A forked child (Celery prefork) must not share its parent's helpers.
    global _helpers_lock
    _helpers_lock = threading.Lock()
    _idle_helpers.clear()


def _close_idle_helpers():
    while _idle_helpers:
        _idle_helpers.pop().close()


os.register_at_fork(after_in_child=_forget_helpers_after_fork)
atexit.register(_close_idle_helpers)


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _serve():
    """Helper process main loop: one JSON request per line on stdin."""
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints must not corrupt the replies
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent
    signal.signal(signal.SIGALRM, _on_alarm)
    import sympy  # noqa: F401  (loaded before "ready", not on the first request)
    replies.write(b"ready\n")
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            signal.setitimer(signal.ITIMER_REAL, request["timeout"])
            equal = _evaluate(request)
        except BaseException:  # the reference swallows every error as "not equal"
            equal = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        replies.write(json.dumps({"equal": bool(equal)}).encode() + b"\n")


def _evaluate_here(request):
    """Without a helper: a signal timer in the main thread, else a watched thread."""
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, request["timeout"])
            return bool(_evaluate(request))
        except BaseException:
            return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    result = []
    worker = threading.Thread(target=lambda: result.append(_evaluate_quietly(request)), daemon=True)
    worker.start()
    worker.join(request["timeout"])  # an overrunning thread is abandoned, not killed
    return bool(result and result[0])


def _evaluate_quietly(request):
    try:
        return _evaluate(request)
    except Exception:
        return False


def _evaluate(request):
    import sympy
    from sympy.parsing import sympy_parser as sp

    transformations = sp.standard_transformations + (sp.implicit_multiplication_application,)
    if request["mode"] == "prm800k":
        diff = sp.parse_expr(request["expr"].replace("^", "**"), transformations=transformations)
        return sympy.simplify(diff) == 0

    def parse(text):
        names = {"i": sympy.I}
        with sympy.evaluate(False):  # see the size of 9^(9^9) or 10^6! before building it
            unevaluated = sp.parse_expr(text, local_dict=names, transformations=transformations,
                                        evaluate=False)
        if _too_big(unevaluated):
            raise ValueError("number too large to evaluate")
        return sp.parse_expr(text, local_dict=names, transformations=transformations)

    truth, given = parse(request["truth"]), parse(request["given"])
    if request["equation"]:  # "y=2x+3" vs "2x+3=y" or "2y=4x+6": proportional sides
        if given == 0:
            return sympy.simplify(truth) == 0
        ratio = sympy.simplify(truth / given)
        return bool(ratio.is_number and ratio.is_finite and ratio != 0)
    diff = sympy.simplify(truth - given)
    return (diff == 0 or diff.is_zero is True) and _same_poles(truth, given)


def _same_poles(a, b):
    """Undefined at the same points? (x^9-1)/(x-1) is not x^8+...+1 at x=1."""
    import sympy

    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if not symbols:
        return True
    try:
        poles = [sympy.Poly(sympy.denom(sympy.together(e)), *symbols).sqf_part().as_expr()
                 for e in (a, b)]
    except sympy.PolynomialError:
        return True  # denominators with roots or functions in them: not judged
    return sympy.cancel(poles[0] / poles[1]).is_number


_MAX_BITS = 1 << 20  # integers up to ~300,000 digits are quick to build


def _too_big(expr):
    """Would evaluating expr build an enormous number? (inner powers first)"""
    import sympy

    if any(_too_big(arg) for arg in expr.args):
        return True
    if isinstance(expr, sympy.Pow) and expr.base.is_number and expr.exp.is_number:
        base = abs(complex(expr.base.evalf(15)))
        exponent = abs(complex(expr.exp.evalf(15)))
        return base > 0 and exponent * abs(math.log2(base)) > _MAX_BITS
    if isinstance(expr, (sympy.factorial, sympy.binomial)) and expr.is_number:
        n = abs(complex(expr.args[0].evalf(15)))
        k = abs(complex(expr.args[-1].evalf(15)))  # binomial(n, k) costs min(k, n-k) steps
        return min(k, abs(n - k)) > 50_000 if len(expr.args) == 2 else n > 50_000
    return False


# --------------------------------------------------------------------------
# Answers and steps of a solution
# --------------------------------------------------------------------------

_ANSWER_HEADING = re.compile(r"^[ \t]*#[ \t]*Answer[ \t]*$", re.M)
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


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


def split_steps(text: str, delimiter: str = "\n\n") -> "list[str]":
    """Steps of a solution: blocks between delimiters, stripped, empty ones dropped."""
    if not text:
        return []
    return [step.strip() for step in text.split(delimiter) if step.strip()]
