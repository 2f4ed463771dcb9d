"""Exports for training, beside PRM800K's: TRL stepwise rows and preference pairs (the Hugging Face
dataset of the same stepwise rows is labeling.services.data.hf_export).

All read annotations through the same ExportFilters as the PRM800K export, in id-ordered chunks
with bounded memory, and return counts, the sha256 of the bytes written and `stats` (what was
made, what was left out and why) that the export job keeps in `Export.provenance`.
Which text and label each step gets, and how pairs are chosen: labeling.formats.training.
"""
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from labeling.formats.training import (PreferenceOptions, StepwiseOptions, annotation_steps, preference_pairs,
                                       solution_side, solution_text, step_labels)
from labeling.models import Completion, Problem, Solution, StepLabel
from labeling.services.data.prm800k_export import ExportFilters, ExportResult
from labeling.services.data.rollout_exports import consensus_rows, rollout_rows

CHUNK = 500  # annotations (stepwise) or problems (pairs) per round of queries
PROBLEM_CACHE = 50_000
# Counted in every stats dict, zero or not, so an empty export still says what it looked at.
STEPWISE_STATS = ("annotations", "rows", "steps", "skipped_no_rated_step", "skipped_neutral")
PAIR_STATS = ("problems", "problems_with_pairs", "pairs", "pairs_verified", "steps")


@dataclass
class TrainingExportResult(ExportResult):
    stats: dict = field(default_factory=dict)


class HashingWriter:
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


def file_sha256(path):
    """The sha256 of a file's bytes, read a block at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def annotation_pages(annotations, fields, *, chunk=CHUNK):
    """Yield (rows, steps, completions) for `annotations` in id order, `chunk` at a time: rows are
    values_list("id", *fields), steps and completions those of annotation_labels."""
    last = 0
    while True:
        rows = list(annotations.filter(id__gt=last).order_by("id").values_list("id", *fields)[:chunk])
        if not rows:
            return
        last = rows[-1][0]
        yield (rows, *annotation_labels([row[0] for row in rows]))


def stepwise_rows(filters: ExportFilters, *, options: StepwiseOptions, stats: Counter, progress=None, chunk=CHUNK):
    """Yield one dict per annotation with a rated step: ids, round, prompt, completions, ratings, labels."""
    qs = filters.queryset()
    total = qs.count() if progress else 0
    problems, seen = {}, 0
    for header, steps, completions in annotation_pages(qs, ("problem_id", "solution_id", "round__number"),
                                                       chunk=chunk):
        wanted = {row[1] for row in header} - problems.keys()
        if len(problems) + len(wanted) > PROBLEM_CACHE:
            problems, wanted = {}, {row[1] for row in header}
        problems.update(Problem.objects.filter(id__in=wanted).values_list("id", "text"))
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


def labeled_rows(filters: ExportFilters, *, options: StepwiseOptions, stats: Counter, progress=None):
    """The stepwise rows of `options.source`, each with `soft_labels` and `label_source`: human (the rows
    above; soft labels 1.0 / 0.0), rollout or consensus (labeling.services.data.rollout_exports). For
    consensus, `rows` and `steps` count the kept rows, `human_*` what the human pass looked at. both: the
    human rows, then the rollout rows."""
    if options.source == "rollout":
        yield from rollout_rows(filters, options=options, stats=stats, progress=progress)
        return
    human_stats = stats if options.source in ("human", "both") else Counter()
    rows = ({**row, "soft_labels": [float(x) for x in row["labels"]], "label_source": "human"}
            for row in stepwise_rows(filters, options=options, stats=human_stats, progress=progress))
    if options.source in ("human", "both"):
        yield from rows
        if options.source == "both":
            yield from rollout_rows(filters, options=options, stats=stats)
        return
    for row in consensus_rows(rows, options=options, stats=stats):
        stats["rows"] += 1
        stats["steps"] += len(row["labels"])
        yield row
    stats.update({f"human_{k}": v for k, v in human_stats.items()})


def export_stats(counter, **extra):
    return {**{k: counter[k] for k in sorted(counter)}, **extra}


def _jsonl(out, rows, result):
    writer = HashingWriter(out)
    for row in rows:
        writer.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        result.records += 1
    result.sha256, result.bytes = writer.digest.hexdigest(), writer.bytes
    return result


def trl_export(*, out, filters: ExportFilters, progress=None, options=StepwiseOptions()) -> TrainingExportResult:
    """TRL's stepwise supervision: {"prompt", "completions", "labels"} per line, as PRMTrainer reads them, and
    `label_source` (human, rollout, consensus: with --source both a file mixes two), a column PRMTrainer drops
    when it tokenizes (it keeps only what tokenize_row makes)."""
    stats, result = Counter(dict.fromkeys(STEPWISE_STATS, 0)), TrainingExportResult()
    rows = ({"prompt": r["prompt"], "completions": r["completions"], "labels": r["labels"],
             "label_source": r["label_source"]}
            for r in labeled_rows(filters, options=options, stats=stats, progress=progress))
    _jsonl(out, rows, result)
    result.steps = stats["steps"]
    result.stats = export_stats(stats)
    return result


# --- preference pairs --------------------------------------------------------------------------------

def _problem_source(filters, options):
    """Rows whose problem_id is the export's scope: labeled problems, or every problem with a solution."""
    if options.problems == "labeled":
        return filters.queryset().filter(solution__isnull=False)
    solutions = Solution.objects.all()
    return solutions.exclude(problem__split="test") if filters.exclude_test else solutions


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
    result.stats = export_stats(stats)
    return result
