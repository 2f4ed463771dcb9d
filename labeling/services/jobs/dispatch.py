"""Sending a task once the current transaction commits: to the workers, or in the embedded mode here.

Callers import the task and hand it over, so every send can be followed to its code:

    from workers import tasks
    enqueue(tasks.gpu_score_chunk, chunk.pk)

Importing workers.tasks imports no ML module (its bodies import those lazily). Inside `run_here()`
(the `--sync` flag of the commands) the task runs in this process even where a broker is configured;
inside `in_background()` in the embedded mode it runs in a thread; otherwise it is sent (and in the
embedded mode, no CELERY_BROKER_URL, Celery runs it in-process anyway). Whichever way, its row
records the id of the Celery message before it runs.
"""
import contextlib
import contextvars

from celery.utils import uuid
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


def enqueue(task, *args) -> None:
    """Run `task(*args)` after the commit: here, in a thread or on a worker (see above).

    `task` is a workers.tasks task: its first argument is the id of the row it works on."""
    here = _HERE.get()
    background = _BACKGROUND.get() and settings.EMBEDDED_TASKS

    def send():
        task_id = uuid()
        task.record_sent(task_id, args)
        if here:
            task.apply(args=args, task_id=task_id)
        elif background:
            _thread(task, args, task_id)
        else:
            task.apply_async(args=args, task_id=task_id)

    transaction.on_commit(send)


def _thread(task, args, task_id):
    import threading

    from django.db import connection

    def run():
        try:
            task.apply(args=args, task_id=task_id)
        finally:
            connection.close()

    threading.Thread(target=run, daemon=True, name=f"stepwise-{task.name}").start()
