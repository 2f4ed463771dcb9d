#!/usr/bin/env python
"""Queue benchmark on PostgreSQL: next + submit over real HTTP with 50 concurrent clients.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/queue.py

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

# This file is named like the standard library's `queue`: keep its folder off the import path, or
# psycopg's `import queue` would load this script instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import http.client
import json
import math
import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"
TARGET_P95_MS = 50.0
SEED = 1_000


# --- database plumbing (as bench/io.py) ------------------------------------------------------

def with_dbname(url, name):
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_execute(url, *statements):
    import psycopg
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def django_setup():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django
    django.setup()


# --- setup (not timed) ---------------------------------------------------------------------------

def populate(args):
    """Fill the scratch database: problems, solutions, tasks (top fifth full), QC tasks, annotators."""
    django_setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from labeling.services.data.bulk import create_rows, insert_rows
    from labeling.models import Annotator, Problem, Solution, Task, text_sha256

    rng = random.Random(SEED)
    n = args.tasks
    nproblems = max(1, n // 8)
    problem_rows = []
    for i in range(nproblems):
        text = f"Problem {i}: " + "find the value of the expression. " * 8
        problem_rows.append((text, text_sha256(text), str(i % 97), f"Work it out: $\\boxed{{{i % 97}}}$."))
    problem_ids = create_rows(Problem, ["text", "text_hash", "answer", "solution"], problem_rows)
    solution_rows = []
    for i in range(n + 200):
        steps = [f"Step {k} of solution {i}: we simplify the expression and get $x_{k} = {k * i % 13}$."
                 for k in range(8)]
        solution_rows.append((problem_ids[i % nproblems], steps, Solution.hash_steps(steps), "7"))
    solution_ids = create_rows(Solution, ["problem", "steps", "steps_hash", "final_answer"], solution_rows)
    priorities = [rng.random() for _ in range(n)]
    full_above = sorted(priorities)[int(n * 0.8)]  # the top fifth is already taken
    task_rows = []
    for sid, priority in zip(solution_ids[:n], priorities):
        overlap = 3 if rng.random() < 0.3 else 1
        taken = overlap if priority >= full_above else 0
        alternatives = {"3": ["An alternative step 3."]} if rng.random() < 0.2 else {}
        task_rows.append((sid, "round", priority, overlap, taken, taken, None, alternatives))
    task_rows += [(sid, "qc", 0.0, 10_000, 0, 0, [1] * 8, {}) for sid in solution_ids[n:]]
    insert_rows(Task, ["solution", "kind", "priority", "overlap", "taken", "submitted", "gold_ratings",
                       "alternatives"], task_rows)
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"bench{i}") for i in range(args.clients)])
    Annotator.objects.bulk_create([Annotator(user=u, screening_passed=True) for u in users])
    tokens = [Token.objects.create(user=u).key for u in users]
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"tokens": tokens, "tasks": n, "full": sum(1 for p in priorities if p >= full_above)}


# --- the server ------------------------------------------------------------------------------------

def serve(args):
    """Forked workers, each a threaded Django WSGI server on the same port (SO_REUSEPORT)."""
    django_setup()
    import logging

    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    logging.getLogger("django.server").setLevel(logging.WARNING)  # no line per request

    class Server(ThreadedWSGIServer):
        allow_reuse_port = True
        request_queue_size = 128

    class Handler(WSGIRequestHandler):
        # Headers and body go out in separate writes: with Nagle on, the body waits for the
        # client's delayed ACK (40 ms). Production servers (gunicorn, uwsgi) set TCP_NODELAY too.
        disable_nagle_algorithm = True

    def worker():
        server = Server(("127.0.0.1", args.port), Handler)
        server.set_app(application)
        server.serve_forever()

    children = []
    for _ in range(args.server_processes):
        pid = os.fork()
        if pid == 0:
            try:
                worker()
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum, frame):
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        os.waitpid(pid, 0)
    return {}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(port, token, deadline=60):
    end = time.time() + deadline
    while time.time() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/schema/", headers={"Authorization": f"Token {token}"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("the server did not come up")


# --- the clients ------------------------------------------------------------------------------------

def submission(payload, i):
    n = len(payload["steps"])
    if i % 3 == 1 and n > 1:
        ratings = [{"step": 0, "rating": 1, "flagged": False}, {"step": 1, "rating": -1, "flagged": False}]
        finish = "found_error"
    else:
        ratings = [{"step": k, "rating": 1, "flagged": False} for k in range(n)]
        finish = "solution"
    return {"client_id": str(uuid.uuid4()), "ratings": ratings, "finish_reason": finish, "total_time_ms": 30_000}


def client_run(port, token, cycles, think_ms, seed, start, out):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    timings = {"next": [], "submit": []}
    errors = []

    def call(op, path, body):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        timings[op].append((time.perf_counter() - t0) * 1000)
        return response.status, data

    def pause():
        if think_ms:
            time.sleep(rng.expovariate(1 / think_ms) / 1000)

    start.wait()
    for i in range(cycles):
        pause()
        status, data = call("next", "/api/queue/next/", b"")
        if status == 204:
            errors.append("next: 204 (queue empty)")
            break
        if status != 200:
            errors.append(f"next: {status} {data[:200]!r}")
            break
        payload = json.loads(data)
        pause()
        status, data = call("submit", f"/api/assignments/{payload['assignment_id']}/submit/",
                            json.dumps(submission(payload, i)).encode())
        if status != 201:
            errors.append(f"submit: {status} {data[:200]!r}")
            break
    conn.close()
    out.append((timings, errors))


def select1_run(url, stop, out, every_s=0.01):
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            t0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(every_s)


def load(args):
    """One scenario: all clients in this process (threads), plus the SELECT 1 probe."""
    cpu0 = time.process_time()
    tokens = json.loads(args.tokens)
    start = threading.Barrier(len(tokens) + 1)
    results, probe = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=client_run, args=(args.port, tok, args.cycles, args.think_ms,
                                                         SEED + k + int(args.think_ms), start, results))
               for k, tok in enumerate(tokens)]
    for t in threads:
        t.start()
    prober = threading.Thread(target=select1_run, args=(args.url, stop, probe))
    prober.start()
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    stop.set()
    prober.join()
    timings = {"next": [], "submit": []}
    errors = []
    for tm, err in results:
        for op in timings:
            timings[op] += tm[op]
        errors += err
    return {"seconds": seconds, "timings": timings, "select1": probe, "errors": errors[:10],
            "error_count": len(errors), "cpu_clients": time.process_time() - cpu0}


def select1_idle(url, n=1000):
    import psycopg
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            out.append((time.perf_counter() - t0) * 1000)
    return out


# --- CPU accounting (Linux /proc): where the two cores went -------------------------------------------

def _stat(pid):
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # after the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), counted from field 3
    return int(fields[1]), [int(x) for x in fields[11:15]]


def cpu_seconds(root_pid=None, command=None):
    """CPU seconds of a process tree (a root pid) or of every process running `command`, including
    children already exited and reaped (their time is in the parent's cutime/cstime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid, (utime, stime, cutime, cstime) = _stat(entry)
            if command is not None:
                with open(f"/proc/{entry}/comm") as fh:
                    match = fh.read().strip() == command
            else:
                match = int(entry) == root_pid or ppid == root_pid
        except OSError:
            continue
        if match:
            total += utime + stime + cutime + cstime
    return total / ticks


def machine_busy(seconds=3.0):
    """Share of both cores busy over a few seconds (/proc/stat): other work on the box skews latency."""
    def sample():
        with open("/proc/stat") as fh:
            values = [int(x) for x in fh.readline().split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)  # busy (all but idle and iowait), total
    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


# --- checks ---------------------------------------------------------------------------------------

def audit(args):
    """The books after the run, and the plan of the queue's candidate query."""
    django_setup()
    from django.db import connection, transaction
    from django.db.models import Count, F, Q

    from labeling.models import Annotation, Annotator, Assignment, Task
    from labeling.services.annotation.queue import tasks_open_for

    over = Task.objects.filter(Q(taken__gt=F("overlap")) | Q(submitted__gt=F("taken"))).count()
    annotations = Annotation.objects.count()
    submitted_assignments = Assignment.objects.filter(status="submitted").count()
    # Tasks served during the run: their counters must match their assignments exactly (the top
    # fifth was filled by the setup without assignments and is never served).
    served = Task.objects.annotate(
        n_any=Count("assignments"), n_submitted=Count("assignments", filter=Q(assignments__status="submitted")),
        n_live=Count("assignments", filter=Q(assignments__status="leased"))).filter(n_any__gt=0)
    per_task = served.exclude(submitted=F("n_submitted"), taken=F("n_submitted") + F("n_live")).count()
    annotator = Annotator.objects.order_by("id").first()
    with transaction.atomic(), connection.cursor() as cursor:
        candidate = tasks_open_for(annotator.pk, "round").values_list("id", "round__qc_rate", "round__parameters")
        sql, params = candidate[:1].query.sql_with_params()
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    return {"annotations": annotations, "submitted_assignments": submitted_assignments, "over_leased": over,
            "mismatched_tasks": per_task, "plan": plan}


# --- the run ---------------------------------------------------------------------------------------

PHASES = {"populate": populate, "serve": serve, "load": load, "audit": audit}


def run_phase(name, url, **extra):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--url", url]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, env=bench_env(url), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"phase {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_env(url):
    return dict(os.environ, DATABASE_URL=url, DEBUG="0", SECRET_KEY="bench-only-secret-key",
                DB_CONN_MAX_AGE="600", LOG_LEVEL="WARNING", ALLOWED_HOSTS="127.0.0.1")


def pct(values, q):
    values = sorted(values)
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


def main(args):
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit(f"bench/queue.py needs PostgreSQL: DATABASE_URL={base!r}")
    if urlsplit(base).path.lstrip("/") == args.db:
        sys.exit(f"refusing to use the database named in DATABASE_URL ({args.db}) as the scratch database")
    url = with_dbname(base, args.db)
    server = None
    try:
        print(f"creating scratch database {args.db} and migrating ...", flush=True)
        admin_execute(base, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)', f'CREATE DATABASE "{args.db}"')
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"], check=True,
                       cwd=ROOT, env=bench_env(url))
        t0 = time.perf_counter()
        setup = run_phase("populate", url, tasks=args.tasks, clients=args.clients)
        print(f"  {setup['tasks']:,} round tasks ({setup['full']:,} of the top already full), 200 QC tasks, "
              f"{args.clients} annotators, in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)

        port = free_port()
        server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--phase", "serve", "--url", url,
                                   "--port", str(port), "--server-processes", str(args.server_processes)],
                                  env=bench_env(url))
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
            runs[name] = run_phase("load", url, port=port, tokens=json.dumps(tokens), cycles=args.cycles,
                                   think_ms=think)
            r = runs[name]
            r["cpu_server"] = cpu_seconds(root_pid=server.pid) - cpu_before[0]
            r["cpu_postgres"] = cpu_seconds(command="postgres") - cpu_before[1]
            print(f"  {r['seconds']:.1f} s, {len(r['timings']['next']) + len(r['timings']['submit']):,} requests"
                  + (f", {r['error_count']} client errors: {r['errors'][:3]}" if r["error_count"] else ""), flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    books = run_phase("audit", url)
    if not args.keep:
        admin_execute(base, f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
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
