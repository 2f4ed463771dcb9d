"""Bulk row writing: COPY on PostgreSQL, batched INSERTs elsewhere. Never a save() per row.

`insert_rows` writes plain tuples; `create_rows` does the same and returns the new primary keys in
row order. On PostgreSQL the keys are drawn from the table's sequence first (`allocate_ids`:
`nextval`, so safe beside concurrent writers) and the rows then go in with COPY, ids included: no
model instance is built and no INSERT ... RETURNING is parsed. Columns a caller leaves out get what
`Model.save()` would give them (field defaults, `auto_now`/`auto_now_add` timestamps), so a field
added with a default does not break a bulk writer.

An import that writes chunk after chunk hands its rows to a sink: `InlineSink` writes them at once
(any database), `PostgresSink` COPYs them on a helper thread while the caller parses the next chunk.
"""
import json
import queue
import threading

from django.db import connection, models
from django.utils import timezone


def insert_rows(model, fields, rows):
    """Insert plain tuples into model's table (columns named by `fields`); returns the count."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        copy_rows(connection.connection, model, fields, rows)
        return len(rows)
    attnames = [model._meta.get_field(f).attname for f in fields]
    model.objects.bulk_create([model(**dict(zip(attnames, row))) for row in rows], batch_size=500)
    return len(rows)


def create_rows(model, fields, rows):
    """Insert plain tuples like `insert_rows` and return the new primary keys in row order."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return []
    if connection.vendor == "postgresql":
        ids = allocate_ids(model, len(rows))
        connection.ensure_connection()
        copy_rows(connection.connection, model, [model._meta.pk.name, *fields],
                  [(i, *row) for i, row in zip(ids, rows)])
        return ids
    attnames = [model._meta.get_field(f).attname for f in fields]
    objs = [model(**dict(zip(attnames, row))) for row in rows]
    model.objects.bulk_create(objs, batch_size=500)
    return [o.pk for o in objs]


def allocate_ids(model, n):
    """PostgreSQL: reserve n primary keys of model's table from its sequence; ascending."""
    if n <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column, n])
        return sorted(r[0] for r in cursor.fetchall())


def copy_rows(raw_connection, model, fields, rows):
    """PostgreSQL: COPY plain tuples into model's table over a psycopg connection.

    Takes the raw connection (not Django's wrapper) so that a helper thread may write over the
    connection of the thread that holds the transaction. Values of JSONField columns are Python
    objects, serialized here; columns left out get their save() defaults.
    """
    opts = model._meta
    given = [opts.get_field(f) for f in fields]
    names = {f.name for f in given}
    extra = [f for f in opts.concrete_fields if f.name not in names and not f.primary_key and _needs_value(f)]
    json_at = [i for i, f in enumerate(given) if isinstance(f, models.JSONField)]
    tail, per_row = [], []
    for k, f in enumerate(extra):
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            tail.append(timezone.now())
        elif callable(f.default) and f.default not in (dict, list):  # uuid4 and such: fresh per row
            per_row.append((k, f))
            tail.append(None)
        else:
            tail.append(_prep(f, f.get_default()))
    tail = tuple(tail)
    columns = ", ".join(_quote(f.column) for f in given + extra)
    with raw_connection.cursor() as cursor:
        with cursor.copy(f"COPY {_quote(opts.db_table)} ({columns}) FROM STDIN") as copy:
            write = copy.write_row
            if not json_at and not extra:
                for row in rows:
                    write(row)
                return
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = _prep(given[i], row[i])
                if per_row:
                    values = list(tail)
                    for k, f in per_row:
                        values[k] = _prep(f, f.get_default())
                    write((*row, *values))
                else:
                    write((*row, *tail))


def _quote(name):
    return '"%s"' % name.replace('"', '""')


def _needs_value(field):
    """Whether COPY must be given this column: save() writes a value the database would not default to."""
    if field.has_db_default():
        return False
    return not (field.null and not field.has_default())


def _prep(field, value):
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json.dumps(value, cls=field.encoder)
    return value


# --- sinks -------------------------------------------------------------------------------------------

class InlineSink:
    """Rows written at once, in order (any database)."""

    def reserve(self, model, n):
        return None  # ids come from the inserts

    def create(self, model, fields, rows, ids=None):
        return create_rows(model, fields, rows)

    def insert(self, model, fields, rows):
        insert_rows(model, fields, rows)

    def start(self):
        pass

    def flush(self):
        pass

    def finish(self):
        pass

    def close(self):
        pass


class PostgresSink:
    """PostgreSQL: ids reserved up front, rows queued and COPYed in order by a helper thread.

    The helper uses the raw psycopg connection of this thread's Django connection, so its writes
    are in the import's transaction. Between start() and the next flush() the main thread must not
    query (it would wait for the COPY under way), only queue rows. Foreign keys are checked as each
    COPY ends (SET CONSTRAINTS ALL IMMEDIATE, DEFERRED again at the end) so that the checks too
    overlap the parsing instead of all running at COMMIT; parents are always queued before children.
    """

    def __init__(self):
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self.raw = connection.connection
        self.queue = queue.Queue()
        self.held = []  # queued before start()
        self.started = False
        self.error = None
        self.abandoned = False
        self.thread = threading.Thread(target=self._work, name="prm800k-import-copy", daemon=True)
        self.thread.start()

    def reserve(self, model, n):
        return allocate_ids(model, n)

    def create(self, model, fields, rows, ids=None):
        if ids is None:
            ids = allocate_ids(model, len(rows))
        self._put(model, [model._meta.pk.name, *fields], [(i, *row) for i, row in zip(ids, rows)])
        return ids[:len(rows)]

    def insert(self, model, fields, rows):
        self._put(model, fields, rows)

    def _put(self, model, fields, rows):
        if not rows:
            return
        if self.started:
            self.queue.put((model, fields, rows))
        else:
            self.held.append((model, fields, rows))

    def start(self):
        """Let the helper write what is queued, and from now on what gets queued."""
        self.started = True
        for item in self.held:
            self.queue.put(item)
        self.held = []

    def _work(self):
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                if self.error is None and not self.abandoned:  # after an error, only drain
                    copy_rows(self.raw, *item)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread by flush()
                self.error = exc
            finally:
                self.queue.task_done()

    def flush(self):
        """Wait until everything queued is written; raise a write's error here, as Django's."""
        self.start()
        self.queue.join()
        self.started = False
        if self.error is not None:
            with connection.wrap_database_errors:
                raise self.error

    def finish(self):
        """All written: give the transaction back its deferred checks."""
        self.flush()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def close(self):
        """On any exit, the helper stops (after what it was given) before the transaction ends."""
        self.held = []
        self.abandoned = True  # after finish() nothing is left; on an error, what is left is not written
        self.queue.put(None)
        self.thread.join()
