"""Named evaluation sets: public benchmarks and the project's own labels, in and out in ProcessBench's format.

An `EvaluationSet` holds `EvaluationItem`s, each a problem, its steps and the earliest erroneous step
(-1: none), with a subset name (ProcessBench's gsm8k, math, olympiadbench, omnimath; "prm800k"; or
the project's own). Items are self-contained: they create no Problem or Solution, so a benchmark
never enters a round, a training snapshot or an export by the back door.

- `evaluation_set_import_processbench`: a ProcessBench file (JSON list or JSONL), one subset per file
  (named by `subset`, by the file's name, gsm8k.json, or by each record's id prefix, "math-12"); several
  files make one set. All or nothing; importing the same file again adds nothing; another file for a
  subset already there is refused.
- `evaluation_set_import_prm800k`: a PRM800K label file through the PRM800K import (all or nothing, one
  transaction with the set), keeping the records of test-split problems: a trajectory per
  annotation, the chosen step up to and including the first -1, as evaluation reads the project's own
  held-out labels (labeling.services.training.evaluation.Trajectory). A trajectory given up on has no
  known first error and is left out. `mark_test` first puts the file's unassigned problems in split
  "test" (refusing problems in "train").
- `evaluation_set_from_labels`: the project's own labeled trajectories as a set: split "test" (the
  held-out set, role test) or a seeded, stratified `fraction` of the split-"train" problems (role
  dev, for choosing thresholds; never test problems).
- `evaluation_set_export`: any set back out as a ProcessBench JSON list.

`overlap` in each import's result counts items whose problem text is a train-split problem's.
"""
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from labeling.core.draws import Drawable, split_for_validation
from labeling.errors import DataError
from labeling.formats import processbench
from labeling.formats.jsonl import read_jsonl
from labeling.formats.training import annotation_steps
from labeling.models import Annotation, EvaluationItem, EvaluationSet, Problem, Split, text_sha256
from labeling.services.data.training_exports import annotation_pages

BATCH = 1000


@dataclass
class SetImportResult:
    evaluation_set: EvaluationSet
    subset: str
    created: int = 0
    skipped: int = 0  # the same file imported again
    left_out: dict = field(default_factory=dict)  # reason -> count
    overlap: int = 0  # items whose problem is a train-split problem


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _set_for(name, *, role, source, description=""):
    """The named set, created if new; a set of another role or source is refused."""
    if not name or not name.strip():
        raise DataError("an evaluation set needs a name", field="name")
    evaluation_set, created = EvaluationSet.objects.get_or_create(
        name=name, defaults={"role": role, "source": source, "description": description})
    if not created and (evaluation_set.role != role or evaluation_set.source != source):
        raise DataError(f"evaluation set {name!r} exists as a {evaluation_set.role} set of {evaluation_set.source} "
                        f"items; choose another name", field="name")
    return evaluation_set


def _subsets_of(path, subset, records):
    """The subset of each record: `subset` if given, else the file's name when it is one (gsm8k.json), else
    each id's prefix when every id has a known one ("math-12": ProcessBench's ids)."""
    stem = Path(path).name.split(".")[0]
    if subset is None and stem in processbench.SUBSETS:
        subset = stem
    if subset is None:
        prefixes = [rec["id"].split("-")[0] for _, rec in records]
        if all(p in processbench.SUBSETS for p in prefixes):
            return prefixes
        raise DataError(f"cannot tell the subset from the file's name or ids; give one (e.g. "
                        f"{', '.join(processbench.SUBSETS)})", file=path, field="subset")
    if not subset.replace("_", "").replace("-", "").isalnum() or len(subset) > 64:
        raise DataError(f"a subset name is letters, digits, '-' and '_' (at most 64), got {subset!r}", field="subset")
    return [subset] * len(records)


def _overlap(problem_texts) -> int:
    hashes = {text_sha256(t) for t in problem_texts}
    found = set()
    hashes = list(hashes)
    for start in range(0, len(hashes), BATCH):
        found.update(Problem.objects.filter(text_hash__in=hashes[start:start + BATCH], split=Split.TRAIN)
                     .values_list("text_hash", flat=True))
    return sum(text_sha256(t) in found for t in problem_texts)


