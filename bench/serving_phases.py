"""The phases of bench/serving.py, each run in its own process: fill the scratch database, serve the app,
drive the clients, audit the books afterwards."""
import http.client
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import uuid

from bench.common import django_setup

SEED = 1_000


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


PHASES = {"populate": populate, "serve": serve, "load": load, "audit": audit}
