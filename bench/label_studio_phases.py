"""The phases of bench/label_studio.py, each run in its own process: the same tasks loaded into Stepwise (this
venv) and into Label Studio (its own venv, `LS_PYTHON`), the HTTP clients of both, and both exports.

Nothing here imports Label Studio's code into Stepwise's process or the reverse: a Label Studio phase runs under
Label Studio's interpreter with its settings, a Stepwise phase under ours.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import uuid

SEED = 1_000
STEPS = 8


# --- the data both get ---------------------------------------------------------------------------

def dataset(n, prelabeled):
    """n (problem text, steps) pairs, ~n/8 problems, and the indices already labeled before the run."""
    nproblems = max(1, n // 8)
    items = []
    for i in range(n):
        p = i % nproblems
        problem = f"Problem {p}: " + "find the value of the expression. " * 8
        steps = [f"Step {k} of solution {i}: we simplify the expression and get $x_{k} = {k * i % 13}$."
                 for k in range(STEPS)]
        items.append((problem, steps))
    done = set(random.Random(SEED).sample(range(n), prelabeled))
    return items, done


def ls_label_config():
    choices = "".join(f'<Choices name="step{k}" toName="solution" choice="single"><Choice value="-1"/>'
                      f'<Choice value="0"/><Choice value="1"/></Choices>' for k in range(STEPS))
    return (f'<View><Text name="problem" value="$problem"/><Text name="solution" value="$solution"/>'
            f'{choices}</View>')


def ls_result(ratings):
    return [{"from_name": f"step{k}", "to_name": "solution", "type": "choices", "value": {"choices": [str(r)]}}
            for k, r in enumerate(ratings)]


def ratings_for(i):
    """The labels a client gives its i-th task: every third one has an error at step 1."""
    return [1, -1] if i % 3 == 1 else [1] * STEPS


# --- Stepwise (this venv) ----------------------------------------------------------------------------

def sw_populate(args):
    from bench.common import django_setup
    django_setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from labeling.models import Annotation, Annotator, Completion, Problem, Solution, StepLabel, Task, text_sha256
    from labeling.services.data.bulk import create_rows, insert_rows

    items, done = dataset(args.tasks, args.prelabeled)
    texts = sorted({problem for problem, _ in items})
    problem_ids = dict(zip(texts, create_rows(Problem, ["text", "text_hash", "answer", "solution"],
                                              [(t, text_sha256(t), "7", "Work it out: $\\boxed{7}$.") for t in texts])))
    solution_ids = create_rows(Solution, ["problem", "steps", "steps_hash", "final_answer"],
                               [(problem_ids[p], steps, Solution.hash_steps(steps), "7") for p, steps in items])
    rng = random.Random(SEED)
    insert_rows(Task, ["solution", "kind", "priority", "overlap", "taken", "submitted", "alternatives"],
                [(sid, "round", rng.random(), 1, int(i in done), int(i in done), {})
                 for i, sid in enumerate(solution_ids)])
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"bench{i}") for i in range(args.clients + 1)])
    annotators = Annotator.objects.bulk_create([Annotator(user=u, screening_passed=True) for u in users])
    tokens = [Token.objects.create(user=u).key for u in users[:args.clients]]
    # The labels made before the run, by one more annotator, as a submission would store them.
    labeled = sorted(done)
    now = timezone.now()
    annotation_ids = create_rows(
        Annotation, ["annotator", "solution", "problem", "phase", "timestamp", "finish_reason", "total_time_ms",
                     "client_id"],
        [(annotators[-1].pk, solution_ids[i], problem_ids[items[i][0]], 2, now, "solution", 30_000, uuid.uuid4())
         for i in labeled])
    insert_rows(StepLabel, ["annotation", "index", "chosen_completion"],
                [(a, k, 0) for a in annotation_ids for k in range(STEPS)])
    insert_rows(Completion, ["annotation", "step_index", "index", "text", "rating", "flagged"],
                [(a, k, 0, items[i][1][k], 1, False) for a, i in zip(annotation_ids, labeled) for k in range(STEPS)])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {"tokens": tokens}


def sw_export(args):
    from bench.common import django_setup
    django_setup()
    from labeling.services.data.prm800k_export import ExportFilters, prm800k_export
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    with open(os.devnull, "wb") as out:
        result = prm800k_export(out=out, filters=ExportFilters())
    return {"seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0, "records": result.records,
            "bytes": result.bytes}


# --- Label Studio (its venv) -----------------------------------------------------------------------

def ls_setup(args):
    """Under Label Studio's interpreter: an owner, the annotators with (legacy) API tokens, the project."""
    import django
    django.setup()
    from jwt_auth.models import JWTSettings
    from organizations.models import Organization
    from projects.models import Project
    from rest_framework.authtoken.models import Token
    from users.models import User

    owner = User.objects.create_user(email="owner@bench.local", password="bench-owner-password-1")
    org = Organization.create_organization(created_by=owner, title="bench")
    owner.active_organization = org
    owner.save(update_fields=["active_organization"])
    # Label Studio 1.23 turns the classic `Authorization: Token` keys off for new organizations.
    JWTSettings.objects.update_or_create(organization=org, defaults={"legacy_api_tokens_enabled": True})
    tokens = [Token.objects.get_or_create(user=owner)[0].key]
    for i in range(args.clients):
        user = User.objects.create_user(email=f"bench{i}@bench.local", password="bench-annotator-password-1")
        org.add_user(user)
        user.active_organization = org
        user.save(update_fields=["active_organization"])
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    project = Project.objects.create(title="bench", created_by=owner, organization=org,
                                     label_config=ls_label_config(), maximum_annotations=1)
    return {"owner_token": tokens[0], "tokens": tokens[1:], "project": project.pk}


