"""PRM evaluation metrics against values computed by hand (pure functions: no database)."""
import random

import pytest

from labeling.core import evaluation
from labeling.core.evaluation import (best_of_n, best_of_n_exact, best_threshold, first_error_prediction,
                                 processbench_f1, step_auroc)


def brute_auroc(scores, labels):
    pos = [s for s, l in zip(scores, labels) if l in (0, 1)]
    neg = [s for s, l in zip(scores, labels) if l == -1]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# --- step AUROC ---------------------------------------------------------------------------------------

def test_auroc_by_hand():
    # not-error steps score 0.9, 0.8, 0.3; the error step 0.4. Pairs: 0.9 > 0.4, 0.8 > 0.4, 0.3 < 0.4 -> 2/3.
    assert step_auroc([0.9, 0.8, 0.4, 0.3], [1, 0, -1, 1]) == pytest.approx(2 / 3)


def test_auroc_counts_ties_as_half():
    # positives {0.5, 0.7}, negatives {0.5, 0.2}: 0.5=0.5 -> 1/2, 0.5>0.2, 0.7>0.5, 0.7>0.2 -> 3.5 / 4.
    assert step_auroc([0.5, 0.5, 0.2, 0.7], [1, -1, -1, 0]) == 0.875
    assert step_auroc([0.3] * 4, [1, -1, 0, -1]) == 0.5


def test_auroc_of_perfect_and_inverted_scores():
    assert step_auroc([0.9, 0.8, 0.1], [1, 0, -1]) == 1.0
    assert step_auroc([0.1, 0.2, 0.9], [1, 0, -1]) == 0.0


def test_auroc_with_scores_of_p_error():
    # The hand example with P(error) = 1 - P(not error) and -1 as the positive class: still 2/3.
    assert step_auroc([0.1, 0.2, 0.6, 0.7], [1, 0, -1, 1], positive="error") == pytest.approx(2 / 3)
    # Reading P(not error) scores as P(error) flips the ranking: 1 - 2/3.
    assert step_auroc([0.9, 0.8, 0.4, 0.3], [1, 0, -1, 1], positive="error") == pytest.approx(1 / 3)


def test_auroc_skips_unrated_steps():
    assert step_auroc([0.9, 0.0, 0.8, 0.4, 0.3], [1, None, 0, -1, 1]) == pytest.approx(2 / 3)


def test_auroc_is_none_with_one_class():
    assert step_auroc([0.9, 0.2], [1, 0]) is None
    assert step_auroc([0.9, 0.2], [-1, -1]) is None
    assert step_auroc([], []) is None
    assert step_auroc([0.5], [None]) is None


def test_auroc_matches_the_pairwise_definition():
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(2, 40)
        scores = [rng.choice([0.1, 0.2, 0.5, 0.9, rng.random()]) for _ in range(n)]  # plenty of ties
        labels = [rng.choice(evaluation.RATINGS) for _ in range(n)]
        if -1 not in labels or set(labels) == {-1}:
            continue
        assert step_auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))


@pytest.mark.parametrize("scores, labels, kwargs", [
    ([0.5], [2], {}), ([0.5, 0.1], [1], {}), ([float("nan"), 0.2], [1, -1], {}),
    ([0.5], [1], {"positive": "good"}),
])
def test_auroc_rejects_bad_input(scores, labels, kwargs):
    with pytest.raises(ValueError):
        step_auroc(scores, labels, **kwargs)


# --- ProcessBench -------------------------------------------------------------------------------------

def test_first_error_is_the_first_score_strictly_below_the_threshold():
    assert first_error_prediction([0.9, 0.6, 0.4, 0.2]) == 2
    assert first_error_prediction([0.9, 0.6, 0.4, 0.2], threshold=0.7) == 1
    assert first_error_prediction([0.9, 0.6]) == -1
    assert first_error_prediction([0.5, 0.49]) == 1  # equal to the threshold is not an error
    assert first_error_prediction([]) == -1


def test_processbench_f1_by_hand():
    golds = [2, 0, 1, -1, -1, -1, -1]
    predictions = [2, -1, 1, -1, 3, -1, -1]
    # erroneous: 2=2 yes, -1 vs 0 no, 1=1 yes -> 2/3; correct: yes, no (3), yes, yes -> 3/4
    # F1 = 2 * (2/3)(3/4) / (2/3 + 3/4) = 1 / (17/12) = 12/17
    assert processbench_f1(golds, predictions) == {
        "error_acc": pytest.approx(2 / 3), "correct_acc": 0.75, "f1": pytest.approx(12 / 17),
        "n_error": 3, "n_correct": 4}


