"""Reads for the rounds page: what each round collected, and how the PRM trained after it evaluates.

Which model was "trained after" a round: the version a done RETRAIN job made belongs to the latest
round it trained on (the round numbers of its snapshot, `result["snapshot"]["rounds"]`, else those it
was asked for, `parameters["rounds"]`); a later such job for the same round wins. A round
no such job names gets, in creation order, the first PRM version created after the round started
that is neither the round's own selector nor a round-0 bootstrap selector (TRAIN_SELECTOR jobs).
"""
import datetime as dt
from dataclasses import dataclass

from django.db.models import Count

from labeling.core.bar_charts import bar_chart_svg
from labeling.core.charts import best_of_n_svg, line_chart_svg
from labeling.models import Annotation, Job, ModelVersion, Round, Task
from labeling.queries import generators, quality
from labeling.queries.yields import YIELD_REASONS, round_yields, yield_ratio
from labeling.services.rounds.registry import selector_active

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
RECENT_JOBS = 10
CHART_SERIES = (("ProcessBench F1 (threshold 0.5)", "processbench_f1"), ("Step AUROC", "step_auroc"),
                ("Best-of-N PRM (at the largest N)", "best_of_n_prm"))


@dataclass
class RoundRow:
    round: Round
    tasks: int
    labels: int
    yields: dict  # reason -> queries.yields.Yield (served solutions, of which an error was found)
    agreement: "quality.AgreementView | None"
    model_after: "ModelVersion | None"
    generator: "dict | None" = None  # queries.generators.summary of the generator the round sampled from

    @property
    def served_yields(self):
        """The round's yields, reasons it served nothing of left out."""
        return [y for y in self.yields.values() if y.served]

    @property
    def wrong_yield(self):
        return self.yields.get("convincing_wrong")

    @property
    def yield_ratio(self):
        return yield_ratio(self.yields)

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
                          y_label="Held-out metric", y_range=(0, 1), integer_x=True)


def yields_chart(rows):
    """Bars of the error yield per reason per round, with 95% intervals and n; None when nothing was served."""
    rows = [row for row in rows if row.served_yields]
    reasons = [r for r in YIELD_REASONS if any(row.yields[r].served for row in rows)]
    if not rows:
        return None
    groups, intervals, notes = {}, {}, {}
    for row in rows:
        category = f"round {row.round.number}"
        served = [row.yields[r] for r in reasons]
        groups[category] = {y.label: y.share for y in served}
        intervals[category] = {y.label: y.interval for y in served}
        notes[category] = {y.label: f"n={y.served}" for y in served if y.served}
    return bar_chart_svg(groups, intervals=intervals, notes=notes, y_range=(0, 1), x_label="Round",
                         title="Error yield: served solutions in which annotators found an error",
                         y_label="Share with an error (95% interval)")


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
    yields = round_yields([r.pk for r in rounds])
    after = _models_after(rounds, versions)
    rows = [RoundRow(round=r, tasks=tasks.get(r.pk, 0), labels=labels.get(r.pk, 0), yields=yields[r.pk],
                     # agreement needs overlapped tasks, which only an overlap above 1 makes
                     agreement=(quality.overlap_agreement(since=EPOCH, round_number=r.number)
                                if r.overlap > 1 else None),
                     model_after=after.get(r.pk))
            for r in rounds]
    sampled_from = generators.round_generators(rounds)
    for row in rows:
        row.generator = sampled_from[row.round.pk]
    active = selector_active()
    jobs = _latest_evaluate_jobs(versions)
    return {
        "rows": rows,
        "generators": generators.generator_rows(),
        "versions": [{"version": v, "evaluation": evaluation_of(v), "job": jobs.get(v.pk),
                      "bon_prm": metric(evaluation_of(v), "best_of_n_prm")} for v in versions],
        "active": active,
        "rounds_chart": rounds_chart(rows),
        "yields_chart": yields_chart(rows),
        "best_of_n_charts": best_of_n_charts(versions, active),
        "recent_jobs": list(Job.objects.filter(kind__in=[Job.Kind.EVALUATE, Job.Kind.RETRAIN])
                            .select_related("model_version")[:RECENT_JOBS]),
    }
