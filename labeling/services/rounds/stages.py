"""Active-learning rounds: candidates -> selector -> scores -> selection -> queued tasks.

`round_start` records the round and its parameters and sends `round_advance`, which moves the
round one stage on each time it runs, sending the job a stage needs and returning; the last chunk
of that job sends `round_advance` again. So a round survives any worker dying between stages: the
stages read the database, not memory, and every stage is idempotent.

Stages: GENERATING (bring every problem up to M candidates) -> TRAINING (fix the round's selector,
see bootstrap.py) -> SCORING (every candidate by the round's selector, fixed at this point) ->
SELECTING (selecting.py, one transaction) -> DONE.

TRAINING trains an implicit PRM on graded candidates' outcomes when no selector is active (round 0:
trained on some problems, validated on the others), and again each round while the active selector
is an implicit PRM that no step-head PRM beats on validation (a fresh one on all graded outcomes;
STEPWISE_RETRAIN_IMPLICIT_EACH_ROUND). Otherwise it takes the active selector. A trained one that
does not beat chance is not activated: the round keeps the active selector, or with none selects
random wrong answers instead of by score, the reason in round.stats["selector"].

SELECTING picks candidates nobody has labeled, leased or holds an open task for (no double work),
adds the optional random control slice, and writes tasks in the serving order that keeps the
round's mix in every prefix of what annotators receive, round-robin over problems.
"""
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef
from django.utils import timezone

from labeling.models import Job, Problem, Round, RoundSelection, Solution, Split, Task, VerifierScore
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_create, split
from labeling.errors import InvalidInput
from labeling.core.draws import Drawable, stratified_sample
from labeling.core.selection import SELECTION_RULES
from labeling.services.rounds.registry import selector_active
from labeling.services.rounds.scoring import scoring_max_length
from workers import tasks


@dataclass(frozen=True)
class RoundParameters:
    problems: int | None = None          # how many problems (None: all eligible)
    per_problem: int = 4                 # K solutions selected per problem
    wrong_fraction: float = 0.8
    candidates: int | None = None        # M candidates per problem (None: use what exists)
    generator: str = ""                  # model spec for missing candidates (default: the promoted generator)
    overlap: int = 1
    qc_rate: float | None = None
    temperature: float = 0.7
    max_new_tokens: int = 512
    seed: int = 0
    step_delimiter: str = "\n\n"        # how generated text splits into steps (PRM800K: a blank line)
    label_target: int | None = None      # submitted labels that start a PRM retrain (services.retraining)
    grading: str = ""                    # how candidates are graded: "fixed" (default: settings) or "prm800k"
    control_fraction: float = 0.0        # share of the round's tasks drawn at random as a control slice
    relabel: bool = False                # allow solutions that already have labels, leases or open tasks
    selection_rule: str = "prm800k"      # or "disagreement": rollouts contradicting the selector first
    rollout_hints: bool = False          # annotators see the rollouts' first error (Round.rollout_hints)

    def check(self):
        if self.problems is not None and self.problems < 1:
            raise InvalidInput(f"problems must be at least 1, got {self.problems}", field="problems")
        if self.per_problem < 1:
            raise InvalidInput(f"per_problem must be at least 1, got {self.per_problem}", field="per_problem")
        if not 0.0 <= self.wrong_fraction <= 1.0:
            raise InvalidInput(f"wrong_fraction must be in [0, 1], got {self.wrong_fraction}", field="wrong_fraction")
        if self.candidates is not None and self.candidates < self.per_problem:
            raise InvalidInput(f"candidates ({self.candidates}) must be at least per_problem ({self.per_problem})",
                               field="candidates")
        if not 1 <= self.overlap <= 32767:
            raise InvalidInput(f"overlap must be between 1 and 32767, got {self.overlap}", field="overlap")
        if self.qc_rate is not None and not 0.0 <= self.qc_rate <= 1.0:
            raise InvalidInput(f"qc_rate must be in [0, 1], got {self.qc_rate}", field="qc_rate")
        if not self.step_delimiter:
            raise InvalidInput("step_delimiter must not be empty", field="step_delimiter")
        if self.temperature < 0 or self.max_new_tokens < 1:
            raise InvalidInput("temperature must be >= 0 and max_new_tokens >= 1", field="temperature")
        if self.grading not in ("", "fixed", "prm800k"):
            raise InvalidInput(f"grading must be 'fixed' or 'prm800k', got {self.grading!r}", field="grading")
        if not 0.0 <= self.control_fraction < 1.0:
            raise InvalidInput(f"control_fraction must be in [0, 1), got {self.control_fraction}",
                               field="control_fraction")
        if self.selection_rule not in SELECTION_RULES:
            raise InvalidInput(f"selection_rule must be one of {', '.join(SELECTION_RULES)}, got "
                               f"{self.selection_rule!r}", field="selection_rule")
        if self.label_target is not None and self.label_target < 1:
            raise InvalidInput(f"label_target must be at least 1, got {self.label_target}", field="label_target")