def test_a_first_error_too_early_or_too_late_is_wrong():
    result = processbench_f1([2, 1], [1, 2])
    assert (result["error_acc"], result["correct_acc"], result["f1"]) == (0.0, None, None)


def test_processbench_f1_with_empty_groups_and_zero_accuracy():
    assert processbench_f1([-1, -1], [-1, 0]) == {"error_acc": None, "correct_acc": 0.5, "f1": None,
                                                  "n_error": 0, "n_correct": 2}
    assert processbench_f1([], [])["f1"] is None
    assert processbench_f1([0, -1], [1, 0])["f1"] == 0.0


def test_processbench_f1_rejects_bad_input():
    with pytest.raises(ValueError):
        processbench_f1([0, -1], [0])
    with pytest.raises(ValueError):
        processbench_f1([-2], [0])


SOLUTIONS = [  # (gold first error, step scores)
    (1, [0.9, 0.3, 0.8]),   # right iff 0.3 < t <= 0.9
    (-1, [0.8, 0.6, 0.7]),  # right iff t <= 0.6
    (0, [0.4, 0.9]),        # right iff 0.4 < t
    (-1, [0.95, 0.45]),     # right iff t <= 0.45
]


def test_best_threshold_by_hand():
    golds, scores = zip(*SOLUTIONS)
    # Every solution is right only for 0.4 < t <= 0.45; of the candidate scores only 0.45 is in there.
    result = best_threshold(golds, scores)
    assert result == {"threshold": 0.45, "error_acc": 1.0, "correct_acc": 1.0, "f1": 1.0,
                      "n_error": 2, "n_correct": 2}
    # At the usual 0.5 the last solution's 0.45 is flagged: correct accuracy 1/2, F1 = 2 * 1/2 / 1.5.
    at_half = processbench_f1(golds, [first_error_prediction(s) for s in scores])
    assert at_half["f1"] == pytest.approx(2 / 3)
    assert best_threshold(golds, scores, thresholds=[0.5, 0.7])["threshold"] == 0.5  # tie: the smaller


def test_best_threshold_matches_trying_every_threshold():
    rng = random.Random(3)
    for _ in range(20):
        golds, scores = [], []
        for _ in range(rng.randint(2, 12)):
            steps = [rng.choice([0.1, 0.3, 0.5, 0.7, 0.9]) for _ in range(rng.randint(0, 5))]
            scores.append(steps)
            golds.append(rng.choice([-1] + list(range(len(steps) + 1))))  # a gold past the end never matches
        if -1 not in golds or set(golds) == {-1}:
            continue
        candidates = sorted({s for steps in scores for s in steps} | {1.0})
        brute = max(processbench_f1(golds, [first_error_prediction(s, t) for s in scores])["f1"]
                    for t in candidates)
        assert best_threshold(golds, scores)["f1"] == pytest.approx(brute)


def test_best_threshold_needs_both_groups():
    with pytest.raises(ValueError):
        best_threshold([-1, -1], [[0.5], [0.2]])


# --- best-of-N ----------------------------------------------------------------------------------------

def cand(prm, last, answer, correct):
    return {"score_prm": prm, "score_last": last, "answer": answer, "is_correct": correct}


PROBLEMS = [
    [cand(0.9, 0.2, "5", False), cand(0.7, 0.8, "6", True), cand(0.1, 0.5, "6", True)],  # a, b, c
    [cand(0.6, 0.6, "1", True), cand(0.6, 0.3, "2", False)],                              # d, e
]
# N=1: any rule picks the one drawn: problem 1 2/3, problem 2 1/2 -> 7/12.
# N=2, problem 1 over {a,b} {a,c} {b,c}: prm a, a, b -> 1/3; last b, c, b -> 1; majority 5|6 tie 1/2,
#   tie 1/2, "6" 1 -> 2/3; oracle 1. Problem 2, {d,e}: prm tie 1/2; last d 1; majority tie 1/2; oracle 1.
# N=3, problem 1: prm a 0; last b 1; majority "6" 1; oracle 1. Problem 2 has 2: as at N=2.
HAND = {
    "prm": [(1, 7 / 12), (2, (1 / 3 + 1 / 2) / 2), (3, (0 + 1 / 2) / 2)],
    "last": [(1, 7 / 12), (2, 1.0), (3, 1.0)],
    "majority": [(1, 7 / 12), (2, (2 / 3 + 1 / 2) / 2), (3, (1 + 1 / 2) / 2)],
    "oracle": [(1, 7 / 12), (2, 1.0), (3, 1.0)],
}


