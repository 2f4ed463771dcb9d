"""Reads for the rounds page: what each round collected, and how the PRM trained after it evaluates.

Which model was "trained after" a round: the version a done RETRAIN job made belongs to the latest
round it trained on (the round numbers of its snapshot, `result["snapshot"]["rounds"]`, else those it
was asked for, `parameters["rounds"]`); a later such job for the same round wins. A round
no such job names gets, in creation order, the first PRM version created after the round started
that is neither the round's own selector nor a round-0 bootstrap selector (TRAIN_SELECTOR jobs).
"""
import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q

from labeling.core.charts import best_of_n_svg, line_chart_svg
from labeling.models import Annotation, Job, ModelVersion, Round, RoundSelection, Task
from labeling.queries import quality
from labeling.services.rounds.registry import selector_active

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
RECENT_JOBS = 10
CHART_SERIES = (("ProcessBench F1", "processbench_f1"), ("Step AUROC", "step_auroc"),
                ("Best-of-N PRM @ max", "best_of_n_prm"))  # legends keep 20 characters


@dataclass
class RoundRow:
    round: Round
    tasks: int
    labels: int
    wrong_labeled: int  # convincing-wrong selections with a submitted annotation in the round
    wrong_found: int    # ... of which some annotation rated a step -1
    agreement: "quality.AgreementView | None"
    model_after: "ModelVersion | None"

    @property
    def error_found_share(self):
        return self.wrong_found / self.wrong_labeled if self.wrong_labeled else None

    @property
    def evaluation(self):
        return evaluation_of(self.model_after)


def evaluation_of(version):
    return (version.metrics or {}).get("evaluation") if version is not None else None


def metric(evaluation, key):
    """One number of an evaluation for tables and charts; None when absent."""
    if not evaluation:
        return None
    if key == "best_of_n_prm":
        return (evaluation.get("best_of_n_max") or {}).get("prm")
    return evaluation.get(key)


def _error_found(rounds):
    """round id -> (convincing-wrong solutions labeled in the round, of which an annotator found an error)."""
    convincing_wrong = RoundSelection.objects.filter(round_id=OuterRef("round_id"), solution_id=OuterRef("solution_id"),
                                                     reason=RoundSelection.Reason.CONVINCING_WRONG)
    per_solution = (Annotation.objects.filter(round_id__in=[r.pk for r in rounds], is_quality_control=False,
                                              is_screening=False)
                    .filter(Exists(convincing_wrong)).values("round_id", "solution_id").order_by()
                    # completion 0 is the solution's own step; a -1 on an alternative is not an error found
                    .annotate(errors=Count("completions", filter=Q(completions__index=0, completions__rating=-1))))
    counts = {}
    for row in per_solution:
        labeled, found = counts.get(row["round_id"], (0, 0))
        counts[row["round_id"]] = (labeled + 1, found + (row["errors"] > 0))
    return counts


def _models_after(rounds, versions):
    by_number = {}
    for job in Job.objects.filter(kind=Job.Kind.RETRAIN, status=Job.Status.DONE, model_version__isnull=False) \
            .order_by("created", "id").only("parameters", "result", "model_version_id"):
        # the rounds its snapshot really held, else the rounds it was asked for (None there: every round)
        numbers = ((job.result or {}).get("snapshot") or {}).get("rounds") or (job.parameters or {}).get("rounds")
        if isinstance(numbers, list) and numbers and all(isinstance(n, int) for n in numbers):
            by_number[max(numbers)] = job.model_version_id
    bootstrap = set(Job.objects.filter(kind=Job.Kind.TRAIN_SELECTOR, model_version__isnull=False)
                    .values_list("model_version_id", flat=True))
    by_id = {v.pk: v for v in versions}
    in_order = sorted(versions, key=lambda v: (v.created, v.pk))
    after = {}
    for r in rounds:
        if r.number in by_number:
            after[r.pk] = by_id.get(by_number[r.number])
            continue
        start = r.started or r.created
        after[r.pk] = next((v for v in in_order if v.created > start and v.pk != r.selector_id
                            and v.pk not in bootstrap), None)
    return after


def _latest_evaluate_jobs(versions):
    latest = {}
    for job in Job.objects.filter(kind=Job.Kind.EVALUATE, model_version_id__in=[v.pk for v in versions]) \
            .order_by("-id")[:max(50, 3 * len(versions))]:
        latest.setdefault(job.model_version_id, job)
    return latest


def rounds_chart(rows):
    series = {label: [(row.round.number, metric(row.evaluation, key)) for row in rows] for label, key in CHART_SERIES}
    return line_chart_svg(series, title="The PRM trained after each round", x_label="Round",
                          y_label="Held-out metric", y_range=(0, 1))


def best_of_n_charts(versions, active):
    """The best-of-N chart of the latest evaluated version, and of the active selector when it is another."""
    evaluated = [v for v in versions if (evaluation_of(v) or {}).get("best_of_n")]
    latest = max(evaluated, key=lambda v: (evaluation_of(v).get("evaluated_at", ""), v.pk), default=None)
    charts = []
    for version, role in ((latest, "latest evaluated"), (active, "active selector")):
        if version is None or not (evaluation_of(version) or {}).get("best_of_n"):
            continue
        if charts and charts[-1]["version"].pk == version.pk:
            charts[-1]["role"] += ", " + role
            continue
        charts.append({"version": version, "role": role})
    for chart in charts:
        chart["svg"] = best_of_n_svg(evaluation_of(chart["version"])["best_of_n"],
                                     title=f"Best-of-N: {chart['version'].name} ({chart['role']})")
    return charts


def rounds_page() -> dict:
    """Everything the rounds page shows, rounds in number order and PRM versions newest first."""
    rounds = list(Round.objects.select_related("selector").order_by("number"))
    versions = list(ModelVersion.objects.filter(kind=ModelVersion.Kind.PRM).order_by("-created", "-id"))
    tasks = dict(Task.objects.filter(kind=Task.Kind.ROUND, round__isnull=False).values("round_id").order_by()
                 .annotate(n=Count("id")).values_list("round_id", "n"))
    labels = dict(Annotation.objects.filter(round__isnull=False, is_quality_control=False, is_screening=False)
                  .values("round_id").order_by().annotate(n=Count("id")).values_list("round_id", "n"))
    found = _error_found(rounds)
    after = _models_after(rounds, versions)
    rows = [RoundRow(round=r, tasks=tasks.get(r.pk, 0), labels=labels.get(r.pk, 0),
                     wrong_labeled=found.get(r.pk, (0, 0))[0], wrong_found=found.get(r.pk, (0, 0))[1],
                     # agreement needs overlapped tasks, which only an overlap above 1 makes
                     agreement=(quality.overlap_agreement(since=EPOCH, round_number=r.number)
                                if r.overlap > 1 else None),
                     model_after=after.get(r.pk))
            for r in rounds]
    active = selector_active()
    jobs = _latest_evaluate_jobs(versions)
    return {
        "rows": rows,
        "versions": [{"version": v, "evaluation": evaluation_of(v), "job": jobs.get(v.pk),
                      "bon_prm": metric(evaluation_of(v), "best_of_n_prm")} for v in versions],
        "active": active,
        "rounds_chart": rounds_chart(rows),
        "best_of_n_charts": best_of_n_charts(versions, active),
        "recent_jobs": list(Job.objects.filter(kind__in=[Job.Kind.EVALUATE, Job.Kind.RETRAIN])
                            .select_related("model_version")[:RECENT_JOBS]),
    }
