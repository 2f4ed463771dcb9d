#!/usr/bin/env python
"""PRM800K-scale import/export benchmark on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/io.py [--records N]

DATABASE_URL only says which server to use: the bench creates its own scratch database
(`--db`, default `stepwise_bench`), migrates it, and drops it at the end; it never touches the
database named in the URL. It generates a deterministic (seeded) synthetic PRM800K file of N
phase-2 records (one annotation per distinct pre-generated solution, ~N/8 problems, ~10 rated
steps each, found_error records with alternative completions at the error step) plus N/20 phase-1
records with human_completion objects, then, each phase in its own subprocess so that its peak
memory is its own:

  import  `prm800k_import` of the file into the empty database (grading skipped: it is a separate job)
  export  `prm800k_export` of everything to a file, compared byte for byte with the generated file
  floor   a raw `COPY (SELECT ...) TO STDOUT` of the same annotation/step/completion rows

and prints a table with the targets (import < 60 s, export < 15 s, peak RSS < 300 MB each).
Exit status 1 when the round trip is not byte-identical or a target is missed.
"""
import os
import sys

# Run as a script, this folder is sys.path[0]: its siblings (bench/queue.py) would shadow the
# standard library (queue, used by concurrent.futures and asgiref). Import from the project root.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import argparse  # noqa: E402
import datetime as dt
import filecmp
import json
import random
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"
TARGETS = {"import_s": 60.0, "export_s": 15.0, "peak_mb": 300.0}
SEED = 800_000


# --- synthetic data ------------------------------------------------------------------------------

WORDS = ("the", "so", "we", "have", "that", "is", "of", "and", "to", "a", "by", "this", "gives", "which",
         "means", "now", "then", "let's", "find", "value", "equation", "both", "sides", "multiply", "divide",
         "subtract", "add", "number", "sum", "product", "integer", "root", "factor", "term", "terms",
         "simplify", "substitute", "notice", "since", "therefore", "remainder", "digits", "ways", "choose",
         "triangle", "angle", "area", "radius", "circle", "side", "length", "probability", "expression",
         "coefficient", "polynomial", "solve", "for", "check", "answer", "case", "first", "second", "last",
         "I", "need", "can", "use", "formula", "get", "plug", "in", "into", "equal", "positive", "negative")
LATEX = ("$x^2 + 3x - 4 = 0$", "$\\frac{3}{4}$", "$\\sqrt{17}$", "$\\pi r^2$", "$\\sin \\theta$",
         "$a_n = a_1 + (n-1)d$", "$\\binom{10}{3} = 120$", "$2^{10} = 1024$", "$\\frac{x+1}{x-1}$",
         "$\\left(\\frac{1}{2}\\right)^3$", "$\\log_2 8 = 3$", "$\\angle ABC = 90^\\circ$",
         "$\\dfrac{\\sqrt{3}}{2}$", "$|z| = \\sqrt{a^2+b^2}$", "$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$",
         "$f(x) = 3x^3 - 2x$", "$\\$1.24$", "$5! = 120$", "$\\cos^2 x + \\sin^2 x = 1$", "$x \\equiv 3 \\pmod 7$")
# Non-ASCII appears now and then (json.dumps writes it as \u escapes; one needs a surrogate pair).
UNICODE = ("caf\u00e9", "90\u00b0", "\u2013", "\u03c0", "\u2264", "\u221a2", "\u2026", "\u00d7", "\U0001F600")
ANSWERS = ("28800", "\\frac{3}{4}", "12", "\\sqrt{17}", "2\\pi", "-5", "(1, 2)", "\\text{(C)}", "0.29", "7",
           "1024", "\\dfrac{\\sqrt{3}}{2}", "90^\\circ", "3, 5", "120")


