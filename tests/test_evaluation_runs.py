"""Evaluating a PRM version on the held-out set (split "test"), and promoting it.

The exact checks use a scorer written here whose step values are chosen by hand, so every expected
metric is worked out in the comments; the end-to-end checks run a real tiny step-head PRM.
"""
import json
import math

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Annotator, Job, ModelVersion, Problem, Solution, VerifierScore
from labeling.services.training.evaluation import evaluate_version, evaluation_save, evaluation_start
from labeling.services.training.promotion import (evaluation_better, promote_if_better, promotion_baseline,
                                                   version_promote)
from labeling.errors import EvaluationError
from labeling.services.rounds.registry import model_version_register, selector_activate, selector_active
from tests.label_factories import annotation_make

# P(step is not an error) of every step text in the held-out set below.
P_OK = {"a1": .9, "a2": .8, "a3": .3, "b1": .7, "b2": .4, "c1": .6, "c2": .55, "d1": .2, "e1": .95, "e2": .85,
        "x1": .5, "x2": .99, "y1": .8, "z1": .6, "u1": .3, "u2": .2, "u3": .7}


class HandScorer:
    """Step values from P_OK: (p_neg, p_neu, p_pos) triples like a step-head PRM, or floats like an implicit one.
    The solution score is the product of P(not negative), PRM800K's."""

    def __init__(self, triples=True):
        self.triples, self.seen = triples, []

    def score(self, items, batch_size=16, max_length=1024):
        out = []
        for _problem, steps in items:
            self.seen.extend(steps)
            out.append([(1 - P_OK[s], P_OK[s] / 2, P_OK[s] / 2) if self.triples else P_OK[s] for s in steps])
        return out

    def solution_score(self, values):
        return math.prod(v[1] + v[2] if self.triples else v for v in values)


def solution(problem, steps, answer=None, correct=None):
    return Solution.objects.create(problem=problem, steps=steps, final_answer=answer, is_correct=correct)


def annotate(annotator, sol, ratings, finish_reason, **extra):
    return annotation_make(annotator=annotator, solution=sol, ratings=ratings, finish_reason=finish_reason, **extra)


@pytest.fixture
def held_out(db):
    """Two test problems with labeled trajectories and graded candidates; a train problem that must not count."""
    p1 = Problem.objects.create(text="p1: 2 + 2?", answer="4", split="test")
    p2 = Problem.objects.create(text="p2: half of 1?", answer="1/2", split="test")
    train = Problem.objects.create(text="train: 1 + 1?", answer="2", split="train")
    ann = Annotator.objects.create()
    # Labeled trajectories (ungraded solutions, so not best-of-N candidates):
    annotate(ann, solution(p1, ["a1", "a2", "a3"]), [1, 1, -1], "found_error")  # gold 2
    annotate(ann, solution(p1, ["b1", "b2"]), [1, 0], "solution")               # gold -1
    annotate(ann, solution(p2, ["c1", "c2", "c3"]), [0, -1], "found_error")     # gold 1 (c3 never rated)
    annotate(ann, solution(p2, ["d1", "d2"]), [1], "give_up")                   # AUROC only: no gold
    annotate(ann, solution(p1, ["e1", "e2"]), [1, 1], "solution")               # gold -1
    # Never read: quality control, screening, a train problem.
    annotate(ann, solution(p1, ["qc"]), [-1], "found_error", is_quality_control=True)
    annotate(ann, solution(p1, ["scr"]), [-1], "found_error", is_screening=True)
    annotate(ann, solution(train, ["t"]), [-1], "found_error")
    # Graded candidates: (steps, answer, correct)
    for problem, rows in ((p1, [(["x1", "x2"], "4", True), (["y1"], "5", False), (["z1"], "\\text{4}", True)]),
                          (p2, [(["u1"], "\\frac{1}{2}", True), (["u2"], "1/2", True), (["u3"], "3", False)])):
        for steps, answer, correct in rows:
            solution(problem, steps, answer, correct)
    solution(train, ["t2"], "2", True)
    return p1, p2


def prm(name="prm-a", path="/nonexistent"):
    return model_version_register(name=name, kind=ModelVersion.Kind.PRM, path=path,
                                  config={"architecture": "step_head"})


