"""Exports for training, beside PRM800K's: TRL stepwise rows, preference pairs, a Hugging Face dataset.

All read annotations through the same ExportFilters as the PRM800K export, in id-ordered chunks
with bounded memory, and return counts, the sha256 of the bytes written and `stats` (what was
made, what was left out and why) that the export job keeps in `Export.provenance`.
Which text and label each step gets, and how pairs are chosen: labeling.formats.training.
"""
import hashlib
import json
import shutil
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from labeling.formats.training import (PreferenceOptions, StepwiseOptions, annotation_steps, preference_pairs,
                                       solution_side, solution_text, step_labels)
from labeling.models import Completion, Problem, Solution, StepLabel
from labeling.services.data.prm800k_export import ExportFilters, ExportResult

CHUNK = 500  # annotations (stepwise) or problems (pairs) per round of queries
PROBLEM_CACHE = 50_000
HF_BATCH = 1000  # rows per Arrow record batch / parquet row group
# Counted in every stats dict, zero or not, so an empty export still says what it looked at.
STEPWISE_STATS = ("annotations", "rows", "steps", "skipped_no_rated_step", "skipped_neutral")
PAIR_STATS = ("problems", "problems_with_pairs", "pairs", "pairs_verified", "steps")


@dataclass
class TrainingExportResult(ExportResult):
    stats: dict = field(default_factory=dict)


class _HashingWriter:
    """Counts and hashes what goes to `out`. Not seekable, so zipfile streams (data descriptors)
    instead of seeking back, and the hash is that of the file as it lies on disk."""

    def __init__(self, out):
        self.out, self.digest, self.bytes = out, hashlib.sha256(), 0

    def write(self, data):
        self.out.write(data)
        self.digest.update(data)
        self.bytes += len(data)
        return len(data)

    def tell(self):
        return self.bytes

    def flush(self):
        self.out.flush()


# --- stepwise rows -----------------------------------------------------------------------------------

def annotation_labels(annotation_ids):
    """Step rows and completions of some annotations, shaped for `annotation_steps`: two queries."""
    steps, completions = {}, {}
    for aid, *step in StepLabel.objects.filter(annotation_id__in=annotation_ids).order_by("annotation_id", "index") \
            .values_list("annotation_id", "index", "chosen_completion", "human_text", "human_rating"):
        steps.setdefault(aid, []).append(step)
    for aid, sindex, *completion in Completion.objects.filter(annotation_id__in=annotation_ids) \
            .order_by("annotation_id", "step_index", "index") \
            .values_list("annotation_id", "step_index", "index", "text", "rating"):
        completions.setdefault(aid, {}).setdefault(sindex, []).append(completion)
    return steps, completions


def stepwise_rows(filters: ExportFilters, *, options: StepwiseOptions, stats: Counter, progress=None, chunk=CHUNK):
    """Yield one dict per annotation with a rated step: ids, round, prompt, completions, ratings, labels."""
    qs = filters.queryset().order_by("id")
    total = qs.count() if progress else 0
    problems, last, seen = {}, 0, 0
    while True:
        header = list(qs.filter(id__gt=last).values_list("id", "problem_id", "solution_id", "round__number")[:chunk])
        if not header:
            return
        last = header[-1][0]
        ids = [row[0] for row in header]
        wanted = {row[1] for row in header} - problems.keys()
        if len(problems) + len(wanted) > PROBLEM_CACHE:
            problems, wanted = {}, {row[1] for row in header}
        problems.update(Problem.objects.filter(id__in=wanted).values_list("id", "text"))
        steps, completions = annotation_labels(ids)
        for aid, pid, sid, generation in header:
            stats["annotations"] += 1
            path = annotation_steps(steps.get(aid, []), completions.get(aid, {}))
            if not path:
                stats["skipped_no_rated_step"] += 1
                continue
            ratings = [rating for _, rating in path]
            labels = step_labels(ratings, options.neutral)
            if labels is None:
                stats["skipped_neutral"] += 1
                continue
            stats["rows"] += 1
            stats["steps"] += len(path)
            stats["rows_ending_in_error"] += ratings[-1] == -1
            for rating in ratings:
                stats[f"rating_{rating}"] += 1
            stats["labels_true"] += sum(labels)
            stats["labels_false"] += len(labels) - sum(labels)
            yield {"prompt": problems[pid], "completions": [text for text, _ in path], "labels": labels,
                   "ratings": ratings, "annotation_id": aid, "problem_id": pid, "solution_id": sid,
                   "round": generation}
        seen += len(header)
        if progress:
            progress(seen, total)


