"""The demo: its data loads (idempotently), its logins work, and the server serves a page."""
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from labeling.models import Problem, Solution

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_it_loads_the_demo_and_prints_the_logins(client, settings):
    settings.DEBUG = True  # as `make demo` runs it; outside DEBUG it refuses (tests/test_safe_defaults.py)
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert Problem.objects.count() == 40 and Solution.objects.count() == 160
    wrong = Solution.objects.filter(is_correct=False).count()
    assert Solution.objects.filter(is_correct__isnull=True).count() == 0
    assert 0.3 * 160 < wrong < 0.7 * 160  # a real mix of correct and wrong final answers
    assert "admin" in out.getvalue() and "stepwise-annotator" in out.getvalue()
    from labeling.models import Task
    assert Task.objects.count() == 160
    call_command("load_demo", stdout=io.StringIO())
    assert Problem.objects.count() == 40 and Solution.objects.count() == 160 and Task.objects.count() == 160
    # through the login page: django-axes needs the request that client.login() would not pass
    for username, password in (("annotator", "stepwise-annotator"), ("admin", "stepwise-admin")):
        assert client.post("/login/", {"username": username, "password": password}).status_code == 302


def test_demo_solutions_follow_the_answer_convention():
    from labeling.core.solution_text import extract_answer
    for line in (ROOT / "labeling" / "demo" / "solutions.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert extract_answer(record["steps"][-1]) == record["answer"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demo_server_serves_the_login_page(tmp_path):
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", DEBUG="1")
    env.pop("CELERY_BROKER_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        assert b"Log in" in body and b"csrfmiddlewaretoken" in body
    finally:
        server.terminate()
        server.wait(timeout=10)
