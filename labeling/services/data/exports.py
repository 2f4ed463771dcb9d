"""Export jobs: formats by name, atomic file writes, and the background `Export` row lifecycle
(claimed, progressed, finished and failed by labeling.services.jobs.rows, as every job is).

A format is a writer `fn(*, out, filters, progress=None[, options])` into a binary file object,
an extension, and (for formats that take any) an options dataclass. A job keeps its options in
`Export.filters["options"]` and, once done, where its labels came from in `Export.provenance`.
"""
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils.dateparse import parse_datetime

from labeling.formats.math_shepherd import MathShepherdOptions
from labeling.formats.training import PreferenceOptions, StepwiseOptions
from labeling.models import Completion, Export, Problem, RolloutEstimate, Round, StepLabel
from labeling.services.data.prm800k_export import ExportFilters, prm800k_export
from labeling.services.data.hf_export import hf_export
from labeling.services.data.generator_pairs import GeneratorPairOptions, generator_pairs_export
from labeling.services.data.math_shepherd_export import math_shepherd_export
from labeling.services.data.training_exports import preference_export, trl_export
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_claim, job_fail, job_finish, job_progress
from workers import tasks

FORMATS = {"prm800k": prm800k_export, "trl": trl_export, "preference": preference_export, "hf": hf_export,
           "math_shepherd": math_shepherd_export, "generator_pairs": generator_pairs_export}
EXTENSIONS = {"prm800k": "jsonl", "trl": "jsonl", "preference": "jsonl", "hf": "zip", "math_shepherd": "jsonl",
              "generator_pairs": "jsonl"}
OPTIONS = {"trl": StepwiseOptions, "hf": StepwiseOptions, "preference": PreferenceOptions,
           "math_shepherd": MathShepherdOptions, "generator_pairs": GeneratorPairOptions}
# What models train on: their held-out (test-split) problems stay out unless an export asks for them.
# The PRM800K export is the label archive, byte-exact, and keeps every problem.
TRAINING_FORMATS = {"trl", "preference", "hf", "math_shepherd", "generator_pairs"}


def split_filters(fmt, filters: dict, *, include_test=False) -> dict:
    """`filters` with the test split left out of a training format unless `include_test`."""
    if fmt in TRAINING_FORMATS and not include_test:
        return {**filters, "exclude_test": True}
    return filters


def export_options(fmt, raw=None):
    """The format's options with defaults filled in, or None for a format that takes none (ValueError if bad)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    raw = {k: v for k, v in (raw or {}).items() if v is not None}
    kind = OPTIONS.get(fmt)
    if kind is None:
        if raw:
            raise ValueError(f"format {fmt} takes no options (got {', '.join(sorted(raw))})")
        return None
    unknown = set(raw) - {f.name for f in fields(kind)}
    if unknown:
        raise ValueError(f"format {fmt} has no option {', '.join(sorted(unknown))}")
    return kind(**raw)


def export_to_path(fmt, path, filters, progress=None, options=None):
    """Write to a temporary file beside `path`, then rename: a failed export leaves no partial file.

    mkstemp makes the file 0600, readable only by the worker's user; the web process that serves the
    download may run as another user (or another machine on shared storage), hence
    STEPWISE_EXPORT_FILE_MODE (default 0644), set before the rename so the file never appears unreadable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    extra = {} if options is None else {"options": options}
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), getattr(settings, "STEPWISE_EXPORT_FILE_MODE", 0o644))
            result = FORMATS[fmt](out=out, filters=filters, progress=progress, **extra)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return result