def _stats(counter, **extra):
    return {**{k: counter[k] for k in sorted(counter)}, **extra}


def _jsonl(out, rows, result):
    writer = _HashingWriter(out)
    for row in rows:
        writer.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        result.records += 1
    result.sha256, result.bytes = writer.digest.hexdigest(), writer.bytes
    return result


def trl_export(*, out, filters: ExportFilters, progress=None, options=StepwiseOptions()) -> TrainingExportResult:
    """TRL's stepwise supervision: {"prompt", "completions", "labels"} per line, as PRMTrainer reads them."""
    stats, result = Counter(dict.fromkeys(STEPWISE_STATS, 0)), TrainingExportResult()
    rows = ({"prompt": r["prompt"], "completions": r["completions"], "labels": r["labels"]}
            for r in stepwise_rows(filters, options=options, stats=stats, progress=progress))
    _jsonl(out, rows, result)
    result.steps = stats["steps"]
    result.stats = _stats(stats)
    return result


# --- preference pairs --------------------------------------------------------------------------------

def _problem_source(filters, options):
    """Rows whose problem_id is the export's scope: labeled problems, or every problem with a solution."""
    if options.problems == "labeled":
        return filters.queryset().filter(solution__isnull=False)
    return Solution.objects.all()


def _problem_pages(source, chunk):
    """Lists of problem ids, ascending."""
    last = 0
    while True:
        page = list(source.filter(problem_id__gt=last).order_by("problem_id")
                    .values_list("problem_id", flat=True).distinct()[:chunk])
        if not page:
            return
        last = page[-1]
        yield page


def _human_verdicts(filters, problem_ids):
    """solution id -> "error" | "ok" from the exported annotations of these problems' solutions."""
    annotations = filters.queryset().filter(solution__problem_id__in=problem_ids)
    # Completion 0 of a phase-2 step is the solution's own step (PRM800K's layout, and submission's).
    errors = set(Completion.objects.filter(annotation__in=annotations, index=0, rating=-1)
                 .values_list("annotation__solution_id", flat=True))
    finished = set(annotations.filter(finish_reason="solution").values_list("solution_id", flat=True))
    return {**{sid: "ok" for sid in finished}, **{sid: "error" for sid in errors}}


def preference_rows(filters: ExportFilters, *, options: PreferenceOptions, stats: Counter, progress=None,
                    chunk=CHUNK):
    """Yield {"prompt", "chosen", "rejected", "verified", "problem_id", "chosen_solution_id",
    "rejected_solution_id"}, problems in id order."""
    source = _problem_source(filters, options)
    total = source.values("problem_id").distinct().count() if progress else 0
    done = 0
    for page in _problem_pages(source, chunk):
        human = _human_verdicts(filters, page)
        sides = {}
        for sid, pid, is_correct in Solution.objects.filter(problem_id__in=page).order_by("problem_id", "id") \
                .values_list("id", "problem_id", "is_correct"):
            side, checked = solution_side(is_correct, human.get(sid))
            stats[f"solutions_{side or 'left_out'}"] += 1
            stats["solutions_left_out_conflicting"] += side is None and is_correct is False
            if side:
                stats[f"solutions_{side}_human_checked"] += checked
                sides.setdefault(pid, ([], []))[side == "incorrect"].append((sid, checked))
        pairs = {pid: preference_pairs(correct, incorrect, cap=options.pairs_per_problem)
                 for pid, (correct, incorrect) in sides.items()}
        pairs = {pid: p for pid, p in pairs.items() if p}
        needed = {s[0] for p in pairs.values() for pair in p for s in pair}
        steps = dict(Solution.objects.filter(id__in=needed).values_list("id", "steps"))
        prompts = dict(Problem.objects.filter(id__in=pairs.keys()).values_list("id", "text"))
        stats["problems"] += len(page)
        stats["problems_with_pairs"] += len(pairs)
        for pid in sorted(pairs):
            for (chosen, chosen_checked), (rejected, rejected_checked) in pairs[pid]:
                stats["pairs"] += 1
                stats["pairs_verified"] += chosen_checked and rejected_checked
                stats["steps"] += len(steps[chosen]) + len(steps[rejected])
                yield {"prompt": prompts[pid], "chosen": solution_text(steps[chosen]),
                       "rejected": solution_text(steps[rejected]), "verified": chosen_checked and rejected_checked,
                       "problem_id": pid, "chosen_solution_id": chosen, "rejected_solution_id": rejected}
        done += len(page)
        if progress:
            progress(done, total)


