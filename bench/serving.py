#!/usr/bin/env python
"""Queue benchmark on PostgreSQL: next + submit over real HTTP with 50 concurrent clients.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/serving.py

DATABASE_URL only says which server to use: the bench creates its own scratch database (`--db`,
default `stepwise_bench_queue`), migrates it, fills it, and drops it at the end; it never touches
the database named in the URL. Setup (not timed): 100,000 queued round tasks (overlap 1 or 3,
seeded random priorities) whose top fifth is already full, so the queue must look past taken work;
200 QC tasks mixed in at the default rate; 50 annotators (screening passed) with API tokens.

A real server process serves the app: `--server-processes` forked workers sharing the port
(SO_REUSEPORT), each a threaded WSGI server (Django's, keep-alive), DEBUG off, persistent database
connections. Clients run in their own process: 50 threads, each with one keep-alive HTTP connection
and one token, doing `--cycles` x (POST /api/queue/next/, POST .../submit/), so the number of
requests is bounded. Three scenarios run one after the other on the same server:

  serial     one client, no pause: the service time of one request, nothing queued
  paced      50 clients, each pausing `--think-ms` (mean, exponential) before every request, as
             annotators do (real ones take minutes per task): the target applies here
  saturated  50 clients, no pause: 50 requests always in flight on 2 cores; latency is queueing
             (clients / throughput), shown to state the capacity, not judged

Beside them, a bare `SELECT 1` round trip (psycopg, same server) is timed idle and during each
scenario. Prints p50/p95/p99 per operation against the target (p95 < 50 ms for next and submit),
checks the books (one annotation per successful submit, no task over its overlap), and shows the
plan of the queue's candidate query. Exit status 1 when a check fails or the paced target is missed.
"""
import sys
from pathlib import Path

# Run from the root, so that `bench.*` and the project import as packages.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from bench.common import run_phase, scratch_create, scratch_drop, server_url, with_dbname  # noqa: E402
from bench.measure import cpu_seconds, machine_busy, pct  # noqa: E402
from bench.serving_phases import PHASES, free_port, select1_idle, wait_for_server  # noqa: E402

SCRIPT = Path(__file__).resolve()
TARGET_P95_MS = 50.0


