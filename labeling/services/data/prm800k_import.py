"""Import PRM800K label files: streamed, validated, all-or-nothing, idempotent.

Lines are read and validated in chunks and written with bulk inserts inside one transaction, so a
bad line anywhere rolls back everything the file had written. A line already imported (same
sha256) is skipped, so importing a file twice adds nothing.

On PostgreSQL no model instance is built: a chunk's rows go in with COPY, their ids reserved from
the sequences first, and the COPYs run on a helper thread over the same connection (so in the same
transaction) while the main thread builds the chunk's remaining rows and then reads and validates
the next chunk: the database's work, foreign-key checks included, overlaps the Python work. The
main thread waits for those writes before it next queries. Elsewhere (SQLite, the embedded mode)
everything runs in order on the one thread, with the same rows.
"""
import datetime as dt
import hashlib
import json
import queue
import threading
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q

from labeling.services.data.bulk import allocate_ids, copy_rows, create_rows, insert_rows
from labeling.formats import prm800k
from labeling.errors import DataError
from labeling.formats.jsonl import read_jsonl
from labeling.models import (Annotation, Annotator, Completion, ModelVersion, Problem, Round, Solution,
                             StepLabel, VerifierScore, text_sha256)

CHUNK = 2000

ANNOTATION_FIELDS = ["annotator", "problem", "solution", "round", "phase", "timestamp", "is_quality_control",
                     "is_screening", "finish_reason", "total_time_ms", "selector_score", "verbatim",
                     "source_hash"]
STEP_FIELDS = ["annotation", "index", "completions_null", "chosen_completion", "human_text", "human_rating",
               "human_source", "human_flagged"]
COMPLETION_FIELDS = ["annotation", "step_index", "index", "text", "rating", "flagged"]
SOLUTION_FIELDS = ["problem", "steps_hash", "steps", "final_answer", "generator", "sampling"]
SCORE_FIELDS = ["solution", "model_version", "score"]


@dataclass
class ImportResult:
    lines: int = 0
    created: int = 0
    skipped: int = 0
    problems_created: int = 0
    solutions_created: int = 0
    steps: int = 0
    solution_ids: list = field(default_factory=list)


