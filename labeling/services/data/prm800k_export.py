"""Export annotations as PRM800K JSONL, streamed in id-ordered chunks with bounded memory.

Per chunk of annotations: one query each for their problems (cached across chunks), solutions,
steps and completions, read as plain rows with raw SQL (no model instances, no per-row ORM
conversion), and the step and completion objects are built straight from the rows. On PostgreSQL
the rows of the next chunk are read by a helper thread over the same connection while this chunk's
lines are serialized, so the database's work overlaps the JSON encoding.
"""
import datetime as dt
import hashlib
import json
import re
import threading
from dataclasses import dataclass

from django.db import connection

from labeling.formats import prm800k
from labeling.formats import prm800k_rows
from labeling.models import Annotation, Completion, Problem, Solution, StepLabel

CHUNK = 2000


@dataclass
class ExportFilters:
    generation: int | None = None
    labeler: str | None = None
    exclude_qc: bool = False
    since: dt.datetime | None = None
    # Used by training snapshots (labeling.services.training.retraining): several rounds at once, no screening
    # answers, no held-out test problems, and only annotations up to an id (the labels as of a moment).
    generations: list[int] | None = None
    exclude_screening: bool = False
    exclude_test: bool = False
    until_id: int | None = None

    def queryset(self):
        qs = Annotation.objects.all()
        if self.generation is not None:
            qs = qs.filter(round__number=self.generation)
        if self.generations is not None:
            qs = qs.filter(round__number__in=self.generations)
        if self.labeler:
            qs = qs.filter(annotator__labeler=self.labeler)
        if self.exclude_qc:
            qs = qs.filter(is_quality_control=False)
        if self.exclude_screening:
            qs = qs.filter(is_screening=False)
        if self.exclude_test:
            qs = qs.exclude(problem__split="test")
        if self.since is not None:
            qs = qs.filter(timestamp__gte=self.since)
        if self.until_id is not None:
            qs = qs.filter(id__lte=self.until_id)
        return qs


@dataclass
class ExportResult:
    records: int = 0
    steps: int = 0
    sha256: str = ""
    bytes: int = 0


HEADER = ("id", "annotator__labeler", "timestamp", "round__number", "is_quality_control", "is_screening",
          "phase", "problem_id", "solution_id", "finish_reason", "total_time_ms", "selector_score", "verbatim")
PROBLEM_CACHE = 50_000  # problems kept between chunks (the lines of a big export share problems)
IN_BATCH = 500  # ids per IN (...) list where there is no array parameter


def prm800k_lines(filters: ExportFilters, *, chunk=CHUNK):
    """Yield (line, step_count) in annotation id order."""
    qs = filters.queryset().order_by("id")
    postgres = connection.vendor == "postgresql"
    reader = _Reader(postgres)

    def page(last):
        return qs.filter(id__gt=last).values_list(*HEADER)[:chunk]

    if not postgres:
        last = 0
        while True:
            rows = list(page(last))
            if not rows:
                return
            last = rows[-1][0]
            with connection.cursor() as cursor:
                yield from prm800k_rows.lines(rows, *reader.read(rows, cursor))
        return

    # PostgreSQL: the header query is compiled here (the ORM applies the filters) and run raw by the
    # helper, with the chunk's other rows; on PostgreSQL values_list converts none of these columns.
    connection.ensure_connection()
    raw = connection.connection

    def fetch(sql, params):
        with raw.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            return rows, (reader.read(rows, cursor) if rows else None)

    ahead = _Ahead(fetch, *page(0).query.sql_with_params())
    try:
        while True:
            with connection.wrap_database_errors:
                rows, data = ahead.result()
            if not rows:
                return
            ahead = _Ahead(fetch, *page(rows[-1][0]).query.sql_with_params())
            yield from prm800k_rows.lines(rows, *data)
    finally:
        ahead.wait()  # a consumer that stops early must not leave the helper on the connection


class _Ahead:
    """fn(*args) on a helper thread; result() waits for it and returns it or raises its error."""

    def __init__(self, fn, *args):
        self.value = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn, args), name="prm800k-export-read", daemon=True)
        self.thread.start()

    def _run(self, fn, args):
        try:
            self.value = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self.error = exc

    def wait(self):
        self.thread.join()

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


# --- JSON written by PostgreSQL ------------------------------------------------------------------
# On PostgreSQL the label steps of each annotation come back as one JSON text, built by the query
# below, and pre_generated_steps as the jsonb column's text; labeling.formats.prm800k_rows splices
# them into the line (and says how PostgreSQL's JSON text differs from json.dumps's).

def _json_object(keys, exprs):
    """SQL for the JSON text of an object: `keys` in order (PRM800K's), values from SQL expressions."""
    parts = [f"'{json.dumps(k)}: ' || {exprs[k]}" for k in keys]
    return "'{' || " + " || ', ' || ".join(parts) + " || '}'"


def _json_value(expr, kind):
    if kind == "text":
        return f"COALESCE(to_json({expr})::text, 'null')"
    return f"COALESCE(({expr})::text, 'null')"  # integers and booleans: 1, -1, true, false


_COMPLETION_JSON = _json_object(prm800k.COMPLETION_KEYS, {
    "text": _json_value("c.text", "text"), "rating": _json_value("c.rating", "number"),
    "flagged": _json_value("c.flagged", "bool")})
_HUMAN_JSON = _json_object(prm800k.HUMAN_KEYS, {
    "text": _json_value("s.human_text", "text"), "rating": _json_value("s.human_rating", "number"),
    "source": _json_value("s.human_source", "text"), "flagged": _json_value("s.human_flagged", "bool")})
