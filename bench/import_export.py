#!/usr/bin/env python
"""PRM800K-scale import/export benchmark on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/import_export.py [--records N]

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
import sys
from pathlib import Path

# Run from the root, so that `bench.*` and the project import as packages.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import filecmp  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from bench.common import django_setup, run_phase, scratch_create, scratch_drop, server_url, with_dbname  # noqa: E402
from bench.measure import CpuMeter, peak_mb  # noqa: E402
from bench.synthetic_prm800k import generate  # noqa: E402

SCRIPT = Path(__file__).resolve()
TARGETS = {"import_s": 60.0, "export_s": 15.0, "peak_mb": 300.0}


def backend_pid():
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


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
    base = server_url("bench/import_export.py", args.db)
    url = with_dbname(base, args.db)
    env = dict(os.environ, DATABASE_URL=url)
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
        scratch_create(base, args.db, env)

        print("import (prm800k_import; grading skipped: it is a separate job) ...", flush=True)
        imp = run_phase(SCRIPT, "import", url, env, file=source)
        print(f"  {imp['seconds']:.1f} s, peak {imp['peak_mb']:.0f} MB", flush=True)
        print("export (prm800k_export of everything) ...", flush=True)
        exp = run_phase(SCRIPT, "export", url, env, out=exported)
        identical = filecmp.cmp(source, exported, shallow=False)
        print(f"  {exp['seconds']:.1f} s, peak {exp['peak_mb']:.0f} MB; byte-identical to the generated file: "
              f"{'OK' if identical else 'FAIL'}", flush=True)
        if not identical:
            print(f"  first difference: {first_difference(source, exported)}")
        print("floor (COPY (SELECT ... ) TO STDOUT of the same rows) ...", flush=True)
        floor = run_phase(SCRIPT, "floor", url, env)
        print(f"  {floor['seconds']:.1f} s, {floor['bytes'] / 1e6:.0f} MB", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            try:
                scratch_drop(base, args.db)
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
