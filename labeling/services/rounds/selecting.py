"""A round's last stage: which candidates it picks, in what order annotators get them, and its stats.

Picks follow the PRM800K rule (labeling.core.selection) over candidates nobody has worked on; an
optional control slice is drawn at random from the rest so a team can measure what selection buys;
the served order (labeling.core.serving) keeps the round's mix in every prefix and goes round-robin
over problems. The order is written twice: as `RoundSelection.rank` (0 is served first) and as the
task's `priority`, which is what the queue serves by.
"""
import random

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from labeling.core.selection import DISAGREEMENT_RULE, select_by_disagreement, select_for_round, selector_first_error
from labeling.core.serving import Pick, serving_order
from labeling.models import Annotation, Assignment, Job, RoundSelection, Solution, Task, VerifierScore
from labeling.queries.rollouts import rollout_summaries

# A round's tasks are served before those of older rounds ("newest") or after ("oldest"): the round
# number sets the band of its priorities, the serving order the place inside the band.
ROUND_BAND = 1_000_000
OLDEST_FIRST_BASE = 10_000


def worked_on(*, now=None):
    """Solutions that already have labels, a live lease or a task with a slot still open: a round that
    picked them would pay twice for the same solution (unless asked to relabel)."""
    now = now or timezone.now()
    labeled = Annotation.objects.filter(solution_id=OuterRef("pk"))
    leased = Assignment.objects.filter(task__solution_id=OuterRef("pk"), status=Assignment.Status.LEASED,
                                       expires_at__gt=now)
    # An untouched task outside any round is no work yet: the round adopts it (see _queue) instead.
    open_task = (Task.objects.filter(solution_id=OuterRef("pk"), kind=Task.Kind.ROUND, submitted__lt=F("overlap"))
                 .exclude(round__isnull=True, taken=0, submitted=0))
    return Q(Exists(labeled)) | Q(Exists(leased)) | Q(Exists(open_task))


def round_select(round_, *, candidates_qs, qc_ids, fallback=None) -> dict:
    """Write the round's selection rows and tasks; return the round's stats (the caller saves them).

    `fallback`, when given, is the reason the selector may not choose (it did not beat chance): the
    round then takes wrong answers at random (reason "random_wrong") instead of by score.
    """
    started = timezone.now()
    params = round_.parameters
    taken_before = RoundSelection.objects.exclude(round=round_).exclude(reason=RoundSelection.Reason.QC)
    pool = candidates_qs
    worked = 0 if params.get("relabel") else candidates_qs.filter(worked_on()).count()
    if not params.get("relabel"):  # QC solutions stay: the rule reports them as such
        pool = pool.exclude(id__in=taken_before.values("solution_id")).exclude(worked_on() & ~Q(id__in=qc_ids))
    rows = list(pool.filter(scores__model_version_id=round_.selector_id)
                .values_list("id", "problem_id", "scores__score", "is_correct"))
    scored = [{"solution_id": sid, "problem_id": pid, "score": score, "is_correct": correct}
              for sid, pid, score, correct in rows if score is not None]
    unscorable = sum(1 for row in rows if row[2] is None)
    if fallback:
        from labeling.core.selection import select_random_wrong

        selected = select_random_wrong(scored, per_problem=params["per_problem"],
                                       wrong_fraction=params["wrong_fraction"], seed=params.get("seed", 0),
                                       qc_ids=qc_ids)
    elif params.get("selection_rule") == DISAGREEMENT_RULE:
        with_rollouts = _with_rollouts(scored, selector_id=round_.selector_id)
        selected = select_by_disagreement(scored, per_problem=params["per_problem"],
                                          wrong_fraction=params["wrong_fraction"], qc_ids=qc_ids)
    else:
        selected = select_for_round(scored, per_problem=params["per_problem"],
                                    wrong_fraction=params["wrong_fraction"], qc_ids=qc_ids)
    picks = [s for s in selected if s.reason != RoundSelection.Reason.QC]
    grade = {s.solution_id: s.is_correct for s in selected}
    control = _control_slice(round_, pool=pool, taken=set(grade), picks=len(picks), grade=grade)
    order = serving_order([Pick(s.solution_id, s.problem_id, s.reason, s.score) for s in picks] + control)
    rank = {p.solution_id: i for i, p in enumerate(order)}
    qc_rows = [s for s in selected if s.reason == RoundSelection.Reason.QC]
    RoundSelection.objects.bulk_create(
        [RoundSelection(round=round_, solution_id=p.solution_id, problem_id=p.problem_id, score=p.score,
                        is_correct=grade[p.solution_id], reason=p.reason, rank=rank[p.solution_id])
         for p in order]
        + [RoundSelection(round=round_, solution_id=s.solution_id, problem_id=s.problem_id, score=s.score,
                          is_correct=s.is_correct, reason=s.reason, rank=len(order) + i)
           for i, s in enumerate(qc_rows)],
        ignore_conflicts=True)
    moved, created = _queue(round_, order)
    by_reason = {}
    for p in order + qc_rows:
        by_reason[p.reason] = by_reason.get(p.reason, 0) + 1
    now = timezone.now()
    jobs = {job.kind: (job.finished - job.started).total_seconds()
            for job in Job.objects.filter(round=round_, status=Job.Status.DONE) if job.started and job.finished}
    stats = {
        "problems": len(params["problem_ids"]), "candidates": candidates_qs.count(),
        "generated": Solution.objects.filter(problem_id__in=params["problem_ids"],
                                             generator=params["generator"]).count() if params.get("candidates") else 0,
        "scored": len(scored), "unscorable": unscorable,
        "already_worked_on": worked,
        "selected": by_reason, "tasks_created": created, "tasks_moved": moved,
        "wrong_among_candidates": sum(1 for c in scored if c["is_correct"] is False),
        "seconds": {**{f"{kind}": s for kind, s in jobs.items()},
                    "select": (now - started).total_seconds(),
                    "total": (now - round_.started).total_seconds() if round_.started else None},
    }
    if fallback:
        stats["fallback"] = {"reason": fallback, "selection": RoundSelection.Reason.RANDOM_WRONG}
    elif params.get("selection_rule") == DISAGREEMENT_RULE:
        stats["selection_rule"] = DISAGREEMENT_RULE
        stats["with_rollouts"] = with_rollouts
    return stats


