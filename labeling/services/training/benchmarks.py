"""A PRM version on named evaluation sets (ProcessBench, PRM800K's test labels, the project's own), its
first-error threshold chosen on a dev set, and best-of-N against the ORM baseline.

- `evaluate_on_sets`: per set and per subset what ProcessBench's table reports: accuracy on erroneous
  samples (predicted earliest error == label), on correct samples (predicted none), their harmonic mean
  (F1), and the mean F1 over subsets; once at the version's threshold and once at 0.5 beside it. A record
  whose steps do not all fit the version's maximum length is left out and counted ("truncated").
- `threshold_calibrate`: the threshold with the best F1 on a dev set (role "dev"; a test set is refused),
  stored with the version: `config["first_error_threshold"]` (what the version is read with) and
  `metrics["calibration"]` (where it came from). A version never calibrated is read at 0.5. Evaluation
  reports the threshold it used and where it came from; it never picks one on what it reports.
- `best_of_n_compare`: on the held-out candidates (as labeling.services.training.evaluation reads them),
  the PRM's pick, the ORM's pick, majority vote, PRM-weighted majority vote and the oracle, exact
  expectations (labeling.core.evaluation).

Step scores are P(step is not an error), as in evaluation.py (p_neu + p_pos of a step-head PRM's
triple, the value itself for an implicit PRM). The job (`benchmark_start`, Job kind benchmark with
`parameters["benchmark"]`) runs on a GPU worker: workers.tasks.gpu_benchmark.
"""
import hashlib

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.core import evaluation
from labeling.core.step_scores import p_not_negative
from labeling.errors import EvaluationError
from labeling.models import EvaluationSet, Job, ModelVersion, Solution, Split
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_create
from labeling.services.rounds.scoring import scoring_max_length
from workers import tasks

DEFAULT_THRESHOLD = 0.5
BATCH = 256  # items read and scored per round
COMPARE_RULES = ("prm", "orm", "majority", "weighted_majority", "oracle")


# --- starting ----------------------------------------------------------------------------------------

def _version_of(ref, *, kind):
    qs = ModelVersion.objects.all()
    version = qs.filter(name=ref).first() or (qs.filter(pk=int(ref)).first() if str(ref).isdigit() else None)
    if version is None:
        raise EvaluationError(f"no model version named or numbered {ref!r}")
    if version.kind != kind:
        raise EvaluationError(f"{version.name} is a {version.kind}, not a {kind}")
    return version


def sets_named(names) -> list[EvaluationSet]:
    found = {s.name: s for s in EvaluationSet.objects.filter(name__in=list(names))}
    missing = [n for n in names if n not in found]
    if missing:
        known = ", ".join(EvaluationSet.objects.values_list("name", flat=True)) or "none"
        raise EvaluationError(f"no evaluation set named {', '.join(map(repr, missing))} (known: {known})")
    return [found[n] for n in names]


@transaction.atomic
def benchmark_start(*, version: ModelVersion, sets=(), calibrate_on: str | None = None, orm: str | None = None,
                    user=None) -> Job:
    """A Job BENCHMARK for `version` with parameters["benchmark"]: calibrate on the dev set `calibrate_on`,
    then evaluate on the sets named in `sets`, and compare best-of-N with the ORM named `orm`; in that order."""
    if version.kind != ModelVersion.Kind.PRM:
        raise EvaluationError(f"{version.name} is a {version.kind}, not a PRM: only a PRM is evaluated on sets "
                              "(an ORM is compared with one: --orm)")
    evaluation_sets = sets_named(list(sets))
    dev = sets_named([calibrate_on])[0] if calibrate_on else None
    if dev is not None and dev.role != EvaluationSet.Role.DEV:
        raise EvaluationError(f"{dev.name} is a {dev.role} set: a threshold is chosen on a dev set only, never on "
                              "a set it is reported on")
    orm_version = _version_of(orm, kind=ModelVersion.Kind.ORM) if orm else None
    if not (evaluation_sets or dev or orm_version):
        raise EvaluationError("nothing to do: name evaluation sets, a dev set to calibrate on, or an ORM")
    job = job_create(kind=Job.Kind.BENCHMARK, model_version=version, total=0, user=user, parameters={"benchmark": {
        "sets": [s.pk for s in evaluation_sets], "calibrate_on": dev.pk if dev else None,
        "orm": orm_version.pk if orm_version else None}})
    enqueue(tasks.gpu_benchmark, job.pk)
    return job


# --- scoring items -------------------------------------------------------------------------------------

