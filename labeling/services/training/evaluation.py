"""Evaluating a PRM version on the held-out set.

The held-out set is what belongs to problems in split "test" (`Problem.split`). Rounds never draw
those problems (rounds.eligible_problems), so a PRM trained on round labels has not seen them:

- Step labels: every annotation of a test problem that is neither quality control nor screening,
  read as labeling.formats.training.annotation_steps reads it for training (the chosen completion
  per step, up to and including the first -1). Each annotation is one trajectory, so a solution
  rated by three annotators counts three times, as its three labelings would in training.
- First-error golds (ProcessBench): the trajectories that end in a -1 (gold = that step) or that
  the annotator finished without one (finish_reason "solution", gold = -1). A trajectory given up
  on, or stopped as a bad problem, says nothing of where the first error is: AUROC only.
- Best-of-N: every graded candidate solution (is_correct not null) of a test problem, graded in the
  mode rounds select in (settings.STEPWISE_SELECTION_GRADING, "fixed" by default): an evaluation first
  regrades those graded otherwise (labeling.services.data.solution_grading.solutions_grade_in_mode).

Scores (labeling.core.evaluation has the metrics): a step's score is P(not negative), p_neu + p_pos of
a step-head PRM's triple or the value itself for an implicit PRM's sigmoid(q_k). A step truncated
away (None) is left out of AUROC, and its trajectory out of F1. A candidate's PRM score is the
scorer's solution score, as a round would queue it; its "last" score is its last step's P(not
negative). An unscorable candidate (score None: its steps do not all fit the version's maximum
length) is counted and ranked below every scorable one by those two rules, the candidate set staying
the same for every version. Answers are grouped for majority voting after the MATH and PRM800K
normalisations (labeling.core.normalize), so "\\frac12" and "1/2" are one vote.

Comparing two evaluations and promoting a version: labeling.services.training.promotion.
"""
import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.core import evaluation
from labeling.core import normalize as mn
from labeling.core.step_scores import p_not_negative
from labeling.formats.training import annotation_steps
from labeling.models import Annotation, Job, ModelVersion, Solution, Split, VerifierScore
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_create, split
from labeling.services.rounds.scoring import scores_write, scoring_max_length
from labeling.services.data.solution_grading import solutions_grade_in_mode
from labeling.services.data.training_exports import annotation_pages
from labeling.errors import EvaluationError
from workers import tasks

CHUNK = 500  # annotations read per round of queries
FIXED_THRESHOLD = 0.5
BEST_OF_N_RULES = ("prm", "last", "majority", "oracle")
MAX_MAJORITY_SUBSETS = 20_000  # above this, majority vote is estimated by draws instead of enumerated
UNSCORABLE = float("-inf")  # best-of-N rank of an unscorable candidate: below every score


# --- the held-out set ---------------------------------------------------------------------------

def heldout_annotations():
    return Annotation.objects.filter(problem__split=Split.TEST, is_quality_control=False, is_screening=False)


def heldout_candidates():
    return Solution.objects.filter(problem__split=Split.TEST, is_correct__isnull=False)


@dataclass(frozen=True)
class Trajectory:
    annotation_id: int
    problem_id: int
    prompt: str
    steps: tuple
    ratings: tuple
    finished: bool  # finish_reason "solution": the annotator reached the end

    @property
    def gold(self):
        """ProcessBench gold: the first -1's index, -1 for a finished one without, None when unknown."""
        if self.ratings[-1] == -1:
            return len(self.ratings) - 1
        return -1 if self.finished else None


def heldout_trajectories(*, chunk=CHUNK):
    """Yield a Trajectory per held-out annotation with a rated step, in annotation id order."""
    for header, steps, completions in annotation_pages(heldout_annotations(), ("problem_id", "problem__text",
                                                                               "finish_reason"), chunk=chunk):
        for aid, pid, prompt, finish_reason in header:
            path = annotation_steps(steps.get(aid, []), completions.get(aid, {}))
            if path:
                yield Trajectory(aid, pid, prompt, tuple(t for t, _ in path), tuple(r for _, r in path),
                                 finish_reason == "solution")


def answer_key(answer):
    """A final answer as majority voting compares it; None when there is none."""
    if answer is None or not answer.strip():
        return None
    try:
        key = mn.prm_normalize(mn.mathd_normalize(answer))
    except Exception:  # the normalisers give up on odd LaTeX: compare it as written
        key = None
    return key or answer.strip()


# --- starting, running, storing -----------------------------------------------------------------

