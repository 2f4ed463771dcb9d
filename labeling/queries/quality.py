"""Reads for the quality dashboard: per-annotator speed, QC and screening; agreement on overlapped tasks.

Counts and sums are SQL aggregates; what SQL cannot do portably (a median, kappa) runs in Python over
bounded samples: the latest MEDIAN_SAMPLE annotations and the latest OVERLAP_LIMIT overlapped tasks.
"""
from dataclasses import dataclass

from django.db.models import Count, Func, IntegerField, Q, Sum

from labeling.core import agreement as metrics
from labeling.core.intervals import wilson_interval
from labeling.models import Annotation, Annotator, Assignment, Completion, RolloutEstimate, Solution, Task
from labeling.queries.rollouts import IN_BATCH, rollout_summaries

MEDIAN_SAMPLE = 50_000
OVERLAP_LIMIT = 2_000


class JSONArrayLength(Func):
    function = "json_array_length"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="jsonb_array_length", **extra)


@dataclass
class AnnotatorRow:
    annotator: Annotator
    annotations: int
    active_hours: "float | None"
    per_hour: "float | None"
    ms_per_step: "float | None"
    screening: str
    screening_failed: bool

    @property
    def seconds_per_step(self):
        return self.ms_per_step / 1000 if self.ms_per_step is not None else None


def annotator_rows(*, since):
    """One row per annotator who has a login or labeled since `since`."""
    labeled = Annotation.objects.filter(timestamp__gte=since)
    totals = {r["annotator_id"]: r for r in labeled.values("annotator_id").order_by().annotate(
        n=Count("id"), timed=Count("total_time_ms"), active_ms=Sum("total_time_ms"))}
    latest = labeled.filter(total_time_ms__isnull=False).order_by("-timestamp").values("id")[:MEDIAN_SAMPLE]
    timings = {}
    for annotator_id, ms, steps in (Annotation.objects.filter(id__in=latest).order_by().annotate(
            steps=Count("completions", filter=Q(completions__index=0, completions__rating__isnull=False)))
            .values_list("annotator_id", "total_time_ms", "steps")):
        timings.setdefault(annotator_id, []).append((ms, steps))
    screening_tasks = Task.objects.filter(kind=Task.Kind.SCREENING).count()
    screened = dict(Assignment.objects.filter(task__kind=Task.Kind.SCREENING, status=Assignment.Status.SUBMITTED)
                    .values("annotator_id").order_by().annotate(n=Count("id")).values_list("annotator_id", "n"))
    rows = []
    for annotator in (Annotator.objects.filter(Q(user__isnull=False) | Q(id__in=list(totals)))
                      .select_related("user").order_by("id")):
        t = totals.get(annotator.id, {"n": 0, "timed": 0, "active_ms": None})
        rows.append(AnnotatorRow(
            annotator=annotator, annotations=t["n"],
            active_hours=t["active_ms"] / 3_600_000 if t["active_ms"] is not None else None,
            per_hour=metrics.throughput(t["timed"], t["active_ms"]),
            ms_per_step=metrics.median_ms_per_step(timings.get(annotator.id, ())),
            screening=screening_status(annotator, screening_tasks, screened.get(annotator.id, 0)),
            screening_failed=annotator.screening_passed is False and not annotator.cleared_by_admin))
    return rows


def screening_status(annotator, screening_tasks, answered):
    if annotator.screening_passed is True:
        return "passed"
    if annotator.screening_passed is False:
        return "failed, cleared by an admin" if annotator.cleared_by_admin else "failed"
    if annotator.cleared_by_admin:
        return "cleared by an admin"
    if not screening_tasks:
        return "no screening tasks"
    return f"{answered} of {screening_tasks} answered"


@dataclass
class AgreementView:
    report: metrics.AgreementReport
    names: dict
    limit: int

    def pairs(self):
        """Pairwise rows with annotator names, the pairs sharing most tasks first."""
        rows = [(self.names.get(p.a, p.a), self.names.get(p.b, p.b), p) for p in self.report.pairs]
        return sorted(rows, key=lambda row: (-row[2].tasks, str(row[0]), str(row[1])))