def export_provenance(*, filters: ExportFilters, fmt, options=None, stats=None) -> dict:
    """Where an export's labels came from: rounds and their selector models, annotation and label counts,
    the format's options, and what the format made of them (`stats`)."""
    annotations = filters.queryset()
    rounds = Round.objects.filter(id__in=annotations.values("round_id")).select_related("selector").order_by("number")
    splits = dict(Problem.objects.filter(id__in=annotations.values("problem_id")).order_by()
                  .values_list("split").annotate(n=Count("id")))
    ratings = dict(Completion.objects.filter(annotation__in=annotations).order_by()
                   .values_list("rating").annotate(n=Count("id")))
    selectors = {}
    round_rows = []
    for rnd in rounds:
        selector = rnd.selector and {"id": rnd.selector.id, "name": rnd.selector.name, "kind": rnd.selector.kind,
                                     "path": rnd.selector.path}
        round_rows.append({"number": rnd.number, "name": rnd.name, "selector": selector})
        if selector:
            selectors[selector["id"]] = selector
    source = getattr(options, "source", "human")
    return {
        "format": fmt,
        # human, rollout or consensus (StepwiseOptions.source); the rollouts behind the last two.
        "label_source": source,
        "rollouts": rollout_provenance(prover=options.prover) if source != "human" else None,
        "options": asdict(options) if options is not None else {},
        "rounds": round_rows,
        "selectors": [selectors[k] for k in sorted(selectors)],
        "test_split": "excluded" if filters.exclude_test else "included",
        # Problems behind the exported labels, by split ("unassigned" for none).
        "problem_splits": {(k or "unassigned"): splits[k] for k in sorted(splits)},
        "annotations": annotations.count(),
        "annotations_without_round": annotations.filter(round__isnull=True).count(),
        "step_labels": StepLabel.objects.filter(annotation__in=annotations).count(),
        "completion_ratings": {("unrated" if k is None else str(k)): ratings[k]
                               for k in sorted(ratings, key=lambda r: (r is None, r or 0))},
        "output": stats or {},
    }


def rollout_provenance(*, prover=""):
    """What rollout labels existed: estimates, solutions, provers and methods."""
    qs = RolloutEstimate.objects.all()
    if prover:
        qs = qs.filter(prover=prover)
    return {"estimates": qs.count(), "solutions": qs.values("solution_id").distinct().count(),
            "provers": sorted(set(qs.values_list("prover", flat=True).distinct())),
            "methods": sorted(set(qs.values_list("method", flat=True).distinct()))}


@transaction.atomic
def export_create(*, fmt, filters: dict, options: dict | None = None, user=None, include_test=False) -> Export:
    """Create the job row and enqueue it once the row is committed (a worker never sees it uncommitted).

    Raises ValueError for an unknown format or bad options; the options are kept, defaults filled in.
    Training formats leave test-split problems out unless `include_test` (split_filters)."""
    parsed = export_options(fmt, options)
    filters = split_filters(fmt, filters, include_test=include_test)
    if parsed is not None:
        filters = {**filters, "options": asdict(parsed)}
    export = Export.objects.create(format=fmt, filters=filters, requested_by=user)
    export_enqueue(export)
    return export


def export_enqueue(export):
    enqueue(tasks.export_run, export.id)


def export_run(*, export_id) -> bool:
    """Run a pending export. The conditional update claims it: a redelivered job does nothing."""
    if not job_claim(job_id=export_id, model=Export):
        return False
    export = Export.objects.get(id=export_id)
    raw = dict(export.filters)
    options = raw.pop("options", None)
    filters = ExportFilters(**raw)
    if isinstance(filters.since, str):
        filters.since = parse_datetime(filters.since)
    target = Path(settings.EXPORT_DIR) / f"export-{export.id}.{EXTENSIONS[export.format]}"

    def progress(done, total):
        job_progress(job_id=export_id, done=done, total=total, model=Export)

    try:
        options = export_options(export.format, options)
        result = export_to_path(export.format, target, filters, progress=progress, options=options)
        provenance = export_provenance(filters=filters, fmt=export.format, options=options,
                                       stats=getattr(result, "stats", None))
    except Exception as exc:
        target.unlink(missing_ok=True)  # a failed job serves no file, even one written before it failed
        job_fail(job_id=export_id, error=f"{type(exc).__name__}: {exc}", model=Export)
        raise
    return job_finish(job_id=export_id, model=Export, record_count=result.records, step_count=result.steps,
                      sha256=result.sha256, file=target.name, provenance=provenance)