def score_set(*, evaluation_set, scorer, batch_size, max_length, progress=None):
    """[(subset, label, [P(not an error) per step] or None when a step was cut)] in item order."""
    rows, batch = [], []

    def flush():
        values = scorer.score([(problem, steps) for _, _, problem, steps in batch], batch_size=batch_size,
                              max_length=max_length)
        for (subset, label, _, _), per_step in zip(batch, values):
            ok = [p_not_negative(v) for v in per_step]
            rows.append((subset, label, None if None in ok else ok))
        batch.clear()
        if progress:
            progress(len(rows), f"scored {len(rows)} items of {evaluation_set.name}")

    for row in evaluation_set.items.order_by("position").values_list("subset", "label", "problem", "steps").iterator(
            chunk_size=BATCH):
        batch.append(row)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return rows


def set_metrics(rows, threshold) -> dict:
    """ProcessBench's table for scored rows: at `threshold` and at 0.5, per subset and their mean F1."""
    kept = [r for r in rows if r[2] is not None]
    subsets, golds, scores = [r[0] for r in kept], [r[1] for r in kept], [r[2] for r in kept]

    def at(t):
        return evaluation.processbench_by_subset(subsets, golds, [evaluation.first_error_prediction(s, t)
                                                                  for s in scores])
    return {"items": len(rows), "scored": len(kept), "truncated": len(rows) - len(kept), "threshold": threshold,
            "at_threshold": at(threshold), "at_0_5": at(DEFAULT_THRESHOLD)}


def version_threshold(version: ModelVersion) -> tuple[float, str]:
    """(the threshold the version is read with, where it came from)."""
    threshold = (version.config or {}).get("first_error_threshold")
    if threshold is None:
        return DEFAULT_THRESHOLD, "default 0.5 (not calibrated)"
    calibration = (version.metrics or {}).get("calibration") or {}
    return float(threshold), f"dev set {calibration.get('dev_set', '?')}"


def _digest(evaluation_set):
    digest = hashlib.sha256()
    for pk, label in evaluation_set.items.order_by("position").values_list("id", "label").iterator(chunk_size=BATCH):
        digest.update(f"{pk}:{label};".encode())
    return digest.hexdigest()


# --- calibrating ---------------------------------------------------------------------------------------

def threshold_calibrate(*, version: ModelVersion, scorer, dev_set: EvaluationSet, batch_size=None,
                        max_length=None, progress=None) -> ModelVersion:
    """Choose the version's first-error threshold on `dev_set` (role dev only) and store it (module docstring)."""
    if dev_set.role != EvaluationSet.Role.DEV:
        raise EvaluationError(f"{dev_set.name} is a {dev_set.role} set: a threshold is chosen on a dev set only")
    rows = score_set(evaluation_set=dev_set, scorer=scorer, batch_size=batch_size or settings.STEPWISE_SCORING_BATCH,
                     max_length=max_length or scoring_max_length(version=version), progress=progress)
    kept = [r for r in rows if r[2] is not None]
    try:
        best = evaluation.best_threshold([r[1] for r in kept], [r[2] for r in kept])
    except ValueError:
        raise EvaluationError(f"dev set {dev_set.name} needs both erroneous and correct solutions that fit "
                              f"(it has {len(kept)} that fit, of {len(rows)})") from None
    at_half = set_metrics(rows, DEFAULT_THRESHOLD)["at_threshold"]
    calibration = {"dev_set": dev_set.name, "dev_set_id": dev_set.pk, "dev_digest": _digest(dev_set),
                   "items": len(rows), "truncated": len(rows) - len(kept), "threshold": best["threshold"],
                   "dev_f1": best["f1"], "dev_error_acc": best["error_acc"], "dev_correct_acc": best["correct_acc"],
                   "dev_f1_at_0_5": evaluation.processbench_f1(
                       [r[1] for r in kept], [evaluation.first_error_prediction(r[2]) for r in kept])["f1"],
                   "dev_average_f1_at_0_5": at_half["average_f1"], "calibrated_at": timezone.now().isoformat()}
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        version.config = {**(version.config or {}), "first_error_threshold": best["threshold"]}
        version.metrics = {**(version.metrics or {}), "calibration": calibration}
        version.save(update_fields=["config", "metrics"])
    return version


# --- evaluating on sets --------------------------------------------------------------------------------

