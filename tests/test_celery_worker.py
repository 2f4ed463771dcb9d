"""The export job through a real Celery worker process, Redis broker and PostgreSQL."""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from labeling.models import Export
from labeling.services.data import exports
from labeling.services.data.prm800k_import import prm800k_import
from tests.celery_workers import reconfigure, redis_url_or_skip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def redis_url():
    return redis_url_or_skip()


@pytest.fixture
def worker(postgres, redis_url, tmp_path, settings):
    """A `celery worker` on its own queue, pointed at the test database; the app here sends to it."""
    from annotate.celery import app
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = dict(os.environ, CELERY_BROKER_URL=redis_url, MEDIA_ROOT=str(tmp_path),
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "annotate", "worker", "-Q", queue, "--pool", "solo",
                             "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info",
                             "--logfile", str(log)], cwd=ROOT, env=env)
    # The app is configured through Django settings, so its keys carry the CELERY_ namespace.
    keys = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "CELERY_TASK_ROUTES")
    old = {k: app.conf[k] for k in keys}
    reconfigure(app, CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=redis_url,
                CELERY_TASK_ROUTES={"workers.tasks.*": {"queue": queue}})
    settings.EXPORT_DIR = tmp_path / "exports"
    proc.log = log
    try:
        yield proc
    finally:
        reconfigure(app, **old)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print(log.read_text()[-3000:] if log.exists() else "no worker log")


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_export(worker, shared_data):
    prm800k_import(path=shared_data / "prm800k_sample.jsonl")
    export = exports.export_create(fmt="prm800k", filters={"exclude_qc": True}, user=None)
    deadline = time.time() + 60
    while time.time() < deadline:
        export.refresh_from_db()
        if export.status in (Export.Status.DONE, Export.Status.FAILED):
            break
        assert worker.poll() is None, "worker died"
        time.sleep(0.3)
    assert export.status == Export.Status.DONE, export.error or export.status
    assert export.celery_task_id
    # The worker process did it (not this process in embedded mode): its log names the task. The row
    # is marked done before the worker logs the task's end, so give the log a moment.
    line = f"[{export.celery_task_id}] succeeded"
    while line not in worker.log.read_text() and time.time() < deadline:
        time.sleep(0.2)
    assert line in worker.log.read_text()
    path = Path(exports.settings.EXPORT_DIR) / export.file
    assert path.read_bytes() == (shared_data / "prm800k_sample.jsonl").read_bytes()
