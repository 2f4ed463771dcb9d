"""The heartbeat of the rows a task holds, beaten by a thread while the task runs.

`workers.tasks.RowTask` opens a `scope()` around every task; whatever the task claims in it (rows.job_claim,
rows.chunk_claim) is registered with `hold()`, and from then on a daemon thread writes `heartbeat = now`
on those rows every STEPWISE_HEARTBEAT_SECONDS while they are running, however long a step takes without
reporting progress (a model loading, a long forward pass). The thread stops when the task returns. A
row whose heartbeat is older than STEPWISE_JOB_STALE_SECONDS has lost its worker (killed, out of memory,
its machine gone): the reaper sends it again, and a delivery of its message takes it over; a delivery
while the heartbeat is fresh is a duplicate and is dropped (see rows.job_claim).

Outside a scope (a command's `--sync`, a test calling a service) `hold()` does nothing: the caller's own
process is what runs the work.
"""
import contextlib
import contextvars
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)
RUNNING = "running"  # JobRow.Status.RUNNING and JobChunk.Status.RUNNING

_SCOPE = contextvars.ContextVar("stepwise_heartbeat", default=None)


def stale_before():
    """Rows whose heartbeat is older than this lost their worker."""
    return timezone.now() - timedelta(seconds=settings.STEPWISE_JOB_STALE_SECONDS)


def stale_q(before=None):
    """A running row silent since `before` (or never beaten: rows claimed before heartbeats existed)."""
    return Q(heartbeat__lt=before or stale_before()) | Q(heartbeat__isnull=True)


class _Beater:
    def __init__(self, interval: float):
        self.interval = interval
        self.rows: set = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = None

    def hold(self, model, pk):
        with self.lock:
            self.rows.add((model, pk))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True, name="stepwise-heartbeat")
                self.thread.start()

    def _run(self):
        try:
            while not self.stopped.wait(self.interval):
                self.beat()
        finally:
            connection.close()  # this thread's own connection

    def beat(self):
        with self.lock:
            rows = list(self.rows)
        now = timezone.now()
        for model, pk in rows:
            try:
                with transaction.atomic():
                    if connection.vendor == "postgresql":  # never wait behind a lock on the row: beat next time
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL lock_timeout = '2s'")
                    model.objects.filter(pk=pk, status=RUNNING).update(heartbeat=now)
            except Exception:  # a database hiccup: the next beat tries again, the task itself goes on
                log.warning("heartbeat of %s %s failed", model.__name__, pk, exc_info=True)
                connection.close()

    def stop(self):
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=5)  # a beat is one short update; a daemon thread never holds the task up


@contextlib.contextmanager
def scope():
    """Beat the heartbeat of every row claimed inside, until the block ends (RowTask wraps each task in one)."""
    beater = _Beater(settings.STEPWISE_HEARTBEAT_SECONDS)
    token = _SCOPE.set(beater)
    try:
        yield beater
    finally:
        _SCOPE.reset(token)
        beater.stop()


def hold(model, pk) -> None:
    """This task now holds the row (it claimed it): keep its heartbeat fresh while the task runs."""
    beater = _SCOPE.get()
    if beater is not None:
        beater.hold(model, pk)
