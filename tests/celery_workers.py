"""Real `celery worker` processes for tests: pointed at the test database and Redis, on their own queues."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def redis_url_or_skip():
    url = os.environ.get("STEPWISE_TEST_REDIS", "redis://127.0.0.1:6379/0")
    import redis
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"!!! Redis not reachable at {url}: real-worker test SKIPPED !!!")
    return url


class Worker:
    """One worker process in its own process group, so a kill takes its pool children with it."""

    def __init__(self, *, queues, redis_url, log, extra_env=None):
        from django.db import connection

        db = connection.settings_dict
        # A killed worker's rows fall silent within seconds, not minutes: the survivor's copy of the message
        # or its reaper (every second) takes them over (labeling/services/jobs/reaper.py).
        beats = {"STEPWISE_HEARTBEAT_SECONDS": "1", "STEPWISE_JOB_STALE_SECONDS": "5", "STEPWISE_REAP_SECONDS": "1"}
        env = dict(os.environ, CELERY_BROKER_URL=redis_url,
                   DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                   **{**beats, **(extra_env or {})})
        self.log = Path(log)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "annotate", "worker", "-Q", ",".join(queues), "--pool", "solo",
             "-n", f"{self.log.stem}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info",
             "--logfile", str(self.log)], cwd=ROOT, env=env, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL: no warm shutdown, no chance to ack or requeue anything."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self):
        return self.log.read_text() if self.log.exists() else ""


def reconfigure(app, **conf):
    """Change the app's broker or routes after it has sent something: Celery caches both on first use."""
    from kombu import pools

    app.conf.update(**conf)
    pools.reset()  # kombu's registry of connection and producer pools, which the app's pool comes from
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
        amqp._rtable = None
        amqp.__dict__.pop("router", None)


def route_to_test_queues(app, redis_url):
    """Send this process's tasks to fresh queues through Redis; returns (default queue, gpu queue, restore)."""
    tag = uuid.uuid4().hex[:8]
    default, gpu = f"test-default-{tag}", f"test-gpu-{tag}"
    keys = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "CELERY_TASK_ROUTES")
    old = {k: app.conf[k] for k in keys}
    reconfigure(app, CELERY_TASK_ALWAYS_EAGER=False, CELERY_BROKER_URL=redis_url,
                CELERY_TASK_ROUTES={"workers.tasks.gpu_*": {"queue": gpu}, "workers.tasks.*": {"queue": default}})
    return default, gpu, lambda: reconfigure(app, **old)


def queue_env(default, gpu):
    """What a worker needs to send follow-up tasks to the same test queues."""
    return {"STEPWISE_DEFAULT_QUEUE": default, "STEPWISE_GPU_QUEUE": gpu}


def wait_for(predicate, timeout, what, every=0.05, alive=()):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        for worker in alive:
            assert worker.alive(), f"worker died while waiting for {what}:\n{worker.text()[-3000:]}"
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