def _with_rollouts(scored, *, selector_id) -> int:
    """Add what the disagreement rule reads to each candidate (in place): the most negative process advantage
    and the first error of its rollouts, and the selector's own first error. Returns how many had rollouts."""
    ids = [c["solution_id"] for c in scored]
    summaries = rollout_summaries(ids)
    lengths, step_scores = {}, {}
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        lengths.update((sid, len(steps)) for sid, steps in Solution.objects.filter(id__in=batch)
                       .values_list("id", "steps"))
        step_scores.update(VerifierScore.objects.filter(solution_id__in=batch, model_version_id=selector_id)
                           .values_list("solution_id", "step_scores"))
    for c in scored:
        sid, n = c["solution_id"], lengths[c["solution_id"]]
        c["selector_first_error"] = selector_first_error(step_scores.get(sid), n)
        rollouts = summaries.get(sid)
        if rollouts is not None:
            advantages = [v["a"] for v in rollouts.step_values(n) if v["a"] is not None]
            c["min_advantage"] = min(advantages, default=None)
            c["rollout_first_error"] = rollouts.first_error(n)
    return len(summaries)


def _control_slice(round_, *, pool, taken, picks, grade) -> list[Pick]:
    """`control_fraction` of the round's tasks drawn uniformly (seeded) from candidates not picked."""
    fraction = round_.parameters.get("control_fraction") or 0.0
    if fraction <= 0 or picks == 0:
        return []
    want = max(1, round(fraction * picks / (1 - fraction)))
    rows = sorted(pool.exclude(id__in=taken).values_list("id", "problem_id", "is_correct").distinct())
    rng = random.Random(f"control-{round_.parameters.get('seed', 0)}-{round_.number}")
    chosen = rng.sample(rows, min(want, len(rows)))
    scores = dict(pool.filter(id__in=[c[0] for c in chosen], scores__model_version_id=round_.selector_id)
                  .values_list("id", "scores__score"))
    grade.update({sid: correct for sid, _, correct in chosen})
    return [Pick(sid, pid, RoundSelection.Reason.CONTROL, scores.get(sid) or 0.0) for sid, pid, _ in chosen]


def served_priority(round_, position: int, total: int) -> float:
    """The queue serves higher priorities first: the round's band, then its serving order inside it."""
    band = round_.number if settings.STEPWISE_ROUND_ORDER == "newest" else OLDEST_FIRST_BASE - round_.number
    return float(band * ROUND_BAND + (total - position))


def _queue(round_, order) -> tuple[int, int]:
    """Tasks for the picks in serving order. A solution queued outside any round and not yet touched
    joins the round instead of getting a second task."""
    ids = [p.solution_id for p in order]
    untouched = dict(Task.objects.filter(solution_id__in=ids, round__isnull=True, kind=Task.Kind.ROUND, taken=0,
                                         submitted=0).values_list("solution_id", "id"))
    existing = set(Task.objects.filter(solution_id__in=ids, round=round_, kind=Task.Kind.ROUND)
                   .values_list("solution_id", flat=True))
    moved, new = 0, []
    for position, p in enumerate(order):
        if p.solution_id in existing:
            continue
        priority = served_priority(round_, position, len(order))
        if p.solution_id in untouched:
            moved += Task.objects.filter(pk=untouched[p.solution_id], taken=0, submitted=0).update(
                round=round_, priority=priority, overlap=round_.overlap)
        else:
            new.append(Task(solution_id=p.solution_id, round=round_, kind=Task.Kind.ROUND, priority=priority,
                            overlap=round_.overlap))
    Task.objects.bulk_create(new, ignore_conflicts=True)
    return moved, len(new)