def preference_export(*, out, filters: ExportFilters, progress=None,
                      options=PreferenceOptions()) -> TrainingExportResult:
    """Preference pairs for DPO / iterative RPO, one JSON object per line."""
    stats, result = Counter(dict.fromkeys(PAIR_STATS, 0)), TrainingExportResult()
    _jsonl(out, preference_rows(filters, options=options, stats=stats, progress=progress), result)
    result.steps = stats["steps"]
    result.stats = _stats(stats)
    return result


# --- Hugging Face datasets ---------------------------------------------------------------------------

def hf_features():
    from datasets import Features, List, Value
    return Features({
        "prompt": Value("string"), "completions": List(Value("string")), "labels": List(Value("bool")),
        "ratings": List(Value("int8")), "annotation_id": Value("int64"), "problem_id": Value("int64"),
        "solution_id": Value("int64"), "round": Value("int64")})


def hf_export(*, out, filters: ExportFilters, progress=None, options=StepwiseOptions()) -> TrainingExportResult:
    """A zip of `dataset/` (Dataset.save_to_disk) and `data.parquet`: the stepwise rows with ids and ratings.

    Rows go to Arrow and parquet in record batches, so memory holds one batch; the dataset is the
    Arrow file memory-mapped, then saved. Built in a temporary folder, zipped into `out`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset
    from datasets.table import MemoryMappedTable

    stats, result = Counter(dict.fromkeys(STEPWISE_STATS, 0)), TrainingExportResult()
    schema = hf_features().arrow_schema
    with tempfile.TemporaryDirectory(prefix="stepwise-hf-") as tmp:
        tmp = Path(tmp)
        rows = stepwise_rows(filters, options=options, stats=stats, progress=progress)
        with pq.ParquetWriter(tmp / "data.parquet", schema) as parquet, pa.OSFile(str(tmp / "rows.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, schema) as arrow:
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == HF_BATCH:
                    _write_batch(batch, schema, parquet, arrow)
                    batch = []
            if batch:
                _write_batch(batch, schema, parquet, arrow)
        # The fingerprint (kept in state.json) is the rows' hash, not a random one: the same labels give
        # the same archive, byte for byte.
        table = MemoryMappedTable.from_file(str(tmp / "rows.arrow"))
        Dataset(table, fingerprint=_file_sha256(tmp / "rows.arrow")[:16]).save_to_disk(str(tmp / "dataset"))
        del table
        writer = _HashingWriter(out)
        with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((tmp / "dataset").rglob("*")) + [tmp / "data.parquet"]:
                if path.is_file():
                    _zip_file(archive, path, path.relative_to(tmp).as_posix())
    result.records, result.steps = stats["rows"], stats["steps"]
    result.sha256, result.bytes = writer.digest.hexdigest(), writer.bytes
    result.stats = _stats(stats, files=["dataset/", "data.parquet"])
    return result


def _write_batch(rows, schema, parquet, arrow):
    import pyarrow as pa
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    parquet.write_batch(batch)
    arrow.write_batch(batch)


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _zip_file(archive, path, name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: same rows, same archive bytes
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.file_size = path.stat().st_size  # lets zipfile choose zip64 itself for a file over 2 GiB
    with open(path, "rb") as source, archive.open(info, "w") as target:
        shutil.copyfileobj(source, target, 1 << 20)
