"""Sending Celery tasks after the current transaction commits, or running them here.

Tasks are named, not imported, so the web process never imports the workers' ML modules. Inside
`run_here()` (the `--sync` flag of the commands) tasks run in this process even where a broker is
configured; in the embedded mode (no CELERY_BROKER_URL) Celery runs them in-process anyway.
"""
import contextlib
import contextvars

from django.conf import settings
from django.db import transaction

_HERE = contextvars.ContextVar("stepwise_run_here", default=False)
_BACKGROUND = contextvars.ContextVar("stepwise_background", default=False)


@contextlib.contextmanager
def run_here():
    token = _HERE.set(True)
    try:
        yield
    finally:
        _HERE.reset(token)


@contextlib.contextmanager
def in_background():
    """In the embedded mode, run what is sent in a thread, so a web request need not wait for a round.

    With workers configured this changes nothing: the broker already makes it asynchronous.
    """
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def _thread(task, args):
    import threading

    from django.db import connection

    def run():
        try:
            task.apply(args=args)
        finally:
            connection.close()

    threading.Thread(target=run, daemon=True, name=f"stepwise-{task.name}").start()


def send(task_name: str, *args) -> None:
    import workers.tasks  # noqa: F401  registers the tasks; imports no ML module
    from annotate.celery import app

    here = _HERE.get()
    background = _BACKGROUND.get() and settings.EMBEDDED_TASKS

    def go():
        task = app.tasks[task_name]
        if here:
            task.apply(args=args)
        elif background:
            _thread(task, args)
        else:
            task.delay(*args)

    transaction.on_commit(go)