def approx_curves(curves, **tolerance):
    return {rule: [(n, pytest.approx(acc, **tolerance)) for n, acc in points]
            for rule, points in curves.items()}


def test_exact_best_of_n_by_hand():
    assert best_of_n_exact(PROBLEMS) == approx_curves(HAND)


def test_random_best_of_n_agrees_with_the_hand_values():
    assert best_of_n(PROBLEMS, samples=3000, seed=1) == approx_curves(HAND, abs=0.03)


def test_random_best_of_n_agrees_with_the_exact_expectation():
    rng = random.Random(11)
    problems = []
    for _ in range(6):
        problem = []
        for _ in range(rng.randint(1, 7)):
            answer = rng.choice(["1", "2", "3", None])
            problem.append(cand(rng.choice([0.2, 0.5, rng.random()]), rng.random(), answer, answer == "1"))
        problems.append(problem)
    exact = best_of_n_exact(problems, ns=[1, 2, 3, 5, 7])
    assert best_of_n(problems, ns=[1, 2, 3, 5, 7], samples=1500, seed=2) == approx_curves(exact, abs=0.03)


def test_best_of_n_is_deterministic_with_a_seed():
    assert best_of_n(PROBLEMS, samples=20, seed=5) == best_of_n(PROBLEMS, samples=20, seed=5)


def test_a_candidate_without_an_answer_takes_a_slot_but_is_never_picked():
    problems = [[cand(0.99, 0.99, None, False), cand(0.5, 0.5, "3", True)]]
    # N=1: half the draws hold only the unanswered one -> 1/2; N=2: the answered one is picked -> 1.
    expected = [(1, 0.5), (2, 1.0)]
    assert best_of_n_exact(problems) == {rule: expected for rule in evaluation.RULES}


def test_exact_argmax_is_closed_form_for_large_n():
    # 1000 distinct scores, only the top one correct: solved iff the draw holds it, k / 1000.
    problems = [[cand(i / 1000, 0.0, str(i), i == 999) for i in range(1000)]]
    result = best_of_n_exact(problems, ns=[1, 10, 500, 1000], rules=("prm", "oracle"))
    assert result == approx_curves({"prm": [(1, 0.001), (10, 0.01), (500, 0.5), (1000, 1.0)],
                                    "oracle": [(1, 0.001), (10, 0.01), (500, 0.5), (1000, 1.0)]})


def test_exact_majority_breaks_three_way_ties_uniformly():
    problems = [[cand(0, 0, "1", True), cand(0, 0, "2", False), cand(0, 0, "3", False),
                 cand(0, 0, "1", True)]]
    # N=3 subsets: {1,2,3} 3-way tie 1/3 (twice, one per "1"), {1,1,x} "1" wins (twice) -> (2/3 + 2) / 4.
    assert best_of_n_exact(problems, ns=[3], rules=("majority",)) == {"majority": [(3, pytest.approx(2 / 3))]}


def test_default_ns_double_up_to_the_largest_problem():
    assert evaluation.default_ns(1) == [1]
    assert evaluation.default_ns(7) == [1, 2, 4, 7]
    assert evaluation.default_ns(8) == [1, 2, 4, 8]
    assert evaluation.default_ns(0) == []


def test_best_of_n_with_no_problems_or_an_empty_problem():
    assert best_of_n([], samples=3) == {rule: [] for rule in evaluation.RULES}
    assert best_of_n_exact([], ns=[1]) == {rule: [(1, None)] for rule in evaluation.RULES}
    # An empty problem still counts in the denominator.
    assert best_of_n_exact([[cand(0.5, 0.5, "1", True)], []], rules=("prm",)) == {"prm": [(1, 0.5)]}


@pytest.mark.parametrize("kwargs", [{"ns": [0]}, {"ns": [1.5]}, {"rules": ("prm", "orm")}])
def test_best_of_n_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        best_of_n(PROBLEMS, samples=1, **kwargs)


def test_best_of_n_rejects_a_candidate_missing_a_field():
    with pytest.raises(ValueError, match="score_last"):
        best_of_n([[{"score_prm": 1, "answer": "1", "is_correct": True}]], samples=1)
    assert best_of_n([[{"score_prm": 1, "answer": "1", "is_correct": True}]], samples=1, rules=("prm",))


def test_exact_majority_refuses_too_many_subsets():
    problems = [[cand(0, 0, str(i % 3), i == 0) for i in range(30)]]
    with pytest.raises(ValueError, match="max_subsets"):
        best_of_n_exact(problems, ns=[15], rules=("majority",))  # C(30, 15) is about 155 million
