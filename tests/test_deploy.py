"""`manage.py check --deploy` is clean with the environment README's "Running in production" section exports."""
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def production_environment():
    """Every NAME=value the section's shell block exports; SECRET_KEY's `...` becomes a real random key."""
    section = (ROOT / "README.md").read_text().split("## Running in production", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    exported = {}
    for line in block.splitlines():
        if line.startswith("export "):
            words = shlex.split(line[len("export "):], comments=True)
            exported.update(word.split("=", 1) for word in words)
    assert exported.get("SECRET_KEY") == "...", "the README should show SECRET_KEY=... and how to make one"
    exported["SECRET_KEY"] = secrets.token_urlsafe(50)
    return exported


def manage(*args, **env):
    keep = {k: v for k, v in os.environ.items()
            if not re.match(r"(DEBUG|SECRET_KEY|DATABASE_URL|CELERY_|STEPWISE_|ALLOWED_HOSTS|TEST_DATABASE)", k)}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**keep, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def test_it_passes_the_deploy_check_with_the_readme_production_variables():
    env = production_environment()
    assert env["DEBUG"] == "0" and env["STEPWISE_HTTPS"] == "1"
    done = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "no issues" in done.stdout


def test_it_warns_without_them():
    """The check under test is live: DEBUG off alone, over plain http, is not a production setup."""
    done = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50))
    assert done.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in done.stderr, check


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_unset():
    done = manage("check")
    assert done.returncode != 0 and "SECRET_KEY must be set when DEBUG is off" in done.stderr
    assert manage("check", DEBUG="1").returncode == 0  # the development key, for DEBUG only


BEHIND_THE_PROXY = """
import django, json
django.setup()
from django.test import Client
plain = Client().get("/login/")
proxied = Client().get("/login/", headers={"X-Forwarded-Proto": "https"})
print(json.dumps({"plain": [plain.status_code, plain.get("Location")], "proxied": proxied.status_code,
                  "hsts": proxied.get("Strict-Transport-Security"), "csp": proxied.get("Content-Security-Policy"),
                  "secure_cookie": bool(proxied.cookies["csrftoken"]["secure"])}))
"""


def test_behind_the_readme_proxy_http_is_redirected_and_https_is_served_with_hsts(tmp_path):
    env = {**production_environment(), "ALLOWED_HOSTS": "testserver",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    keep = {k: v for k, v in os.environ.items()
            if not re.match(r"(DEBUG|SECRET_KEY|DATABASE_URL|CELERY_|STEPWISE_)", k)}
    done = subprocess.run([sys.executable, "-c", BEHIND_THE_PROXY], cwd=ROOT, env={**keep, **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://testserver/login/"]
    assert seen["proxied"] == 200 and seen["secure_cookie"]
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert "default-src 'self'" in seen["csp"]