@pytest.mark.parametrize("triples", [True, False], ids=["step-head triples", "implicit floats"])
def test_it_computes_the_metrics_worked_out_by_hand(held_out, triples):
    version = prm()
    m = evaluate_version(version=version, scorer=HandScorer(triples), batch_size=2)
    assert m["counts"] == {"annotations": 5, "steps": 10, "steps_truncated": 0, "first_error_solutions": 4,
                           "solutions": 6, "solutions_unscorable": 0, "scores_written": 6, "scores_reused": 0,
                           "best_of_n_problems": 2,
                           "problems": 2}
    # AUROC: 8 steps rated 0/+1 (.9 .8 .7 .4 .6 .2 .95 .85), 2 rated -1 (.3 .55). Above .3: all but .2 -> 7;
    # above .55: .9 .8 .7 .6 .95 .85 -> 6. (7 + 6) / (8 * 2) = 13/16.
    assert m["step_auroc"] == pytest.approx(13 / 16)
    # ProcessBench at 0.5: a (gold 2) predicts 2, right; c (gold 1) predicts -1 (.6, .55 >= .5), wrong;
    # b (gold -1) predicts 1 (.4), wrong; e (gold -1) predicts -1, right. 1/2 and 1/2: F1 = 1/2.
    fixed = m["processbench"]["fixed"]
    assert (fixed["error_acc"], fixed["correct_acc"], m["processbench_f1"]) == (0.5, 0.5, pytest.approx(0.5))
    # Best threshold: a is right for t in (.3, .8], c for (.55, .6], b for t <= .4, e for t <= .85.
    # t = .4: a, b, e right -> errors 1/2, correct 1 -> F1 2/3; (.55, .6]: a, c, e -> 1 and 1/2 -> 2/3;
    # no t gets all four. Ties go to the smallest threshold: .4.
    best = m["processbench"]["best"]
    assert best["threshold"] == pytest.approx(0.4) and best["f1"] == pytest.approx(2 / 3)
    # Best-of-N, N = 1, 2, 3. p1: x (.5*.99 = .495, last .99, right), y (.8, wrong), z (.6, right);
    # p2: u1 (.3, right), u2 (.2, right), u3 (.7, wrong). "4" and "\text{4}", "\frac{1}{2}" and "1/2" are one
    # answer each.
    # PRM: p1 N=1 2/3; N=2 {x,y}->y, {x,z}->z, {y,z}->y: 1/3; N=3 y: 0. p2 the same by the same ranks.
    # Last step: p1 ranks x (.99) > y > z: N=2 {x,y}->x, {x,z}->x, {y,z}->y: 2/3; N=3 x: 1. p2 as PRM.
    # Majority: N=2 a tie between two answers is 1/2, so p1 (1/2 + 1 + 1/2) / 3 = 2/3, likewise p2; N=3 the
    # right answer has two votes in both. Oracle: two right of three: 2/3, then 1.
    expected = {"prm": [2 / 3, 1 / 3, 0], "last": [2 / 3, (2 / 3 + 1 / 3) / 2, (1 + 0) / 2],
                "majority": [2 / 3, 2 / 3, 1], "oracle": [2 / 3, 1, 1]}
    for rule, values in expected.items():
        assert [n for n, _ in m["best_of_n"][rule]] == [1, 2, 3]
        assert [acc for _, acc in m["best_of_n"][rule]] == pytest.approx(values), rule
    assert m["best_of_n_max"] == pytest.approx({"n": 3, "prm": 0, "last": 0.5, "majority": 1, "oracle": 1})
    assert m["best_of_n_majority"] == "exact"
    assert json.loads(json.dumps(m)) == m  # JSON-able as it is
    assert VerifierScore.objects.filter(model_version=version).count() == 6
    stored = VerifierScore.objects.get(model_version=version,
                                       solution__steps_hash=Solution.hash_steps(["x1", "x2"]))
    assert stored.score == pytest.approx(0.495)