_STEP_JSON = _json_object(prm800k.STEP_KEYS, {
    "completions": "CASE WHEN s.completions_null THEN 'null' ELSE COALESCE(c.list, '[]') END",
    "human_completion": f"CASE WHEN s.human_text IS NULL THEN 'null' ELSE {_HUMAN_JSON} END",
    "chosen_completion": _json_value("s.chosen_completion", "number")})


# (annotation_id, step count, JSON text of label.steps) of the annotations that @IN selects.
_LABEL_SQL = (
    f"SELECT s.annotation_id, count(*), '[' || string_agg({_STEP_JSON}, ', ' ORDER BY s.\"index\") || ']' "
    f"FROM {StepLabel._meta.db_table} s LEFT JOIN ("
    f"SELECT c.annotation_id, c.step_index, "
    f"'[' || string_agg({_COMPLETION_JSON}, ', ' ORDER BY c.\"index\") || ']' AS list "
    f"FROM {Completion._meta.db_table} c WHERE @IN(c.annotation_id) GROUP BY c.annotation_id, c.step_index) c "
    f"ON c.annotation_id = s.annotation_id AND c.step_index = s.\"index\" "
    f"WHERE @IN(s.annotation_id) GROUP BY s.annotation_id")


class _Reader:
    """Reads what a chunk of annotation rows needs besides themselves; keeps the problems it read."""

    def __init__(self, postgres):
        self.postgres = postgres
        self.problems = {}

    def read(self, rows, cursor):
        """(problems, solutions, labels, spliced): solutions map id -> (steps, final answer), labels map
        annotation id -> (steps, step count); steps are lists, or JSON text where `spliced`."""
        ids = [r[0] for r in rows]
        wanted = {r[7] for r in rows} - self.problems.keys()
        if wanted:
            if len(self.problems) + len(wanted) > PROBLEM_CACHE:
                self.problems = {}  # a new dict: the chunk being written keeps the old one
                wanted = {r[7] for r in rows}
            for pid, text, answer, solution in self._rows_in(
                    cursor, f"SELECT id, text, answer, solution FROM {Problem._meta.db_table} WHERE @IN(id)", wanted):
                self.problems[pid] = (text, answer, solution)
        solution_ids = {r[8] for r in rows if r[8]}
        if self.postgres:
            solutions = {sid: (prm800k_rows.ascii_json(steps), answer) for sid, steps, answer in self._rows_in(
                cursor, f"SELECT id, steps::text, final_answer FROM {Solution._meta.db_table} WHERE @IN(id)",
                solution_ids)}
            labels = {aid: (prm800k_rows.ascii_json(text), n) for aid, n, text in self._rows_in(cursor, _LABEL_SQL, ids)}
            return self.problems, solutions, labels, True
        solutions = {sid: (json.loads(steps) if isinstance(steps, (str, bytes)) else steps, answer)
                     for sid, steps, answer in self._rows_in(
                         cursor, f"SELECT id, steps, final_answer FROM {Solution._meta.db_table} WHERE @IN(id)",
                         solution_ids)}
        step_rows = self._rows_in(
            cursor, "SELECT annotation_id, \"index\", completions_null, chosen_completion, human_text, "
            f"human_rating, human_source, human_flagged FROM {StepLabel._meta.db_table} WHERE @IN(annotation_id)", ids)
        completion_rows = self._rows_in(
            cursor, f"SELECT annotation_id, step_index, \"index\", text, rating, flagged FROM "
            f"{Completion._meta.db_table} WHERE @IN(annotation_id)", ids)
        return self.problems, solutions, prm800k_rows.label_steps(step_rows, completion_rows), False

    def _rows_in(self, cursor, sql, ids):
        """Run `sql` with each @IN(column) in it made a condition that the column is among ids.

        A dense run of ids (an unfiltered export) is read as a range, sparse ids as an array
        (PostgreSQL) or IN lists.
        """
        ids = sorted(ids)
        if not ids:
            return []
        if ids[-1] - ids[0] < 2 * len(ids):
            return self._run(cursor, sql, "{0} >= %s AND {0} <= %s", [ids[0], ids[-1]])
        if self.postgres:
            return self._run(cursor, sql, "{0} = ANY(%s)", [ids])
        out = []
        for i in range(0, len(ids), IN_BATCH):
            part = ids[i:i + IN_BATCH]
            out.extend(self._run(cursor, sql, "{0} IN (%s)" % ", ".join(["%s"] * len(part)), part))
        return out

    @staticmethod
    def _run(cursor, sql, condition, params):
        sql, n = _IN.subn(lambda m: condition.format(m.group(1)), sql)
        cursor.execute(sql, params * n)
        return cursor.fetchall()


_IN = re.compile(r"@IN\(([\w.]+)\)")


def prm800k_export(*, out, filters: ExportFilters, progress=None) -> ExportResult:
    """Write the export to a binary file object; returns counts and the sha256 of what was written."""
    result = ExportResult()
    digest = hashlib.sha256()
    total = filters.queryset().count() if progress else 0
    for line, nsteps in prm800k_lines(filters):
        data = (line + "\n").encode("utf-8")
        out.write(data)
        digest.update(data)
        result.records += 1
        result.steps += nsteps
        result.bytes += len(data)
        if progress and result.records % CHUNK == 0:
            progress(result.records, total)
    result.sha256 = digest.hexdigest()
    return result
