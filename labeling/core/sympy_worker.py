"""sympy in a helper process: equality of two parsed answers, with a time limit that always holds.

sympy can take forever (``9^{9^{9^9}}``, nested powers). Signal timers only work in the main thread
and not inside long C calls, so every sympy call runs in a helper process: it stops itself with a
timer at the request's timeout and is killed if it has not answered a second later. That works the
same from Django or Celery threads. Where no helper process can be started, the request is
evaluated here under a signal timer (main thread) or in a watched thread.

``ask(request, timeout)`` is the grader's one entry point; a request is ``{"mode": "prm800k",
"expr": ...}`` (does the difference simplify to 0?) or ``{"mode": "fixed", "truth", "given",
"equation"}`` (see :func:`_evaluate`). A timeout or any error counts as "not equal".
"""
import atexit
import json
import logging
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

_KILL_GRACE_S = 1.0  # the helper stops itself at the timeout; the kill is for C code
_MAX_IDLE_HELPERS = 4
_idle_helpers = []
_helpers_lock = threading.Lock()
_helpers_unavailable = False


def ask(request: dict, timeout: float) -> bool:
    """sympy's verdict on `request`; False when it takes longer than `timeout` seconds or fails."""
    global _helpers_unavailable
    request = {**request, "timeout": timeout}
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
        boot = f"import sys; sys.path.insert(0, {root!r}); from labeling.core.sympy_worker import _serve; _serve()"
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