def test_scores_already_written_are_read_not_scored_again(held_out):
    version = prm()
    first = evaluate_version(version=version, scorer=HandScorer())
    scorer = HandScorer()
    second = evaluate_version(version=version, scorer=scorer)
    assert not {"x1", "x2", "y1", "z1", "u1", "u2", "u3"} & set(scorer.seen)  # only trajectories scored
    assert (second["counts"]["scores_written"], second["counts"]["scores_reused"]) == (0, 6)
    assert second["held_out"]["digest"] == first["held_out"]["digest"]
    assert second["best_of_n"] == first["best_of_n"] and second["step_auroc"] == first["step_auroc"]
    assert VerifierScore.objects.count() == 6


def test_new_labels_change_the_held_out_digest(held_out):
    version = prm()
    before = evaluate_version(version=version, scorer=HandScorer())["held_out"]["digest"]
    e = Solution.objects.get(steps_hash=Solution.hash_steps(["e1", "e2"]))
    annotate(Annotator.objects.create(), e, [1, 1], "solution")
    assert evaluate_version(version=version, scorer=HandScorer())["held_out"]["digest"] != before


def test_it_refuses_to_start_without_held_out_data_or_on_a_generator(db):
    with pytest.raises(EvaluationError, match="no held-out data"):
        evaluation_start(version=prm())
    generator = model_version_register(name="gen", kind=ModelVersion.Kind.GENERATOR, path="x")
    with pytest.raises(EvaluationError, match="not a PRM"):
        evaluation_start(version=generator)
    assert not Job.objects.exists()


# --- promotion ----------------------------------------------------------------------------------------

def evaluation(f1, bon, digest="same"):
    return {"processbench_f1": f1, "best_of_n_max": {"n": 4, "prm": bon}, "held_out": {"digest": digest}}


def test_make_selector_switches_the_selector_atomically(db):
    old, new = prm("old"), prm("new")
    selector_activate(version=old)
    version_promote(version=new)
    assert selector_active() == new
    assert list(ModelVersion.objects.filter(is_active_selector=True)) == [new]


def test_make_selector_records_the_admin_who_clicked(alice):
    version = prm("new")
    # a person's switch needs an evaluation (or a force): labeling.services.rounds.registry.selector_unready
    ModelVersion.objects.filter(pk=version.pk).update(metrics={"evaluation": evaluation(0.5, 0.5)})
    version_promote(version=version, user=alice)
    version.refresh_from_db()
    assert version.is_active_selector and version.activated_by == alice


@pytest.mark.parametrize("new, old, better", [
    ((0.6, 0.5), (0.5, 0.5), True),    # higher F1, best-of-N equal
    ((0.6, 0.7), (0.5, 0.5), True),    # higher F1, higher best-of-N
    ((0.5, 0.9), (0.5, 0.5), False),   # F1 only equal
    ((0.6, 0.4), (0.5, 0.5), False),   # best-of-N lower
    ((0.4, 0.9), (0.5, 0.5), False),   # F1 lower
    ((None, 0.9), (0.5, 0.5), False),  # no F1 (no erroneous or no correct gold)
])
def test_the_better_rule(new, old, better):
    assert evaluation_better(evaluation(*new), evaluation(*old)) is better


@pytest.mark.django_db
def test_promote_if_better_promotes_only_a_better_version():
    active, worse, better = prm("active"), prm("worse"), prm("better")
    evaluation_save(version=active, metrics=evaluation(0.5, 0.5))
    evaluation_save(version=worse, metrics=evaluation(0.45, 0.6))
    evaluation_save(version=better, metrics=evaluation(0.55, 0.5))
    selector_activate(version=active)
    assert promote_if_better(version=worse) is False
    assert selector_active() == active
    assert promote_if_better(version=better) is True
    assert selector_active() == better
    assert promote_if_better(version=active) is False  # and back: the old one is now the worse
    assert selector_active() == better


@pytest.mark.django_db
def test_promote_if_better_never_compares_across_held_out_sets_or_without_an_evaluation():
    active, new = prm("active"), prm("new")
    selector_activate(version=active)
    evaluation_save(version=new, metrics=evaluation(0.9, 0.9, digest="after new labels"))
    assert promotion_baseline(version=new) == active  # the worker evaluates the active one first
    assert promote_if_better(version=new) is False
    evaluation_save(version=active, metrics=evaluation(0.1, 0.1, digest="before"))
    assert promotion_baseline(version=new) == active
    assert promote_if_better(version=new) is False
    evaluation_save(version=active, metrics=evaluation(0.1, 0.1, digest="after new labels"))
    assert promotion_baseline(version=new) is None
    assert promote_if_better(version=new) is True