def ls_import_body(tasks, prelabeled):
    """Label Studio's own import format: the tasks, the labeled ones with their annotation."""
    items, done = dataset(tasks, prelabeled)
    body = []
    for i, (problem, steps) in enumerate(items):
        task = {"data": {"problem": problem, "solution": "\n\n".join(steps)}}
        if i in done:
            task["annotations"] = [{"result": ls_result([1] * STEPS), "lead_time": 30.0}]
        body.append(task)
    return json.dumps(body).encode()


def http_call(port, method, path, token, body=None, timeout=600):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def wait_for(port, path, token, deadline=180):
    end = time.time() + deadline
    while time.time() < end:
        try:
            if http_call(port, "GET", path, token, timeout=10)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


# --- the clients ---------------------------------------------------------------------------------------

class Stepwise:
    name = "Stepwise"

    def __init__(self, setup):
        self.setup = setup

    def next(self):
        return "POST", "/api/queue/next/", b"", 200

    def submit(self, payload, i):
        ratings = ratings_for(i)
        body = {"client_id": str(uuid.uuid4()),
                "ratings": [{"step": k, "rating": r, "flagged": False} for k, r in enumerate(ratings)],
                "finish_reason": "found_error" if ratings[-1] == -1 else "solution", "total_time_ms": 30_000}
        return "POST", f"/api/assignments/{payload['assignment_id']}/submit/", json.dumps(body).encode(), 201


class LabelStudio:
    name = "Label Studio"

    def __init__(self, setup):
        self.project = setup["project"]

    def next(self):
        return "GET", f"/api/projects/{self.project}/next/", None, 200

    def submit(self, payload, i):
        body = {"result": ls_result(ratings_for(i)), "lead_time": 30.0, "task": payload["id"],
                "project": self.project}
        return "POST", f"/api/tasks/{payload['id']}/annotations/?project={self.project}", json.dumps(body).encode(), 201


def client_run(system, port, token, cycles, start, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    timings = {"next": [], "submit": []}
    errors = []

    def call(op, request):
        method, path, body, expected = request
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        timings[op].append((time.perf_counter() - t0) * 1000)
        if response.status != expected:
            errors.append(f"{op}: {response.status} {data[:200]!r}")
            return None
        return data

    start.wait()
    for i in range(cycles):
        data = call("next", system.next())
        if data is None:
            break
        if call("submit", system.submit(json.loads(data), i)) is None:
            break
    conn.close()
    out.append((timings, errors))


def load(args):
    """One scenario against one server: `len(tokens)` clients, each `cycles` x (next, submit)."""
    setup = json.loads(args.setup)
    system = (Stepwise if args.system == "stepwise" else LabelStudio)(setup)
    tokens = setup["tokens"][:args.clients]
    start = threading.Barrier(len(tokens) + 1)
    results = []
    threads = [threading.Thread(target=client_run, args=(system, args.port, tok, args.cycles, start, results))
               for tok in tokens]
    for t in threads:
        t.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    timings = {"next": [], "submit": []}
    errors = []
    for tm, err in results:
        for op in timings:
            timings[op] += tm[op]
        errors += err
    return {"seconds": seconds, "timings": timings, "errors": errors[:5], "error_count": len(errors),
            "cpu_clients": time.process_time() - cpu0}


PHASES = {"sw_populate": sw_populate, "sw_export": sw_export, "ls_setup": ls_setup, "load": load}


def run_here(argv=None):
    """Entry point of a phase process (either interpreter): `--phase NAME --key value ...`; prints JSON."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", choices=sorted(PHASES), required=True)
    for name in ("tasks", "prelabeled", "clients", "cycles", "port"):
        ap.add_argument(f"--{name}", type=int)
    ap.add_argument("--setup")
    ap.add_argument("--system")
    ap.add_argument("--url")
    args = ap.parse_args(argv)
    print(json.dumps(PHASES[args.phase](args)))


if __name__ == "__main__":
    # Not bench/ itself on the path (its label_studio.py would hide Label Studio's package); the root last.
    del sys.path[0]
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run_here()