class Gen:
    """Deterministic synthetic PRM800K records."""

    def __init__(self, seed, records):
        self.rng = random.Random(seed)
        rng = self.rng
        self.phrases = [self._phrase(rng.randint(6, 12)) for _ in range(3000)]
        self.labelers = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(300)]
        nproblems = max(8, records // 8)  # ~12,500 problems for 100,000 solutions
        self.problems = []
        for i in range(nproblems):
            answer = rng.choice(ANSWERS)
            if rng.random() < 0.03:
                answer += " " + rng.choice(UNICODE)
            self.problems.append({
                "problem": f"Problem {i}: " + self._text(rng.randint(120, 400)),
                "ground_truth_solution": self._text(rng.randint(250, 900)) + f" $\\boxed{{{answer}}}$.",
                "ground_truth_answer": answer,
                "generation": rng.randint(1, 10),
            })
        # A few screening problems with no ground truth at all (PRM800K has one).
        self.screening = [{"problem": f"Screening {i}: " + self._text(200), "ground_truth_solution": None,
                           "ground_truth_answer": None, "generation": -1} for i in range(3)]
        self.start = dt.datetime(2022, 7, 1)

    def _phrase(self, n):
        rng = self.rng
        words = [rng.choice(WORDS) for _ in range(n)]
        if rng.random() < 0.6:
            words.insert(rng.randrange(len(words)), rng.choice(LATEX))
        if rng.random() < 0.02:
            words.append(rng.choice(UNICODE))
        return " ".join(words)

    def _text(self, length):
        parts, size = [], 0
        while size < length:
            p = self.rng.choice(self.phrases)
            parts.append(p)
            size += len(p) + 2
        return ". ".join(parts).capitalize() + "."

    def _step(self, tag):
        """A step of ~100-200 characters, unique through its tag."""
        rng = self.rng
        return f"{rng.choice(self.phrases).capitalize()}, {rng.choice(self.phrases)} (step {tag})."

    def _timestamp(self, i):
        moment = self.start + dt.timedelta(seconds=i * 97 + self.rng.randint(0, 90),
                                           microseconds=self.rng.randint(0, 999_999))
        return moment.isoformat()

    def phase2(self, i):
        rng = self.rng
        screening = rng.random() < 0.001
        p = rng.choice(self.screening) if screening else rng.choice(self.problems)
        n = rng.randint(7, 17)
        answer = rng.choice(ANSWERS) if rng.random() < 0.93 else None
        steps = [self._step(f"{i}.{k}") for k in range(n)]
        if answer is not None:
            steps[-1] += f"\n\n# Answer\n\n{answer}"
        roll = rng.random()
        finish = ("found_error" if roll < 0.52 else "solution" if roll < 0.92 else
                  "give_up" if roll < 0.96 else "bad_problem")
        if finish == "found_error":
            rated = rng.randint(max(2, n // 2), n)
        elif finish == "solution":
            rated = n
        else:
            rated = rng.randint(1, n)
        label = []
        for k in range(rated):
            last = k == rated - 1
            if finish == "found_error" and last:
                comps = [{"text": steps[k], "rating": -1, "flagged": None}]
                for a in range(rng.randint(0, 4)):  # alternatives the labeler was shown at the error step
                    comps.append({"text": self._step(f"{i}.{k}.alt{a}"), "rating": rng.choice((-1, 0, 1, 1)),
                                  "flagged": False})
                label.append({"completions": comps, "human_completion": None, "chosen_completion": None})
            else:
                rating = 1 if rng.random() < 0.8 else 0
                label.append({"completions": [{"text": steps[k], "rating": rating, "flagged": None}],
                              "human_completion": None, "chosen_completion": 0})
        score = rng.random() ** 6
        if rng.random() < 0.01:
            score = 1e-07
        return {
            "labeler": rng.choice(self.labelers),
            "timestamp": self._timestamp(i),
            "generation": p["generation"],
            "is_quality_control_question": rng.random() < 0.02,
            "is_initial_screening_question": screening,
            "question": {"problem": p["problem"], "ground_truth_solution": p["ground_truth_solution"],
                         "ground_truth_answer": p["ground_truth_answer"], "pre_generated_steps": steps,
                         "pre_generated_answer": answer, "pre_generated_verifier_score": score},
            "label": {"steps": label, "total_time": rng.randint(20_000, 2_000_000) if rng.random() < 0.98 else None,
                      "finish_reason": finish},
        }

    def phase1(self, i):
        rng = self.rng
        p = rng.choice(self.problems)
        finish = "solution" if rng.random() < 0.8 else "give_up"
        label = []
        for k in range(rng.randint(4, 16)):
            if rng.random() < 0.3:  # the labeler rated several candidates and wrote their own step
                comps = [{"text": self._step(f"p1.{i}.{k}.{c}"), "rating": rng.choice((-1, 0, 1, None)),
                          "flagged": False} for c in range(rng.randint(2, 7))]
                if rng.random() < 0.5:
                    human = {"text": self._step(f"p1.{i}.{k}.h"), "rating": None, "source": "human",
                             "flagged": False}
                    label.append({"completions": comps, "human_completion": human, "chosen_completion": None})
                else:
                    label.append({"completions": comps, "human_completion": None,
                                  "chosen_completion": rng.randrange(len(comps))})
            else:
                label.append({"completions": [{"text": self._step(f"p1.{i}.{k}"), "rating": 1, "flagged": False}],
                              "human_completion": None, "chosen_completion": 0})
        if finish == "give_up" and rng.random() < 0.5:
            label.append({"completions": None, "human_completion": None, "chosen_completion": None})
        return {
            "labeler": rng.choice(self.labelers),
            "timestamp": self._timestamp(i),
            "generation": None,
            "is_quality_control_question": rng.random() < 0.05,
            "is_initial_screening_question": False,
            "question": {"problem": p["problem"], "ground_truth_answer": p["ground_truth_answer"]},
            "label": {"steps": label, "total_time": rng.randint(20_000, 3_000_000), "finish_reason": finish},
        }


def generate(path, records, seed=SEED):
    """Write `records` phase-2 lines and records//20 phase-1 lines (interleaved); return counts."""
    gen = Gen(seed, records)
    stats = {"annotations": 0, "phase1": 0, "phase2": 0, "steps": 0, "completions": 0, "bytes": 0}
    with open(path, "wb") as fh:
        for i in range(records):
            recs = [gen.phase2(i)]
            if i % 20 == 10:
                recs.insert(0, gen.phase1(i))
            for r in recs:
                data = (json.dumps(r) + "\n").encode()
                fh.write(data)
                stats["bytes"] += len(data)
                stats["annotations"] += 1
                stats["phase2" if "pre_generated_steps" in r["question"] else "phase1"] += 1
                stats["steps"] += len(r["label"]["steps"])
                stats["completions"] += sum(len(s["completions"] or ()) for s in r["label"]["steps"])
    stats["problems"] = len(gen.problems)
    return stats


# --- database plumbing ---------------------------------------------------------------------------

def with_dbname(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin_execute(url, *statements):
    import psycopg
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def peak_mb():
    """Peak resident set size of this process (VmHWM), in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CpuMeter:
    """CPU seconds spent during a phase by this process, by its PostgreSQL backend (when the server
    is local) and by everything else on the machine: on a shared machine, the last says how much the
    wall-clock figure was disturbed."""

    def __init__(self, backend_pid=None):
        self.pid = backend_pid
        self.t0, self.own0, self.pg0, self.busy0 = time.perf_counter(), self._own(), self._pg(), self._busy()

    @staticmethod
    def _own():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def _pg(self):
        try:
            fields = open(f"/proc/{self.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, TypeError, IndexError, ValueError):
            return None

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as fh:
                v = [int(x) for x in fh.readline().split()[1:]]
            return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return None

    def stop(self):
        own = self._own() - self.own0
        pg1, busy1 = self._pg(), self._busy()
        pg = pg1 - self.pg0 if pg1 is not None and self.pg0 is not None else None
        other = max(0.0, busy1 - self.busy0 - own - (pg or 0)) if busy1 is not None and self.busy0 is not None else None
        return {"cpu_python_s": own, "cpu_postgres_s": pg, "cpu_other_s": other}


def backend_pid():
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def django_setup():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django
    django.setup()


# --- phases (each runs in its own process) -----------------------------------------------------

def phase_import(args):
    django_setup()
    from labeling.services.data.prm800k_import import prm800k_import
    meter = CpuMeter(backend_pid())
    t0 = time.perf_counter()
    result = prm800k_import(path=args.file)  # grading is a separate job (grade_solutions): not run here
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": result.created, "steps": result.steps, "lines": result.lines,
            "problems": result.problems_created, "solutions": result.solutions_created, **meter.stop()}


def phase_export(args):
    django_setup()
    from labeling.services.data.prm800k_export import ExportFilters, prm800k_export
    meter = CpuMeter(backend_pid())
    t0 = time.perf_counter()
    with open(args.out, "wb") as out:
        result = prm800k_export(out=out, filters=ExportFilters())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": result.records, "steps": result.steps, "bytes": result.bytes,
            "sha256": result.sha256, **meter.stop()}


FLOOR_SQL = (
    # one row per annotation with everything its line needs besides steps
    """SELECT a.id, an.labeler, a.timestamp, r.number, a.is_quality_control, a.is_screening, a.phase,
              a.finish_reason, a.total_time_ms, a.selector_score, a.verbatim,
              p.text, p.answer, p.solution, s.steps, s.final_answer
         FROM labeling_annotation a
         JOIN labeling_annotator an ON an.id = a.annotator_id
         JOIN labeling_problem p ON p.id = a.problem_id
         LEFT JOIN labeling_round r ON r.id = a.round_id
         LEFT JOIN labeling_solution s ON s.id = a.solution_id
        ORDER BY a.id""",
    """SELECT annotation_id, index, completions_null, chosen_completion, human_text, human_rating,
              human_source, human_flagged
         FROM labeling_steplabel ORDER BY annotation_id, index""",
    """SELECT annotation_id, step_index, index, text, rating, flagged
         FROM labeling_completion ORDER BY annotation_id, step_index, index""",
)


def phase_floor(args):
    """The same rows straight out of PostgreSQL with COPY, read whole by psycopg: what no export beats."""
    import psycopg
    nbytes = 0
    with psycopg.connect(args.url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur = conn.cursor()
        meter = CpuMeter(conn.info.backend_pid)
        t0 = time.perf_counter()
        for sql in FLOOR_SQL:
            with cur.copy(f"COPY ({sql}) TO STDOUT") as copy:
                for block in copy:
                    nbytes += len(block)
        seconds = time.perf_counter() - t0
        cpu = meter.stop()
        counts = [cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("labeling_annotation", "labeling_steplabel", "labeling_completion")]
    return {"seconds": seconds, "rows": counts[0], "steps": counts[1], "completions": counts[2],
            "bytes": nbytes, **cpu}


PHASES = {"import": phase_import, "export": phase_export, "floor": phase_floor}


def run_phase(name, url, **extra):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--url", url]
    for key, value in extra.items():
        cmd += [f"--{key}", str(value)]
    env = dict(os.environ, DATABASE_URL=url)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"phase {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the run -----------------------------------------------------------------------------------------

def first_difference(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for number, (la, lb) in enumerate(zip(fa, fb), 1):
            if la != lb:
                col = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
                start = max(0, col - 40)
                return f"line {number}, byte {col}: {la[start:col + 40]!r} vs {lb[start:col + 40]!r}"
    return "one file is a prefix of the other"


def main(args):
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit(f"bench/io.py needs PostgreSQL: DATABASE_URL={base!r}")
    url = with_dbname(base, args.db)
    if urlsplit(base).path.lstrip("/") == args.db:
        sys.exit(f"refusing to use the database named in DATABASE_URL ({args.db}) as the scratch database")
    work = Path(tempfile.mkdtemp(prefix="stepwise-bench-"))
    source, exported = work / "prm800k.jsonl", work / "export.jsonl"
    try:
        print(f"generating {args.records} phase-2 records (+{args.records // 20} phase-1) into {source} ...",
              flush=True)
        t0 = time.perf_counter()
        gen = generate(source, args.records)
        print(f"  {gen['annotations']} lines ({gen['phase2']} phase 2, {gen['phase1']} phase 1), "
              f"{gen['problems']} problems, {gen['steps']} steps, {gen['completions']} completions, "
              f"{gen['bytes'] / 1e6:.0f} MB in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)

        print(f"creating scratch database {args.db} and migrating ...", flush=True)
        admin_execute(base, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)', f'CREATE DATABASE "{args.db}"')
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"], check=True,
                       cwd=ROOT, env=dict(os.environ, DATABASE_URL=url))

        print("import (prm800k_import; grading skipped: it is a separate job) ...", flush=True)
        imp = run_phase("import", url, file=source)
        print(f"  {imp['seconds']:.1f} s, peak {imp['peak_mb']:.0f} MB", flush=True)
        print("export (prm800k_export of everything) ...", flush=True)
        exp = run_phase("export", url, out=exported)
        identical = filecmp.cmp(source, exported, shallow=False)
        print(f"  {exp['seconds']:.1f} s, peak {exp['peak_mb']:.0f} MB; byte-identical to the generated file: "
              f"{'OK' if identical else 'FAIL'}", flush=True)
        if not identical:
            print(f"  first difference: {first_difference(source, exported)}")
        print("floor (COPY (SELECT ... ) TO STDOUT of the same rows) ...", flush=True)
        floor = run_phase("floor", url)
        print(f"  {floor['seconds']:.1f} s, {floor['bytes'] / 1e6:.0f} MB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            try:
                admin_execute(base, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001 - report, but do not hide the real error
                print(f"could not drop {args.db}: {exc}", file=sys.stderr)
        else:
            print(f"kept {work} and database {args.db}")

    failures = 0 if identical else 1
    print()
    server = f"{urlsplit(base).hostname}:{urlsplit(base).port or 5432}"
    print(f"machine: {os.cpu_count()} CPU cores; PostgreSQL at {server}, "
          f"scratch database {args.db}; {gen['annotations']:,} annotations, {gen['steps']:,} steps, "
          f"{gen['completions']:,} completions")
    print(f"{'phase':<7}{'rows':>10}{'seconds':>9}{'ann/s':>8}{'steps/s':>10}{'peak MB':>9}"
          f"  {'target':<22}{'result':<29}cpu s: python / postgres / other")
    for name, res, limit in (("import", imp, TARGETS["import_s"]), ("export", exp, TARGETS["export_s"]),
                             ("floor", floor, None)):
        cpu = " / ".join("-" if res.get(k) is None else f"{res[k]:.1f}"
                         for k in ("cpu_python_s", "cpu_postgres_s", "cpu_other_s"))
        if limit is None:
            target, verdict = "(COPY TO STDOUT)", ""
        else:
            ok_time, ok_mem = res["seconds"] < limit, res["peak_mb"] < TARGETS["peak_mb"]
            failures += (not ok_time) + (not ok_mem)
            target = f"< {limit:.0f} s, < {TARGETS['peak_mb']:.0f} MB"
            verdict = f"time {'PASS' if ok_time else 'FAIL'}, memory {'PASS' if ok_mem else 'FAIL'}"
        print(f"{name:<7}{res['rows']:>10,}{res['seconds']:>9.1f}{res['rows'] / res['seconds']:>8,.0f}"
              f"{res['steps'] / res['seconds']:>10,.0f}{res['peak_mb']:>9.0f}  {target:<22}{verdict:<29}{cpu}")
    print("rows: annotations (PRM800K lines); floor: the same annotation, step and completion rows "
          f"({floor['rows'] + floor['steps'] + floor['completions']:,} rows, {floor['bytes'] / 1e6:.0f} MB)")
    print("cpu 'other': what other processes on the machine used meanwhile; much of it means a disturbed timing")
    print(f"ratios: export/floor {exp['seconds'] / floor['seconds']:.1f}x, "
          f"import/floor {imp['seconds'] / floor['seconds']:.1f}x")
    print(f"round trip: {'OK' if identical else 'FAIL'} (export byte-identical to the generated file)")
    print("import ran without grading (grading new solutions is a separate job: manage.py grade_solutions)")
    return 1 if failures else 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="phase-2 records (default 100000)")
    ap.add_argument("--db", default="stepwise_bench", help="scratch database, created and dropped")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database and files")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--profile", help=argparse.SUPPRESS)  # with --phase: write cProfile stats here
    return ap.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.phase:
        if args.profile:
            import cProfile
            profiler = cProfile.Profile()
            out = profiler.runcall(PHASES[args.phase], args)
            profiler.dump_stats(args.profile)
        else:
            out = PHASES[args.phase](args)
        out["peak_mb"] = peak_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu_s"] = usage.ru_utime + usage.ru_stime
        print(json.dumps(out))
    else:
        sys.exit(main(args))