def _already(evaluation_set, subsets, sha, path):
    """True when this file was imported into the set before; DataError when one of its subsets came from another."""
    if any(f["sha256"] == sha for f in evaluation_set.files):
        return True
    present = set(evaluation_set.items.filter(subset__in=set(subsets)).values_list("subset", flat=True))
    if present:
        raise DataError(f"evaluation set {evaluation_set.name!r} already has subset {', '.join(sorted(present))} "
                        "from another file", file=path, field="subset")
    return False


def _record_file(evaluation_set, path, sha, subsets):
    entry = {"name": Path(path).name, "sha256": sha, "subsets": sorted(set(subsets))}
    evaluation_set.files = [*evaluation_set.files, entry]
    evaluation_set.save(update_fields=["files"])


@transaction.atomic
def evaluation_set_import_processbench(*, path, name="processbench", subset=None,
                                       role=EvaluationSet.Role.TEST) -> SetImportResult:
    """Import one ProcessBench file into the set `name`. All or nothing; see the module."""
    records = processbench.read(path)  # every record checked before anything is written
    subsets = _subsets_of(path, subset, records)
    seen = {}
    for ((kind, where), rec), subset_of in zip(records, subsets):
        key = (subset_of, rec["id"])
        if key in seen:
            raise DataError(f"id {rec['id']!r} appears twice in subset {subset_of} (first at {seen[key]})", file=path,
                            **({"line": where} if kind == "line" else {"field": f"[{where}].id"}))
        seen[key] = f"line {where}" if kind == "line" else f"[{where}]"
    sha = file_sha256(path)
    evaluation_set = _set_for(name, role=role, source=EvaluationSet.Source.PROCESSBENCH)
    result = SetImportResult(evaluation_set=evaluation_set, subset=", ".join(dict.fromkeys(subsets)))
    if _already(evaluation_set, subsets, sha, path):
        result.skipped = len(records)
        return result
    start = (evaluation_set.items.aggregate(n=Max("position"))["n"] or -1) + 1
    EvaluationItem.objects.bulk_create([
        EvaluationItem(evaluation_set=evaluation_set, position=start + k, subset=subset_of, source_id=rec["id"],
                       generator=rec["generator"], problem=rec["problem"], steps=rec["steps"], label=rec["label"],
                       final_answer_correct=rec["final_answer_correct"])
        for k, ((_, rec), subset_of) in enumerate(zip(records, subsets))], batch_size=BATCH)
    _record_file(evaluation_set, path, sha, subsets)
    result.created = len(records)
    result.overlap = _overlap([rec["problem"] for _, rec in records])
    return result


# --- sets made of labeled trajectories ---------------------------------------------------------------

def _trajectory_items(annotations, *, subset, left_out):
    """(annotation id, problem text, steps, gold, final_answer_correct) per annotation whose first error is known."""
    fields = ("problem__text", "finish_reason", "solution__is_correct")
    for header, steps, completions in annotation_pages(annotations, fields):
        for aid, problem, finish_reason, correct in header:
            path = annotation_steps(steps.get(aid, []), completions.get(aid, {}))
            if not path:
                left_out["no rated step"] = left_out.get("no rated step", 0) + 1
                continue
            if path[-1][1] == -1:
                gold = len(path) - 1
            elif finish_reason == "solution":
                gold = -1
            else:
                left_out["first error unknown"] = left_out.get("first error unknown", 0) + 1
                continue
            yield aid, problem, [text for text, _ in path], gold, correct


def _fill(evaluation_set, annotations, *, subset, result):
    start = (evaluation_set.items.aggregate(n=Max("position"))["n"] or -1) + 1
    batch, texts = [], []
    for aid, problem, steps, gold, correct in _trajectory_items(annotations, subset=subset, left_out=result.left_out):
        batch.append(EvaluationItem(evaluation_set=evaluation_set, position=start + result.created, subset=subset,
                                    source_id=f"{subset}-{aid}", problem=problem, steps=steps, label=gold,
                                    final_answer_correct=correct, annotation_id=aid))
        texts.append(problem)
        result.created += 1
        if len(batch) >= BATCH:
            EvaluationItem.objects.bulk_create(batch)
            batch = []
    EvaluationItem.objects.bulk_create(batch)
    result.overlap = _overlap(texts)


def _labels():
    return Annotation.objects.filter(is_quality_control=False, is_screening=False)