def overlap_agreement(*, since, round_number=None, limit=OVERLAP_LIMIT) -> AgreementView:
    """Agreement on the latest `limit` round tasks with two or more submissions since `since`."""
    submitted = Assignment.objects.filter(status=Assignment.Status.SUBMITTED, annotation__isnull=False,
                                          task__kind=Task.Kind.ROUND, annotation__timestamp__gte=since)
    if round_number is not None:
        submitted = submitted.filter(task__round__number=round_number)
    overlapped = (submitted.values("task_id").order_by().annotate(n=Count("id")).filter(n__gte=2)
                  .order_by("-task_id").values("task_id")[:limit])
    rows = submitted.filter(task_id__in=overlapped)
    tasks = {}
    by_annotation = {}
    for task_id, annotator_id, annotation_id, n_steps in rows.annotate(
            n_steps=JSONArrayLength("task__solution__steps")).values_list(
            "task_id", "annotator_id", "annotation_id", "n_steps"):
        ratings = []
        tasks.setdefault(task_id, (n_steps, {}))[1][annotator_id] = ratings
        by_annotation[annotation_id] = ratings
    for annotation_id, step, rating in (Completion.objects.filter(index=0, annotation__in=rows.values("annotation_id"))
                                        .order_by("annotation_id", "step_index")
                                        .values_list("annotation_id", "step_index", "rating")):
        ratings = by_annotation.get(annotation_id)
        if ratings is not None:
            ratings.extend([None] * (step - len(ratings)))
            ratings.append(rating)
    report = metrics.agreement([metrics.Overlap(by_rater, n_steps) for n_steps, by_rater in tasks.values()])
    raters = {a for _n, by_rater in tasks.values() for a in by_rater}
    names = {a.id: str(a) for a in Annotator.objects.filter(id__in=raters).select_related("user")}
    return AgreementView(report=report, names=names, limit=limit)


# --- agreement with rollouts ---------------------------------------------------------------------------

@dataclass
class RolloutAgreementRow:
    """One annotator's first errors against the rollouts' estimated first errors, on the same solutions."""
    annotator: str
    compared: int  # annotations where both sides decide (a first -1 or none; rollouts not undecided)
    agreed: int
    undecided: int  # annotations of solutions with rollouts where either side decides nothing

    @property
    def share(self):
        return self.agreed / self.compared if self.compared else None

    @property
    def interval(self):
        return wilson_interval(self.agreed, self.compared)


def rollout_agreement(*, since, round_number=None, limit=MEDIAN_SAMPLE) -> list:
    """Per annotator, over their latest `limit` annotations since `since` of solutions that have rollout
    estimates: how often their first error (agreement.outcome) is the rollouts' estimated first error
    (labeling.queries.rollouts). A cheap signal beside QC: rollouts are noisy, humans are the gold."""
    labeled = Annotation.objects.filter(timestamp__gte=since, solution_id__in=RolloutEstimate.objects.values(
        "solution_id"))
    if round_number is not None:
        labeled = labeled.filter(round__number=round_number)
    rows = list(labeled.order_by("-id").values_list("id", "annotator_id", "solution_id")[:limit])
    by_annotator = {}
    for start in range(0, len(rows), IN_BATCH):
        batch = rows[start:start + IN_BATCH]
        solution_ids = {sid for _, _, sid in batch}
        summaries = rollout_summaries(solution_ids)
        lengths = {sid: len(steps) for sid, steps in Solution.objects.filter(id__in=solution_ids)
                   .values_list("id", "steps")}
        ratings = {aid: [] for aid, _, _ in batch}
        for aid, step, rating in (Completion.objects.filter(index=0, annotation_id__in=ratings)
                                  .order_by("annotation_id", "step_index")
                                  .values_list("annotation_id", "step_index", "rating")):
            ratings[aid].extend([None] * (step - len(ratings[aid])))
            ratings[aid].append(rating)
        for aid, annotator_id, sid in batch:
            counts = by_annotator.setdefault(annotator_id, [0, 0, 0])
            human = metrics.outcome(ratings[aid], lengths[sid])
            rollout = summaries[sid].first_error(lengths[sid]) if sid in summaries else None
            if human is None or rollout is None:
                counts[2] += 1
            else:
                counts[0] += 1
                counts[1] += human == rollout
    names = {a.id: str(a) for a in Annotator.objects.filter(id__in=by_annotator).select_related("user")}
    return [RolloutAgreementRow(annotator=names[a], compared=c, agreed=g, undecided=u)
            for a, (c, g, u) in sorted(by_annotator.items(), key=lambda item: names[item[0]])]