def prm800k_import(*, path, progress=None) -> ImportResult:
    result = ImportResult()
    seen = set()
    with transaction.atomic():
        cache = _Caches()
        sink = _PostgresSink() if connection.vendor == "postgresql" else _InlineSink()
        try:
            chunk = []
            for number, text, obj in read_jsonl(path):
                result.lines += 1
                try:
                    record = prm800k.parse(obj)
                except DataError as exc:
                    raise exc.located(file=path, line=number)
                record["source_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
                record["line"] = number
                if record["source_hash"] in seen:
                    result.skipped += 1
                    continue
                seen.add(record["source_hash"])
                chunk.append(record)
                if len(chunk) >= CHUNK:
                    _write_chunk(chunk, cache, result, sink)
                    chunk = []
                    if progress:
                        sink.flush()
                        progress(result)
            _write_chunk(chunk, cache, result, sink)
            sink.finish()
        finally:
            sink.close()  # on error: wait for the helper before the transaction is rolled back
    return result


class _InlineSink:
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


class _PostgresSink:
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


class _Caches:
    def __init__(self):
        self.annotators = {}
        self.rounds = {}
        self.models = {}

    def annotator_ids(self, labelers):
        missing = [u for u in labelers if u not in self.annotators]
        if missing:
            existing = dict(Annotator.objects.filter(labeler__in=missing).values_list("labeler", "id"))
            new = [Annotator(labeler=u) for u in set(missing) if u not in existing]
            Annotator.objects.bulk_create(new)
            existing.update({a.labeler: a.id for a in new})
            self.annotators.update(existing)
        return self.annotators

    def round_id(self, number):
        if number is None:
            return None
        if number not in self.rounds:
            self.rounds[number] = Round.objects.get_or_create(
                number=number, defaults={"name": f"PRM800K generation {number}"})[0].id
        return self.rounds[number]

    def selector_id(self, generation):
        """Pre-generated verifier scores came from the selector of their generation."""
        name = f"prm800k/selector-generation-{generation}"
        if name not in self.models:
            self.models[name] = ModelVersion.objects.get_or_create(
                name=name, defaults={"kind": ModelVersion.Kind.PRM,
                                     "how_made": "imported from PRM800K pre_generated_verifier_score"})[0].id
        return self.models[name]


def _write_chunk(chunk, cache, result, sink):
    if not chunk:
        return
    sink.flush()  # the previous chunk's rows are in: the lookups below see them
    hashes = [r["source_hash"] for r in chunk]
    existing = {row[0] for row in _select_in(Annotation, ["source_hash"], "source_hash", hashes)}
    records = [r for r in chunk if r["source_hash"] not in existing]
    result.skipped += len(chunk) - len(records)
    if not records:
        return
    for r in records:  # hashed once here, used as keys below
        r["problem_hash"] = text_sha256(r["problem"])
        r["steps_hash"] = Solution.hash_steps(r["solution"]["steps"]) if r["solution"] else None
    annotators = cache.annotator_ids([r["labeler"] for r in records])
    rounds = {g: cache.round_id(g) for g in {r["generation"] for r in records}}
    problems = _problem_rows(records, result, sink)
    solutions = _solution_rows(records, problems, cache, result, sink)
    ids = sink.reserve(Annotation, len(records))
    # No more queries for this chunk: the helper writes problems and solutions while the rows below
    # are built, then each batch as it is queued.
    sink.start()
    utc = dt.timezone.utc
    rows = []
    for r in records:
        problem = problems[r["problem_hash"]]
        sol = r["solution"]
        solution = solutions[(problem["id"], r["steps_hash"])] if sol else None
        rows.append((annotators[r["labeler"]], problem["id"], solution and solution["id"], rounds[r["generation"]],
                     r["phase"], r["moment"].replace(tzinfo=utc), r["is_qc"], r["is_screening"], r["finish_reason"],
                     r["total_time"], sol and sol["score"], _verbatim(r, problem, solution), r["source_hash"]))
    ids = sink.create(Annotation, ANNOTATION_FIELDS, rows, ids)
    step_rows = []
    add_step = step_rows.append
    no_human = (None, None, None, None)
    for r, aid in zip(records, ids):
        for i, step in enumerate(r["steps"]):
            add_step((aid, i, step["completions"] is None, step["chosen"], *(step["human"] or no_human)))
    sink.insert(StepLabel, STEP_FIELDS, step_rows)
    completion_rows = []
    add_completion = completion_rows.append
    for r, aid in zip(records, ids):
        for i, step in enumerate(r["steps"]):
            if step["completions"]:
                for j, (text, rating, flagged) in enumerate(step["completions"]):
                    add_completion((aid, i, j, text, rating, flagged))
    sink.insert(Completion, COMPLETION_FIELDS, completion_rows)
    result.created += len(records)
    result.steps += len(step_rows)


def _problem_rows(records, result, sink):
    """Map text hash -> {id, answer, solution}, creating missing problems.

    A new problem takes its answer from the first record of it and its reference solution from the
    first record that has one; a known problem without a reference solution gets it filled in from
    the first record that brings one (a phase-2 line after phase-1 lines).
    """
    first, reference = {}, {}
    for r in records:
        h = r["problem_hash"]
        first.setdefault(h, r)
        if r["gt_solution"] and h not in reference:
            reference[h] = r["gt_solution"]
    found = {h: {"id": i, "answer": a, "solution": s} for h, i, a, s in
             _select_in(Problem, ["text_hash", "id", "answer", "solution"], "text_hash", list(first))}
    new = [(h, r, r["gt_solution"] or reference.get(h, r["gt_solution"])) for h, r in first.items()
           if h not in found]
    ids = sink.create(Problem, ["text", "text_hash", "answer", "solution"],
                      [(r["problem"], h, r["gt_answer"], solution) for h, r, solution in new])
    result.problems_created += len(new)
    for pid, (h, r, solution) in zip(ids, new):
        found[h] = {"id": pid, "answer": r["gt_answer"], "solution": solution}
    fill = {}
    for h, text in reference.items():
        problem = found[h]
        if not problem["solution"]:
            problem["solution"] = fill[problem["id"]] = text
    if fill and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Problem._meta.db_table} p SET solution = v.solution "
                           "FROM unnest(%s::bigint[], %s::text[]) AS v(id, solution) "
                           "WHERE p.id = v.id AND (p.solution IS NULL OR p.solution = '')",
                           [list(fill), list(fill.values())])
    else:
        for pid, text in fill.items():
            Problem.objects.filter(id=pid).filter(Q(solution__isnull=True) | Q(solution="")).update(solution=text)
    return found