@transaction.atomic
def evaluation_start(*, version: ModelVersion, user=None, promote_if_better: bool = False) -> Job:
    """A Job EVALUATE for `version`, sent to a GPU worker on commit. An evaluation of it already under way is
    returned instead of a second one."""
    if version.kind != ModelVersion.Kind.PRM:
        raise EvaluationError(f"{version.name} is a {version.kind}, not a PRM: only a PRM can be evaluated")
    if not heldout_annotations().exists() and not heldout_candidates().exists():
        raise EvaluationError("no held-out data: evaluation reads annotations and graded candidate solutions of "
                              "problems in split 'test', and there are none")
    list(ModelVersion.objects.select_for_update().filter(pk=version.pk).values_list("id"))  # one click at a time
    running = Job.objects.filter(kind=Job.Kind.EVALUATE, model_version=version,
                                 status__in=[Job.Status.PENDING, Job.Status.RUNNING]).first()
    if running is not None:
        return running
    job = job_create(kind=Job.Kind.EVALUATE, model_version=version, total=0, user=user,
                     parameters={"promote_if_better": bool(promote_if_better)})
    enqueue(tasks.gpu_evaluate, job.pk)
    return job


class _Progress:
    def __init__(self, callback, total):
        self.callback, self.total, self.done = callback, total, 0

    def add(self, n, message):
        self.done += n
        if self.callback:
            self.callback(self.done, max(self.total, self.done), message)


def evaluate_version(*, version: ModelVersion, scorer, progress=None, batch_size: int | None = None,
                     max_length: int | None = None) -> dict:
    """Score the held-out set with `scorer` (built by the worker for `version`) and return its metrics.

    Candidate solutions get a VerifierScore by `version` (those it has already are read, not scored
    again). `progress(done, total, message)` is called after each batch. Returns a JSON-able dict; the
    caller stores it (evaluation_save).
    """
    batch_size = batch_size or settings.STEPWISE_SCORING_BATCH
    max_length = max_length or scoring_max_length(version=version)
    started = time.monotonic()
    grading = settings.STEPWISE_SELECTION_GRADING  # the held-out answers are judged as rounds judge them
    solutions_grade_in_mode(solutions=Solution.objects.filter(problem__split=Split.TEST), mode=grading)
    tracker = _Progress(progress, heldout_annotations().count() + heldout_candidates().count())
    digest = hashlib.sha256()
    steps = _score_trajectories(scorer, batch_size, max_length, tracker, digest)
    candidates = _score_candidates(version, scorer, batch_size, max_length, tracker, digest)
    fixed = evaluation.processbench_f1(steps["golds"], [evaluation.first_error_prediction(s, FIXED_THRESHOLD)
                                                        for s in steps["gold_scores"]])
    calibrated = _at_version_threshold(version, steps)
    try:
        best = evaluation.best_threshold(steps["golds"], steps["gold_scores"])
    except ValueError:  # needs both erroneous and correct solutions
        best = None
    bon, majority_method = _best_of_n(candidates["rows"])
    max_n = bon["prm"][-1][0] if bon else None
    return {
        "version": {"id": version.pk, "name": version.name},
        "evaluated_at": timezone.now().isoformat(),
        "seconds": round(time.monotonic() - started, 3),
        "held_out": {"split": Split.TEST.value, "digest": digest.hexdigest(), "grading": grading},
        "counts": {"annotations": steps["annotations"], "steps": len(steps["labels"]),
                   "steps_truncated": steps["truncated"], "first_error_solutions": len(steps["golds"]),
                   "solutions": len(candidates["rows"]), "solutions_unscorable": candidates["unscorable"],
                   "scores_written": candidates["written"], "scores_reused": candidates["reused"],
                   "best_of_n_problems": len({r["problem_id"] for r in candidates["rows"]}),
                   "problems": len(steps["problems"] | {r["problem_id"] for r in candidates["rows"]})},
        "step_auroc": evaluation.step_auroc(steps["scores"], steps["labels"]),
        "processbench": {"fixed": {"threshold": FIXED_THRESHOLD, **fixed}, "best": best, "calibrated": calibrated},
        "processbench_f1": fixed["f1"],
        "best_of_n": bon,
        "best_of_n_max": {"n": max_n, **{rule: bon[rule][-1][1] for rule in bon}} if bon else None,
        "best_of_n_majority": majority_method,
    }


def _at_version_threshold(version, steps):
    """F1 at the threshold chosen on a dev set (labeling.services.training.benchmarks), None if never chosen."""
    threshold = (version.config or {}).get("first_error_threshold")
    if threshold is None:
        return None
    source = ((version.metrics or {}).get("calibration") or {}).get("dev_set", "?")
    return {"threshold": threshold, "source": f"dev set {source}", **evaluation.processbench_f1(
        steps["golds"], [evaluation.first_error_prediction(s, threshold) for s in steps["gold_scores"]])}


