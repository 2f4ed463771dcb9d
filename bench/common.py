"""What the database benches share: a scratch PostgreSQL database beside the one named in DATABASE_URL,
Django set up from the project root, and phases run as subprocesses of the bench script."""
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"


def with_dbname(url, name):
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_execute(url, *statements):
    import psycopg
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def server_url(script, db):
    """The server from DATABASE_URL; the bench never writes to the database named there."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit(f"{script} needs PostgreSQL: DATABASE_URL={base!r}")
    if urlsplit(base).path.lstrip("/") == db:
        sys.exit(f"refusing to use the database named in DATABASE_URL ({db}) as the scratch database")
    return base


def scratch_create(base, db, env):
    """Drop any leftover scratch database, create it afresh and migrate it (not timed)."""
    admin_execute(base, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', f'CREATE DATABASE "{db}"')
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"], check=True,
                   cwd=ROOT, env=env)


def scratch_drop(base, db):
    admin_execute(base, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def django_setup():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")  # DEBUG is off: settings require one
    import django
    django.setup()


def run_phase(script, name, url, env, **extra):
    """Run one phase of `script` in its own process (so its peak memory and CPU are its own); its last
    line of output is the phase's JSON result."""
    cmd = [sys.executable, str(script), "--phase", name, "--url", url]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"phase {name} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])