@transaction.atomic
def evaluation_set_import_prm800k(*, path, name="prm800k-test", subset="prm800k", mark_test=False) -> SetImportResult:
    """Import a PRM800K label file and make its test-split records the set `name` (see the module)."""
    from labeling.services.data.prm800k_import import prm800k_import

    prm800k_import(path=path)  # validates every line first; any error rolls this whole function back
    hashes = [hashlib.sha256(text.encode("utf-8")).hexdigest() for _, text, _ in read_jsonl(path)]
    annotations = _labels().filter(source_hash__in=hashes)
    screening = Annotation.objects.filter(source_hash__in=hashes).count() - annotations.count()
    if mark_test:
        problems = Problem.objects.filter(annotations__in=annotations).distinct()
        trained = problems.filter(split=Split.TRAIN).values_list("source_id", "text")[:3]
        if trained:
            shown = "; ".join((sid or text[:60]) for sid, text in trained)
            raise DataError(f"--mark-test: problems of this file are in split 'train' ({shown}); a problem trained on "
                            "cannot be a test problem", file=path)
        Problem.objects.filter(pk__in=problems.filter(split=Split.NONE).values("pk")).update(split=Split.TEST)
    picked = annotations.filter(problem__split=Split.TEST)
    if not picked.exists():
        raise DataError("no record of this file is of a test-split problem (import the test problems with "
                        "`import_problems ... --split test` first, or pass --mark-test)", file=path)
    evaluation_set = _set_for(name, role=EvaluationSet.Role.TEST, source=EvaluationSet.Source.PRM800K)
    sha = file_sha256(path)
    result = SetImportResult(evaluation_set=evaluation_set, subset=subset)
    if _already(evaluation_set, [subset], sha, path):
        result.skipped = picked.count()
        return result
    result.left_out["not a test-split problem"] = annotations.count() - picked.count()
    result.left_out["quality control or screening"] = screening
    _fill(evaluation_set, picked, subset=subset, result=result)
    _record_file(evaluation_set, path, sha, [subset])
    return result


@transaction.atomic
def evaluation_set_from_labels(*, name, split=Split.TEST, fraction=None, seed=0, subset=None) -> SetImportResult:
    """The project's labeled trajectories as a set: split "test" -> a test set; split "train" with `fraction`
    -> a dev set of that stratified share of the labeled train problems (seeded)."""
    if split not in (Split.TEST, Split.TRAIN):
        raise DataError(f"split must be 'test' or 'train', got {split!r}", field="split")
    annotations = _labels().filter(problem__split=split)
    if split == Split.TRAIN:
        if fraction is None or not 0 < fraction < 1:
            raise DataError("a dev set of train problems needs 0 < fraction < 1", field="fraction")
        problems = Problem.objects.filter(pk__in=annotations.values("problem_id")).values_list("id", "subject", "level")
        _, dev = split_for_validation([Drawable(*p) for p in problems], fraction=fraction, seed=seed)
        annotations = annotations.filter(problem_id__in=dev)
    role = EvaluationSet.Role.TEST if split == Split.TEST else EvaluationSet.Role.DEV
    if EvaluationSet.objects.filter(name=name).exists():
        raise DataError(f"an evaluation set named {name!r} exists already", field="name")
    evaluation_set = _set_for(name, role=role, source=EvaluationSet.Source.STEPWISE,
                              description=f"labels of split {split}" + (f", fraction {fraction}, seed {seed}"
                                                                        if fraction else ""))
    result = SetImportResult(evaluation_set=evaluation_set, subset=subset or f"stepwise-{split}")
    _fill(evaluation_set, annotations, subset=result.subset, result=result)
    if not result.created:
        raise DataError(f"no labeled trajectory of a split-{split} problem with a known first error", field="split")
    return result


# --- export ------------------------------------------------------------------------------------------

def evaluation_set_records(evaluation_set, *, subset=None):
    """ProcessBench records of the set (one subset, or all), in item order, streamed."""
    items = evaluation_set.items.order_by("position")
    if subset:
        items = items.filter(subset=subset)
    for item in items.iterator(chunk_size=BATCH):
        yield processbench.record(id=item.source_id, generator=item.generator, problem=item.problem,
                                  steps=item.steps, final_answer_correct=item.final_answer_correct, label=item.label)


def evaluation_set_export(*, evaluation_set, out, subset=None) -> int:
    """Write the set (or one subset) to the path `out` as a ProcessBench JSON list; the number of records."""
    count = 0

    def counted():
        nonlocal count
        for rec in evaluation_set_records(evaluation_set, subset=subset):
            count += 1
            yield rec

    with open(out, "w", encoding="utf-8") as fh:
        processbench.write(counted(), fh)
    return count
