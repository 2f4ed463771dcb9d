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
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q

from labeling.formats import prm800k
from labeling.formats.jsonl import parse_lines
from labeling.models import (Annotation, Annotator, Completion, ModelVersion, Problem, Round, Solution,
                             StepLabel, VerifierScore, text_sha256)
from labeling.services.data.bulk import InlineSink, PostgresSink

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
        sink = PostgresSink() if connection.vendor == "postgresql" else InlineSink()
        try:
            chunk = []
            for number, text, record in parse_lines(path, prm800k.parse):
                result.lines += 1
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
                     r["total_time"], sol and sol["score"], prm800k.verbatim(r, problem, solution), r["source_hash"]))
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