def evaluate_on_sets(*, version: ModelVersion, scorer, sets, batch_size=None, max_length=None, progress=None) -> dict:
    """{"threshold": {...}, "sets": {name: set_metrics + role, source, digest}} at the version's own threshold."""
    threshold, source = version_threshold(version)
    batch_size = batch_size or settings.STEPWISE_SCORING_BATCH
    max_length = max_length or scoring_max_length(version=version)
    out = {"version": {"id": version.pk, "name": version.name}, "evaluated_at": timezone.now().isoformat(),
           "threshold": {"value": threshold, "source": source}, "sets": {}}
    for evaluation_set in sets:
        if evaluation_set.role == EvaluationSet.Role.DEV and source == f"dev set {evaluation_set.name}":
            note = "the set the threshold was chosen on: not a held-out figure"
        else:
            note = ""
        rows = score_set(evaluation_set=evaluation_set, scorer=scorer, batch_size=batch_size, max_length=max_length,
                         progress=progress)
        out["sets"][evaluation_set.name] = {"role": evaluation_set.role, "source": evaluation_set.source,
                                            "digest": _digest(evaluation_set), "note": note,
                                            **set_metrics(rows, threshold)}
    return out


# --- best-of-N against the ORM -------------------------------------------------------------------------

def best_of_n_compare(*, version: ModelVersion, scorer, orm_version: ModelVersion, orm_scorer, progress=None) -> dict:
    """PRM, ORM, majority, PRM-weighted majority and oracle best-of-N on the held-out candidates."""
    from labeling.services.data.solution_grading import solutions_grade_in_mode
    from labeling.services.training.evaluation import _Progress, _score_candidates, heldout_candidates

    grading = settings.STEPWISE_SELECTION_GRADING
    solutions_grade_in_mode(solutions=Solution.objects.filter(problem__split=Split.TEST), mode=grading)
    batch = settings.STEPWISE_SCORING_BATCH
    tracker = _Progress(progress, 2 * heldout_candidates().count())
    digest = hashlib.sha256()
    prm_rows = _score_candidates(version, scorer, batch, scoring_max_length(version=version), tracker, digest)["rows"]
    orm_rows = _score_candidates(orm_version, orm_scorer, batch, scoring_max_length(version=orm_version), tracker,
                                 hashlib.sha256())["rows"]
    by_problem = {}
    for prm_row, orm_row in zip(prm_rows, orm_rows):
        by_problem.setdefault(prm_row["problem_id"], []).append({**prm_row, "score_orm": orm_row["score_prm"]})
    problems = list(by_problem.values())
    if not problems:
        raise EvaluationError("no held-out candidates: best-of-N reads graded solutions of split-'test' problems")
    results, method = best_of_n_table(problems)
    return {"prm": {"id": version.pk, "name": version.name}, "orm": {"id": orm_version.pk, "name": orm_version.name},
            "held_out": {"split": Split.TEST.value, "digest": digest.hexdigest(), "grading": grading},
            "problems": len(problems), "candidates": len(prm_rows), "best_of_n": results,
            "best_of_n_max": {"n": results["prm"][-1][0], **{rule: results[rule][-1][1] for rule in results}},
            "voting": method}


def best_of_n_table(problems, *, max_subsets=20_000):
    """({rule: [[N, accuracy], ...]} for COMPARE_RULES, "exact" or "sampled" for the two votes)."""
    ns = evaluation.default_ns(max(len(p) for p in problems))
    results = evaluation.best_of_n_exact(problems, ns, rules=("prm", "orm", "oracle"))
    try:
        results |= evaluation.best_of_n_exact(problems, ns, rules=("majority", "weighted_majority"),
                                              max_subsets=max_subsets)
        method = "exact"
    except ValueError:
        results |= evaluation.best_of_n(problems, ns, rules=("majority", "weighted_majority"), samples=200, seed=0)
        method = "sampled"
    return {rule: [[n, acc] for n, acc in results[rule]] for rule in COMPARE_RULES}, method


# --- storing ------------------------------------------------------------------------------------------

@transaction.atomic
def benchmarks_save(*, version: ModelVersion, sets: dict | None = None, comparison: dict | None = None) -> ModelVersion:
    """Keep per-set results in metrics["benchmarks"] (by set name, newest wins) and the ORM comparison in
    metrics["orm_comparison"]."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    metrics = dict(version.metrics or {})
    if sets is not None:
        metrics["benchmarks"] = {**metrics.get("benchmarks", {}), **{
            name: {**result, "threshold_source": sets["threshold"]["source"], "evaluated_at": sets["evaluated_at"]}
            for name, result in sets["sets"].items()}}
    if comparison is not None:
        metrics["orm_comparison"] = comparison
    version.metrics = metrics
    version.save(update_fields=["metrics"])
    return version