def _solution_rows(records, problems, cache, result, sink):
    """Map (problem id, steps hash) -> {id, answer}, creating missing solutions and their verifier scores."""
    keys = {}
    for r in records:
        if r["solution"]:
            keys.setdefault((problems[r["problem_hash"]]["id"], r["steps_hash"]), r)
    found = {}
    for pid, h, i, ans in _known_solutions(list(keys)):
        found[(pid, h)] = {"id": i, "answer": ans}
    new = [(k, r) for k, r in keys.items() if k not in found]
    ids = sink.create(Solution, SOLUTION_FIELDS,
                      [(k[0], k[1], r["solution"]["steps"], r["solution"]["answer"], "prm800k",
                        {"generation": r["generation"]}) for k, r in new])
    result.solutions_created += len(new)
    result.solution_ids.extend(ids)
    for sid, (k, r) in zip(ids, new):
        found[k] = {"id": sid, "answer": r["solution"]["answer"]}
    # A new solution has no score yet: straight in. A known one may have it already: skip that one.
    sink.insert(VerifierScore, SCORE_FIELDS,
                [(sid, cache.selector_id(r["generation"]), r["solution"]["score"])
                 for sid, (k, r) in zip(ids, new) if r["solution"]["score"] is not None])
    created = {k for k, _ in new}
    old = [VerifierScore(solution_id=found[k]["id"], model_version_id=cache.selector_id(r["generation"]),
                         score=r["solution"]["score"])
           for k, r in keys.items() if k not in created and r["solution"]["score"] is not None]
    if old:
        VerifierScore.objects.bulk_create(old, ignore_conflicts=True, batch_size=500)
    return found


def _select_in(model, fields, key, values):
    """values_list(*fields) of model's rows whose `key` is among values: one array parameter on
    PostgreSQL (not thousands of placeholders to quote client-side), the ORM elsewhere."""
    if not values:
        return []
    if connection.vendor == "postgresql":
        opts = model._meta
        columns = ", ".join(opts.get_field(f).column for f in fields)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {opts.db_table} WHERE {opts.get_field(key).column} = ANY(%s)",
                           [list(values)])
            return cursor.fetchall()
    return model.objects.filter(**{f"{key}__in": values}).values_list(*fields)


def _known_solutions(keys):
    """(problem_id, steps_hash, id, final_answer) of the solutions among keys that exist."""
    if not keys:
        return []
    if connection.vendor == "postgresql":
        # Pairs, not two IN lists: an index probe per key on (problem_id, steps_hash).
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT s.problem_id, s.steps_hash, s.id, s.final_answer FROM {Solution._meta.db_table} s "
                "JOIN unnest(%s::bigint[], %s::varchar[]) AS k(problem_id, steps_hash) "
                "ON s.problem_id = k.problem_id AND s.steps_hash = k.steps_hash",
                [[k[0] for k in keys], [k[1] for k in keys]])
            return cursor.fetchall()
    return (Solution.objects.filter(problem_id__in={k[0] for k in keys}, steps_hash__in={k[1] for k in keys})
            .values_list("problem_id", "steps_hash", "id", "final_answer"))


def _verbatim(record, problem, solution):
    """What the normalized rows would not give back byte for byte, kept as written (JSON text)."""
    out = {}
    if prm800k.format_timestamp(record["moment"]) != record["timestamp"]:
        out["timestamp"] = record["timestamp"]
    sol = record["solution"]
    rebuilt = prm800k.build_question(
        phase=record["phase"], problem=record["problem"], gt_answer=problem["answer"],
        gt_solution=problem["solution"], steps=sol and sol["steps"], answer=solution and solution["answer"],
        score=sol and sol["score"])
    if not _same_json(rebuilt, record["question"]):
        out["question"] = record["question"]
    return json.dumps(out) if out else None


def _same_json(a, b):
    """json.dumps(a) == json.dumps(b) for flat objects whose values are strings, numbers, null or lists of
    strings, without encoding either: same keys in the same order, and values equal and of one type (1
    and 1.0 are equal but serialize apart; for a float its repr decides, so -0.0 is not 0.0)."""
    if len(a) != len(b) or list(a) != list(b):
        return False
    for key, x in a.items():
        y = b[key]
        if type(x) is not type(y) or x != y or (type(x) is float and repr(x) != repr(y)):
            return False
    return True
