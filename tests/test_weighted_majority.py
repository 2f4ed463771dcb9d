"""PRM-weighted majority vote and the ORM's pick in best-of-N, against direct computations (pure functions)."""
import itertools
import random
from fractions import Fraction

import pytest

from labeling.core.evaluation import best_of_n, best_of_n_exact
from labeling.services.training.benchmarks import COMPARE_RULES, best_of_n_table


def cand(answer, correct, prm, orm=0.5):
    return {"answer": answer, "is_correct": correct, "score_prm": prm, "score_last": prm, "score_orm": orm}


# Majority picks "2" (3 votes, wrong); the PRM's top candidate says "3" (wrong); the PRM-weighted vote
# gives "1" .8 + .4 = 1.2, "2" .3 + .35 + .2 = .85, "3" .95, so it picks "1" (right). The ORM's top score is
# the second "1" (right).
HAND = [cand("1", True, .8, .3), cand("1", True, .4, .9), cand("2", False, .3, .1), cand("2", False, .35, .2),
        cand("2", False, .2, .4), cand("3", False, .95, .6)]


def direct(candidates, n, rule):
    """Every ordered draw of n candidates, each tie broken every possible way: the exact share solved.

    Written without the library's closed forms: votes are summed per answer from scratch, then the pick is
    uniform over the answers tied at the top and uniform over the drawn candidates giving the picked answer.
    """
    total, count = Fraction(0), 0
    for draw in itertools.permutations(candidates, min(n, len(candidates))):
        count += 1
        votes = {}
        for c in draw:
            if c["answer"] is None:
                continue
            if rule == "weighted_majority":
                weight = c["score_prm"] if c["score_prm"] > 0 and c["score_prm"] != float("inf") else 0
            else:
                weight = 1
            votes[c["answer"]] = votes.get(c["answer"], Fraction(0)) + Fraction(weight)
        if not votes:
            continue
        top = max(votes.values())
        tied = [a for a, v in votes.items() if v == top]
        for answer in tied:
            givers = [c for c in draw if c["answer"] == answer]
            total += Fraction(sum(c["is_correct"] for c in givers), len(givers) * len(tied))
    return total / count


def exact(problems, ns, rule):
    return [acc for _, acc in best_of_n_exact(problems, ns, rules=(rule,))[rule]]


def test_weighted_majority_beats_majority_and_the_prm_on_the_hand_example():
    got = best_of_n_exact([HAND], [6], rules=("prm", "orm", "majority", "weighted_majority", "oracle"))
    assert {rule: values[0][1] for rule, values in got.items()} == {
        "prm": 0.0, "orm": 1.0, "majority": 0.0, "weighted_majority": 1.0, "oracle": 1.0}


def test_weighted_majority_equals_the_direct_computation_at_every_n():
    for n in range(1, 7):
        assert exact([HAND], [n], "weighted_majority")[0] == pytest.approx(float(direct(HAND, n, "weighted_majority")))
        # The same enumeration with one vote per candidate is plain majority: the library agrees there too.
        assert exact([HAND], [n], "majority")[0] == pytest.approx(float(direct(HAND, n, "majority")))


def test_weighted_majority_on_random_problems_with_ties_and_missing_answers():
    rng = random.Random(7)
    for _ in range(25):
        size = rng.randint(1, 6)
        problem = [cand(rng.choice(["a", "b", "c", None]), rng.random() < 0.4,
                        rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, float("-inf")])) for _ in range(size)]
        for n in range(1, size + 1):
            assert exact([problem], [n], "weighted_majority")[0] == pytest.approx(
                float(direct(problem, n, "weighted_majority"))), (problem, n)


def test_the_sampled_estimate_agrees_with_the_exact_value():
    problems = [HAND, HAND[:4], [cand("x", True, .1), cand("y", False, .2)]]
    ns = [1, 2, 4]
    sampled = best_of_n(problems, ns, rules=("weighted_majority",), samples=3000, seed=3)["weighted_majority"]
    for (n, estimate), value in zip(sampled, exact(problems, ns, "weighted_majority")):
        assert estimate == pytest.approx(value, abs=0.03), n


def test_the_comparison_table_has_every_rule_and_falls_back_to_sampling():
    table, method = best_of_n_table([HAND])
    assert method == "exact" and tuple(table) == COMPARE_RULES
    assert table["weighted_majority"][-1] == [6, 1.0] and table["majority"][-1] == [6, 0.0]
    _, method = best_of_n_table([HAND], max_subsets=2)
    assert method == "sampled"


def test_weighted_majority_needs_prm_scores():
    with pytest.raises(ValueError, match="score_prm"):
        best_of_n_exact([[{"answer": "1", "is_correct": True}]], [1], rules=("weighted_majority",))