@pytest.mark.django_db
def test_with_no_selector_an_evaluated_version_is_promoted_and_an_unevaluated_one_is_not():
    unevaluated, evaluated = prm("unevaluated"), prm("evaluated")
    assert promote_if_better(version=unevaluated) is False
    evaluation_save(version=evaluated, metrics=evaluation(0.3, 0.3))
    assert promote_if_better(version=evaluated) is True and selector_active() == evaluated


# --- end to end: a real tiny PRM, the job, the command ------------------------------------------------

@pytest.fixture(scope="module")
def tiny_prm_dirs(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.tiny_models import build_token_classifier
    return [build_token_classifier(tmp_path_factory.mktemp(f"tiny_prm{seed}"), seed=seed) for seed in (0, 1)]


def test_a_job_evaluates_a_tiny_prm_and_stores_its_metrics(held_out, tiny_prm_dirs,
                                                           django_capture_on_commit_callbacks):
    version = prm("tiny", tiny_prm_dirs[0])
    with django_capture_on_commit_callbacks(execute=True):
        job = evaluation_start(version=version)
        assert evaluation_start(version=version) == job  # one evaluation at a time per version
    job.refresh_from_db()
    version.refresh_from_db()
    assert job.kind == Job.Kind.EVALUATE and job.model_version == version
    assert job.status == Job.Status.DONE, job.error
    metrics = version.metrics["evaluation"]
    assert job.result["evaluation"] == metrics
    assert metrics["counts"]["solutions"] == 6 and metrics["counts"]["steps"] == 10
    assert 0 <= metrics["step_auroc"] <= 1
    assert [n for n, _ in metrics["best_of_n"]["prm"]] == [1, 2, 3]
    assert VerifierScore.objects.filter(model_version=version).count() == 6
    for score in VerifierScore.objects.filter(model_version=version):
        assert 0 < score.score <= 1 and all(len(step) == 3 for step in score.step_scores)


def test_promote_if_better_evaluates_the_active_selector_first(held_out, tiny_prm_dirs,
                                                               django_capture_on_commit_callbacks):
    active, new = prm("tiny-active", tiny_prm_dirs[0]), prm("tiny-new", tiny_prm_dirs[1])
    selector_activate(version=active)
    with django_capture_on_commit_callbacks(execute=True):
        job = evaluation_start(version=new, promote_if_better=True)
    job.refresh_from_db()
    active.refresh_from_db()
    new.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    old_eval, new_eval = active.metrics["evaluation"], new.metrics["evaluation"]
    assert old_eval["held_out"]["digest"] == new_eval["held_out"]["digest"]
    assert job.result["promoted"] is evaluation_better(new_eval, old_eval)
    assert selector_active() == (new if job.result["promoted"] else active)


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_the_metrics_as_json(tiny_prm_dirs, capsys):
    p = Problem.objects.create(text="what is 1 + 1?", answer="2", split="test")
    for k, (answer, correct) in enumerate([("2", True), ("3", False), ("2", True)]):
        solution(p, [f"step {k}", f"the answer is {answer}"], answer, correct)
    annotate(Annotator.objects.create(), solution(p, ["one", "two"]), [1, -1], "found_error")
    prm("tiny", tiny_prm_dirs[0])
    with pytest.raises(CommandError, match="no model version named or numbered 'nope'"):
        call_command("evaluate", "--model", "nope")
    call_command("evaluate", "--model", "tiny", "--json", "--sync")
    metrics = json.loads(capsys.readouterr().out)
    assert {"step_auroc", "processbench", "processbench_f1", "best_of_n", "best_of_n_max", "counts"} <= set(metrics)
    assert metrics["counts"]["solutions"] == 3 and metrics["counts"]["steps"] == 2
    assert ModelVersion.objects.get(name="tiny").metrics["evaluation"] == metrics
    version_id = ModelVersion.objects.get(name="tiny").pk
    call_command("evaluate", "--model", str(version_id))  # by id; the scores are read back, not recomputed
    assert "best-of-3: PRM" in capsys.readouterr().out