def _score_trajectories(scorer, batch_size, max_length, tracker, digest):
    out = {"scores": [], "labels": [], "golds": [], "gold_scores": [], "problems": set(), "annotations": 0,
           "truncated": 0}
    cache = {}  # identical trajectories (one solution, several annotators) are scored once
    batch = []

    def flush():
        keys = [(t.prompt, t.steps) for t in batch]
        todo = list(dict.fromkeys(k for k in keys if k not in cache))
        if todo:
            for key, values in zip(todo, scorer.score([(p, list(s)) for p, s in todo], batch_size=batch_size,
                                                      max_length=max_length)):
                cache[key] = [p_not_negative(v) for v in values]
        for t, key in zip(batch, keys):
            ok = cache[key]
            digest.update(f"a{t.annotation_id};".encode())
            out["annotations"] += 1
            out["problems"].add(t.problem_id)
            for score, rating in zip(ok, t.ratings):
                if score is None:
                    out["truncated"] += 1
                else:
                    out["scores"].append(score)
                    out["labels"].append(rating)
            if t.gold is not None and None not in ok:
                out["golds"].append(t.gold)
                out["gold_scores"].append(ok)
        tracker.add(len(batch), f"scored {out['annotations']} labeled trajectories")
        batch.clear()
        if len(cache) > 10 * CHUNK:
            cache.clear()

    for trajectory in heldout_trajectories():
        batch.append(trajectory)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return out


def _score_candidates(version, scorer, batch_size, max_length, tracker, digest):
    out = {"rows": [], "written": 0, "reused": 0, "unscorable": 0}
    ids = list(heldout_candidates().order_by("id").values_list("id", flat=True))
    for part in split(ids, batch_size):
        stored = {sid: (score, steps) for sid, score, steps in VerifierScore.objects.filter(
            model_version=version, solution_id__in=part).values_list("solution_id", "score", "step_scores")}
        missing = [sid for sid in part if sid not in stored]
        if missing:
            new = scores_write(version_id=version.pk, solution_ids=missing, scorer=scorer, batch_size=batch_size,
                               max_length=max_length)
            stored.update({s.solution_id: (s.score, s.step_scores) for s in new})
            out["written"] += len(new)
        out["reused"] += len(part) - len(missing)
        for sid, pid, answer, correct in Solution.objects.filter(id__in=part).order_by("id").values_list(
                "id", "problem_id", "final_answer", "is_correct"):
            score, step_scores = stored[sid]
            digest.update(f"s{sid}{correct:d};".encode())
            if score is None:  # unscorable: the PRM's last choice, never ranked by its steps that fit
                out["unscorable"] += 1
                score_prm = score_last = UNSCORABLE
            else:
                score_prm, score_last = float(score), p_not_negative((step_scores or [None])[-1]) or 0.0
            out["rows"].append({"problem_id": pid, "answer": answer_key(answer), "is_correct": bool(correct),
                                "score_prm": score_prm, "score_last": score_last})
        tracker.add(len(part), f"scored {len(out['rows'])} candidate solutions")
    return out


def _best_of_n(rows):
    """{rule: [[N, accuracy], ...]} for N = 1, 2, 4, ... up to the most candidates a problem has."""
    by_problem = {}
    for row in rows:
        by_problem.setdefault(row["problem_id"], []).append(row)
    problems = list(by_problem.values())
    if not problems:
        return {}, None
    ns = evaluation.default_ns(max(len(p) for p in problems))
    results = evaluation.best_of_n_exact(problems, ns, rules=("prm", "last", "oracle"))
    try:
        results |= evaluation.best_of_n_exact(problems, ns, rules=("majority",), max_subsets=MAX_MAJORITY_SUBSETS)
        method = "exact"
    except ValueError:  # too many subsets to enumerate: the unbiased sampled estimate
        results |= evaluation.best_of_n(problems, ns, rules=("majority",), samples=200, seed=0)
        method = "sampled"
    return {rule: [[n, acc] for n, acc in results[rule]] for rule in BEST_OF_N_RULES}, method


@transaction.atomic
def evaluation_save(*, version: ModelVersion, metrics: dict) -> ModelVersion:
    """Store `metrics` as the version's `metrics["evaluation"]`, keeping its other metrics."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    version.metrics = {**(version.metrics or {}), "evaluation": metrics}
    version.save(update_fields=["metrics"])
    return version