def bench_env(url):
    return dict(os.environ, DATABASE_URL=url, DEBUG="0", SECRET_KEY="bench-only-secret-key",
                DB_CONN_MAX_AGE="600", LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1")


def main(args):
    base = server_url("bench/serving.py", args.db)
    url = with_dbname(base, args.db)
    env = bench_env(url)
    server = None
    try:
        print(f"creating scratch database {args.db} and migrating ...", flush=True)
        scratch_create(base, args.db, env)
        t0 = time.perf_counter()
        setup = run_phase(SCRIPT, "populate", url, env, tasks=args.tasks, clients=args.clients)
        print(f"  {setup['tasks']:,} round tasks ({setup['full']:,} of the top already full), 200 QC tasks, "
              f"{args.clients} annotators, in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)

        port = free_port()
        server = subprocess.Popen([sys.executable, str(SCRIPT), "--phase", "serve", "--url", url,
                                   "--port", str(port), "--server-processes", str(args.server_processes)],
                                  env=env)
        wait_for_server(port, setup["tokens"][0])
        for _ in range(30):  # let the setup's aftermath (checkpoint, autovacuum) settle first
            busy = machine_busy()
            if busy < 0.15:
                break
        print(f"server up on 127.0.0.1:{port}: {args.server_processes} worker processes, threaded, keep-alive",
              flush=True)
        idle = select1_idle(url)
        runs = {}
        scenarios = [("serial", 1, 0), ("paced", args.clients, args.think_ms), ("saturated", args.clients, 0)]
        for name, clients, think in scenarios:
            tokens = setup["tokens"][:clients]  # the same logins go on down the queue in each scenario
            print(f"{name}: {clients} client(s) x {args.cycles} cycles (think {think:.0f} ms) ...", flush=True)
            cpu_before = cpu_seconds(root_pid=server.pid), cpu_seconds(command="postgres")
            runs[name] = run_phase(SCRIPT, "load", url, env, port=port, tokens=json.dumps(tokens),
                                   cycles=args.cycles, think_ms=think)
            r = runs[name]
            r["cpu_server"] = cpu_seconds(root_pid=server.pid) - cpu_before[0]
            r["cpu_postgres"] = cpu_seconds(command="postgres") - cpu_before[1]
            print(f"  {r['seconds']:.1f} s, {len(r['timings']['next']) + len(r['timings']['submit']):,} requests"
                  + (f", {r['error_count']} client errors: {r['errors'][:3]}" if r["error_count"] else ""), flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    books = run_phase(SCRIPT, "audit", url, env)
    if not args.keep:
        scratch_drop(base, args.db)
    else:
        print(f"kept database {args.db}")
    return report(args, base, idle, runs, books, busy)


def report(args, base, idle, runs, books, busy):
    failures = 0
    print()
    if busy > 0.15:
        print(f"WARNING: before the run the machine was {busy:.0%} busy with other work: latencies are inflated")
    print(f"machine: {os.cpu_count()} CPU cores; PostgreSQL via {base.split('@')[-1].rsplit('/', 1)[0]}; "
          f"{args.tasks:,} queued tasks; {args.clients} clients; server: {args.server_processes} processes; "
          f"machine {busy:.0%} busy with other work just before the run")
    print(f"{'scenario':<10}{'operation':<16}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'req/s':>8}   target{'':<10}result")
    print(f"{'idle':<10}{'SELECT 1':<16}{len(idle):>7}{pct(idle, 50):>9.2f}{pct(idle, 95):>9.2f}"
          f"{pct(idle, 99):>9.2f}{max(idle):>9.2f}")
    for name, r in runs.items():
        total = len(r["timings"]["next"]) + len(r["timings"]["submit"])
        for op in ("next", "submit"):
            values = r["timings"][op]
            p95 = pct(values, 95)
            ok = p95 < TARGET_P95_MS
            if name == "paced":
                failures += not ok
            verdict = ("PASS" if ok else "FAIL") if name == "paced" else "(not judged)"
            print(f"{name:<10}{'POST ' + op:<16}{len(values):>7}{pct(values, 50):>9.1f}{p95:>9.1f}"
                  f"{pct(values, 99):>9.1f}{max(values):>9.1f}{total / r['seconds']:>8.0f}   "
                  f"p95 < {TARGET_P95_MS:.0f} ms{'':<5}{verdict}")
        s1 = r["select1"]
        print(f"{name:<10}{'SELECT 1':<16}{len(s1):>7}{pct(s1, 50):>9.2f}{pct(s1, 95):>9.2f}{pct(s1, 99):>9.2f}"
              f"{max(s1):>9.2f}           (same server, during the load)")
        failures += bool(r["error_count"])
    print("CPU per next+submit cycle (both cores; the PostgreSQL figure counts every database on the server):")
    for name, r in runs.items():
        cycles = len(r["timings"]["submit"]) or 1
        per = {key: r[key] / cycles * 1000 for key in ("cpu_server", "cpu_postgres", "cpu_clients")}
        print(f"  {name:<10} server {per['cpu_server']:5.1f} ms, PostgreSQL {per['cpu_postgres']:5.1f} ms, "
              f"client process {per['cpu_clients']:5.1f} ms; {r['seconds']:.1f} s wall for {cycles} cycles")
    submits = sum(len(r["timings"]["submit"]) for r in runs.values())
    books_ok = (books["annotations"] == submits == books["submitted_assignments"] and books["over_leased"] == 0
                and books["mismatched_tasks"] == 0)
    failures += not books_ok
    print(f"books: {books['annotations']:,} annotations for {submits:,} successful submits, "
          f"{books['over_leased']} tasks over overlap, {books['mismatched_tasks']} tasks whose counters disagree "
          f"with their assignments: {'OK' if books_ok else 'FAIL'}")
    print("candidate query plan (EXPLAIN ANALYZE after the run):")
    for line in books["plan"]:
        print("   " + line)
    return 1 if failures else 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=100_000, help="queued round tasks (default 100000)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--cycles", type=int, default=40, help="next+submit cycles per client and scenario")
    ap.add_argument("--think-ms", type=float, default=1000, help="mean pause between requests when paced")
    ap.add_argument("--server-processes", type=int, default=2)
    ap.add_argument("--db", default="stepwise_bench_queue", help="scratch database, created and dropped")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tokens", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args)))
    else:
        sys.exit(main(args))
