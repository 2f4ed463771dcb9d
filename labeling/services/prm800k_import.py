"""Import PRM800K label files: streamed, validated, all-or-nothing, idempotent.

Lines are read and validated in chunks and written with bulk inserts inside one transaction, so a
bad line anywhere rolls back everything the file had written. A line already imported (same
sha256) is skipped, so importing a file twice adds nothing.
"""
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q

from labeling.bulk import insert_rows
from labeling.formats import prm800k
from labeling.formats.errors import DataError
from labeling.formats.jsonl import read_jsonl
from labeling.models import (Annotation, Annotator, Completion, ModelVersion, Problem, Round, Solution,
                             StepLabel, VerifierScore, text_sha256)

CHUNK = 2000


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
                _write_chunk(chunk, cache, result)
                chunk = []
                if progress:
                    progress(result)
        _write_chunk(chunk, cache, result)
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


def _write_chunk(chunk, cache, result):
    if not chunk:
        return
    existing = set(Annotation.objects.filter(source_hash__in=[r["source_hash"] for r in chunk])
                   .values_list("source_hash", flat=True))
    records = [r for r in chunk if r["source_hash"] not in existing]
    result.skipped += len(chunk) - len(records)
    if not records:
        return
    problems = _problem_rows(records, result)
    solutions = _solution_rows(records, problems, cache, result)
    annotators = cache.annotator_ids([r["labeler"] for r in records])
    annotations = []
    for r in records:
        problem = problems[text_sha256(r["problem"])]
        verbatim = _verbatim(r, problem, solutions)
        solution_id = solutions[(problem["id"], Solution.hash_steps(r["solution"]["steps"]))]["id"] \
            if r["solution"] else None
        annotations.append(Annotation(
            annotator_id=annotators[r["labeler"]], problem_id=problem["id"], solution_id=solution_id,
            round_id=cache.round_id(r["generation"]), phase=r["phase"],
            timestamp=r["moment"].replace(tzinfo=dt.timezone.utc),
            is_quality_control=r["is_qc"], is_screening=r["is_screening"],
            finish_reason=r["finish_reason"], total_time_ms=r["total_time"],
            selector_score=r["solution"]["score"] if r["solution"] else None,
            verbatim=verbatim, source_hash=r["source_hash"]))
    Annotation.objects.bulk_create(annotations, batch_size=500)
    step_rows, completion_rows = [], []
    for r, a in zip(records, annotations):
        for i, step in enumerate(r["steps"]):
            human = step["human"] or (None, None, None, None)
            step_rows.append((a.id, i, step["completions"] is None, step["chosen"], *human))
            for j, (text, rating, flagged) in enumerate(step["completions"] or ()):
                completion_rows.append((a.id, i, j, text, rating, flagged))
    insert_rows(StepLabel, ["annotation", "index", "completions_null", "chosen_completion", "human_text",
                            "human_rating", "human_source", "human_flagged"], step_rows)
    insert_rows(Completion, ["annotation", "step_index", "index", "text", "rating", "flagged"], completion_rows)
    result.created += len(records)
    result.steps += len(step_rows)


def _problem_rows(records, result):
    """Map text hash -> {id, answer, solution}, creating missing problems from the first record seen."""
    by_hash = {}
    for r in records:
        by_hash.setdefault(text_sha256(r["problem"]), r)
    found = {h: {"id": i, "answer": a, "solution": s} for h, i, a, s in
             Problem.objects.filter(text_hash__in=list(by_hash)).values_list("text_hash", "id", "answer", "solution")}
    new = [Problem(text=r["problem"], text_hash=h, answer=r["gt_answer"], solution=r["gt_solution"])
           for h, r in by_hash.items() if h not in found]
    Problem.objects.bulk_create(new, batch_size=500)
    result.problems_created += len(new)
    for p in new:
        found[p.text_hash] = {"id": p.id, "answer": p.answer, "solution": p.solution}
    # A phase-2 line may bring the reference solution of a problem first seen in phase 1.
    fill = {}
    for h, r in by_hash.items():
        if r["gt_solution"] and not found[h]["solution"]:
            found[h]["solution"] = fill[found[h]["id"]] = r["gt_solution"]
    for pid, text in fill.items():
        Problem.objects.filter(id=pid).filter(Q(solution__isnull=True) | Q(solution="")).update(solution=text)
    return found


def _solution_rows(records, problems, cache, result):
    keys = {}
    for r in records:
        if r["solution"]:
            pid = problems[text_sha256(r["problem"])]["id"]
            keys.setdefault((pid, Solution.hash_steps(r["solution"]["steps"])), r)
    found = {}
    for pid, h, i, ans in (Solution.objects.filter(problem_id__in={k[0] for k in keys},
                                                   steps_hash__in={k[1] for k in keys})
                           .values_list("problem_id", "steps_hash", "id", "final_answer")):
        found[(pid, h)] = {"id": i, "answer": ans}
    new = [Solution(problem_id=k[0], steps_hash=k[1], steps=r["solution"]["steps"],
                    final_answer=r["solution"]["answer"], generator="prm800k",
                    sampling={"generation": r["generation"]})
           for k, r in keys.items() if k not in found]
    Solution.objects.bulk_create(new, batch_size=500)
    result.solutions_created += len(new)
    result.solution_ids.extend(s.id for s in new)
    for s in new:
        found[(s.problem_id, s.steps_hash)] = {"id": s.id, "answer": s.final_answer}
    scores = [VerifierScore(solution_id=found[k]["id"], model_version_id=cache.selector_id(r["generation"]),
                            score=r["solution"]["score"])
              for k, r in keys.items() if r["solution"]["score"] is not None]
    VerifierScore.objects.bulk_create(scores, ignore_conflicts=True, batch_size=500)
    return found


def _verbatim(record, problem, solutions):
    """What the normalized rows would not give back byte for byte, kept as written."""
    out = {}
    if prm800k.format_timestamp(record["moment"]) != record["timestamp"]:
        out["timestamp"] = record["timestamp"]
    sol = record["solution"]
    rebuilt = prm800k.build_question(
        phase=record["phase"], problem=record["problem"], gt_answer=problem["answer"],
        gt_solution=problem["solution"],
        steps=sol and sol["steps"],
        answer=sol and solutions[(problem["id"], Solution.hash_steps(sol["steps"]))]["answer"],
        score=sol and sol["score"])
    if json.dumps(rebuilt) != json.dumps(record["question"]):
        out["question"] = record["question"]
    return json.dumps(out) if out else None