def eligible_problems():
    """Problems a round may draw: with a reference answer (to grade), outside the test split."""
    return Problem.objects.filter(answer__isnull=False).exclude(split=Split.TEST)


def round_problems(*, count: int | None, seed: int) -> list[int]:
    """Ids of `count` eligible problems (None: all), drawn at random with `seed`, stratified by subject and
    level: from problems no round has selected from yet, then from the rest if more are needed."""
    fresh = ~Exists(RoundSelection.objects.filter(problem_id=OuterRef("pk")))
    pools = {True: [], False: []}
    for pk, subject, level, is_fresh in eligible_problems().annotate(fresh=fresh) \
            .values_list("id", "subject", "level", "fresh"):
        pools[is_fresh].append(Drawable(pk, subject, level))
    wanted = len(pools[True]) + len(pools[False]) if count is None else count
    drawn = []
    for pool in (pools[True], pools[False]):
        drawn += sorted(stratified_sample(pool, wanted - len(drawn), seed=seed))
    return drawn


@transaction.atomic
def round_start(*, params: RoundParameters, user=None, name: str = "") -> Round:
    params.check()
    problem_ids = round_problems(count=params.problems, seed=params.seed)
    if not problem_ids:
        raise InvalidInput("no eligible problems: import problems with reference answers first", field="problems")
    number = (Round.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    from labeling.services.training.generator_promotion import generator_default_spec

    # The promoted generator (iterative RPO), else STEPWISE_GENERATOR, unless the round names one.
    parameters = {**params.__dict__, "generator": params.generator or generator_default_spec(),
                  "grading": params.grading or settings.STEPWISE_SELECTION_GRADING,
                  "problem_ids": problem_ids, "requested_by": getattr(user, "username", None)}
    round_ = Round.objects.create(number=number, name=name or f"round {number}", status=Round.Status.PENDING,
                                  overlap=params.overlap, parameters=parameters, started=timezone.now(),
                                  rollout_hints=params.rollout_hints,
                                  qc_rate=params.qc_rate if params.qc_rate is not None else settings.STEPWISE_QC_RATE)
    enqueue(tasks.round_advance, round_.pk)
    return round_


def round_candidates(round_: Round):
    """The round's candidate solutions: every solution of its problems."""
    return Solution.objects.filter(problem_id__in=round_.parameters["problem_ids"])


def round_advance(*, round_id: int) -> str:
    """Move the round on as far as it can go now; returns its status. Safe to call any number of times."""
    round_ = Round.objects.get(pk=round_id)
    if round_.status in (Round.Status.DONE, Round.Status.FAILED):
        return round_.status
    failed = Job.objects.filter(round=round_, status=Job.Status.FAILED).first()
    if failed:
        return round_fail(round_id=round_id, error=f"{failed.kind} job {failed.pk} failed: {failed.error}")
    _grade_candidates(round_)
    with transaction.atomic():
        round_ = Round.objects.select_for_update().get(pk=round_id)
        if round_.status in (Round.Status.DONE, Round.Status.FAILED):
            return round_.status
        for stage in (_generating, _training, _scoring):
            waiting = stage(round_)
            if waiting:
                return round_.status
        _select(round_)
        return round_.status


def round_fail(*, round_id: int, error: str) -> str:
    Round.objects.filter(pk=round_id).exclude(status=Round.Status.DONE).update(
        status=Round.Status.FAILED, error=error[:10000], finished=timezone.now())
    return Round.Status.FAILED


def _grade_candidates(round_):
    """Every candidate graded in the round's mode (parameters["grading"], default fixed): ungraded ones
    and those an import or generation graded in the other mode (a reference false reject such as
    2^{10} for 1024 must not be selected as wrong)."""
    from labeling.services.data.solution_grading import solutions_grade_in_mode

    mode = round_.parameters.get("grading") or settings.STEPWISE_SELECTION_GRADING
    solutions_grade_in_mode(solutions=round_candidates(round_), mode=mode)


def _job(round_, kind):
    return Job.objects.filter(round=round_, kind=kind).order_by("-id").first()


def _set_status(round_, status):
    if round_.status != status:
        round_.status = status
        round_.save(update_fields=["status"])


def _generating(round_) -> bool:
    params = round_.parameters
    m = params.get("candidates")
    if not m:
        return False
    job = _job(round_, Job.Kind.GENERATE)
    if job is not None:
        return job.status != Job.Status.DONE
    have = dict(round_candidates(round_).values("problem_id").annotate(n=Count("id")).values_list("problem_id", "n"))
    short = [pid for pid in params["problem_ids"] if have.get(pid, 0) < m]
    if not short:
        return False
    from labeling.services.rounds.registry import generator_version

    spec = params["generator"]
    job = job_create(kind=Job.Kind.GENERATE, round=round_, model_version=generator_version(spec=spec),
                     chunks=split(short, settings.STEPWISE_GENERATION_CHUNK),
                     parameters={"candidates": m, "spec": spec,
                                 "sampling": {"temperature": params["temperature"], "top_p": 0.95,
                                              "max_new_tokens": params["max_new_tokens"], "seed": params["seed"],
                                              "step_delimiter": params.get("step_delimiter", "\n\n"),
                                              "batch_size": settings.STEPWISE_GENERATION_BATCH}})
    _set_status(round_, Round.Status.GENERATING)
    for chunk_id in job.chunks.order_by("index").values_list("id", flat=True):
        enqueue(tasks.gpu_generate_chunk, chunk_id)
    return True


def _training(round_) -> bool:
    """Fix the round's selector: the active one, or a freshly trained implicit PRM (none active: round 0;
    an implicit one active: a refresh, see bootstrap.py). A trained one that fails validation is not
    activated: the round keeps the active selector, or with none falls back to random wrong answers."""
    from labeling.services.rounds import bootstrap

    if round_.selector_id is not None:
        return False
    active = selector_active()
    job = _job(round_, Job.Kind.TRAIN_SELECTOR)
    if job is None and active is not None and not bootstrap.implicit_refresh_due(active):
        round_.selector = active
        round_.save(update_fields=["selector"])
        return False
    if job is not None and job.status == Job.Status.DONE:
        bootstrap.bootstrap_settle(round_=round_, job=job)
        return False
    if job is None:
        job = bootstrap.bootstrap_job_create(round_=round_,
                                             purpose=bootstrap.BOOTSTRAP if active is None else bootstrap.REFRESH)
        enqueue(tasks.gpu_train_selector, job.pk)
    _set_status(round_, Round.Status.TRAINING)
    return True


def _scoring(round_) -> bool:
    job = _job(round_, Job.Kind.SCORE)
    if job is not None and job.model_version_id == round_.selector_id:
        return job.status != Job.Status.DONE
    scored = VerifierScore.objects.filter(solution_id=OuterRef("pk"), model_version_id=round_.selector_id)
    missing = list(round_candidates(round_).filter(~Exists(scored)).order_by("id").values_list("id", flat=True))
    if not missing:
        return False
    job = job_create(kind=Job.Kind.SCORE, round=round_, model_version=round_.selector,
                     chunks=split(missing, settings.STEPWISE_SCORING_CHUNK),
                     parameters={"batch_size": settings.STEPWISE_SCORING_BATCH,
                                 "max_length": scoring_max_length(version=round_.selector)})
    _set_status(round_, Round.Status.SCORING)
    for chunk_id in job.chunks.order_by("index").values_list("id", flat=True):
        enqueue(tasks.gpu_score_chunk, chunk_id)
    return True


def _qc_solution_ids():
    return set(Task.objects.filter(kind__in=[Task.Kind.QC, Task.Kind.SCREENING]).values_list("solution_id", flat=True))


def _select(round_):
    from labeling.services.rounds.selecting import round_select

    selector = (round_.stats or {}).get("selector") or {}
    stats = round_select(round_, candidates_qs=round_candidates(round_), qc_ids=_qc_solution_ids(),
                         fallback=selector.get("reason") if selector.get("fallback") else None)
    round_.stats = {**(round_.stats or {}), **stats}
    round_.status = Round.Status.DONE
    round_.finished = timezone.now()
    round_.save(update_fields=["stats", "status", "finished"])


def selection_rows(*, round_: Round):
    return round_.selections.order_by("rank").values("solution_id", "problem_id", "score", "is_correct", "reason")


def round_progress(*, round_: Round) -> dict:
    """What the admin's progress bar shows: the round's stage and its current job's progress."""
    job = round_.jobs.exclude(status=Job.Status.FAILED).order_by("-id").first() or round_.jobs.order_by("-id").first()
    return {"round": round_.number, "status": round_.status, "error": round_.error, "stats": round_.stats,
            "job": None if job is None else {
                "id": job.pk, "kind": job.kind, "status": job.status, "done": job.done, "total": job.total,
                "progress": job.progress, "message": job.message, "error": job.error,
                "chunks": job.chunks.count(), "chunks_done": job.chunks.filter(status="done").count()}}

