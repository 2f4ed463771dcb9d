"""Step values from rollouts on a scripted prover whose success probability from each prefix is known in closed
form: intervals cover at the rate they state, advantages telescope, binary search finds full Monte Carlo's
first error with fewer rollouts."""
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.core.intervals import wilson_interval
from labeling.core.rollout_values import (PrefixRequest, StepEstimate, best_of_k, binary_search_plan,
                                          estimate_fields, first_error_from_estimates, prefixes_to_estimate,
                                          run_search, step_values)
from tests.rollout_scripts import ScriptedSampler, first_error_curve

N = 8


def estimator(sampler, key, seed=0, n=N):
    def estimate(ks):
        return [StepEstimate(r.k, r.n, r.n_correct)
                for r in sampler.rollouts([PrefixRequest(key, "p", (), k, "1") for k in ks], n, seed=seed)]
    return estimate


def exact_coverage(p, n):
    """P(p inside the Wilson interval of X) for X ~ Binomial(n, p), in closed form."""
    return sum(comb(n, x) * p ** x * (1 - p) ** (n - x) for x in range(n + 1)
               if wilson_interval(x, n)[0] <= p <= wilson_interval(x, n)[1])


def test_it_covers_the_true_value_at_the_stated_rate():
    """Wilson 95 %: per probability the empirical coverage matches the interval's exact binomial coverage
    (never under 0.92 at n = 8), and pooled over probabilities it is 95 % within sampling error."""
    probabilities = [0.1, 0.3, 0.5, 0.7, 0.9]
    sampler = ScriptedSampler(lambda key, k: probabilities[k])
    seeds = 600
    inside = {p: 0 for p in probabilities}
    for seed in range(seeds):
        for r in sampler.rollouts([PrefixRequest("s", "p", (), k, "1") for k in range(len(probabilities))], N,
                                  seed=seed):
            fields = estimate_fields(n=r.n, n_correct=r.n_correct)
            p = probabilities[r.k]
            inside[p] += fields["ci_low"] <= p <= fields["ci_high"]
            assert fields["q_soft"] == r.n_correct / N and fields["q_hard"] == (r.n_correct > 0)
    for p, count in inside.items():
        exact = exact_coverage(p, N)
        assert exact >= 0.92
        se = (exact * (1 - exact) / seeds) ** 0.5
        assert abs(count / seeds - exact) < 4 * se, (p, count / seeds, exact)
    pooled = sum(inside.values()) / (seeds * len(probabilities))
    assert 0.93 <= pooled <= 0.97, pooled


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, N), min_size=2, max_size=25), bok=st.integers(1, 8),
       alpha=st.floats(0, 5))
def test_advantages_sum_to_the_last_value_minus_the_bare_problem(counts, bok, alpha):
    estimates = [StepEstimate(k, N, c) for k, c in enumerate(counts)]
    values = step_values(estimates, alpha=alpha, bok_k=bok)
    q = [best_of_k(c / N, bok) for c in counts]
    assert [v["step_index"] for v in values] == list(range(1, len(counts)))
    assert sum(v["a"] for v in values) == pytest.approx(q[-1] - q[0], abs=1e-9)
    for v, c in zip(values, counts[1:]):
        assert v["effective"] == pytest.approx(v["q"] + alpha * v["a"])
        assert v["q_hard"] == (c > 0) and v["ci_low"] <= v["q"] <= v["ci_high"]


def test_best_of_k_and_missing_prefixes():
    assert best_of_k(0.5, 1) == 0.5 and best_of_k(0.5, 3) == pytest.approx(0.875) and best_of_k(0.0, 4) == 0.0
    values = step_values([{"step_index": 0, "n": 8, "n_correct": 4}, {"step_index": 2, "n": 8, "n_correct": 2}],
                         alpha=1.0, num_steps=3)
    assert [v["q"] for v in values] == [None, 0.25, None]
    assert all(v["a"] is None and v["effective"] is None for v in values)
    assert step_values([StepEstimate(1, 8, 2)])[0]["effective"] == 0.25  # alpha 0: Q itself


def test_the_first_error_rule():
    e = StepEstimate
    assert first_error_from_estimates([e(0, 8, 5), e(1, 8, 3), e(2, 8, 0), e(3, 8, 1), e(4, 8, 0)]) == 2
    assert first_error_from_estimates([e(0, 8, 5), e(1, 8, 3), e(2, 8, 8)]) is None  # still reaches the answer
    assert first_error_from_estimates([e(0, 8, 0), e(1, 8, 0)]) is None  # the prover cannot solve the problem
    assert first_error_from_estimates([e(1, 8, 0)]) == 1
    with pytest.raises(ValueError):
        first_error_from_estimates([e(1, 8, 0), e(1, 8, 3)])


def test_the_planner_reuses_what_is_known():
    e = StepEstimate
    assert binary_search_plan(8, []) == [0, 8]
    assert binary_search_plan(8, [e(0, 8, 4), e(8, 8, 0)]) == [4]
    assert binary_search_plan(8, [e(0, 8, 4), e(8, 8, 0), e(4, 8, 2)]) == [6]
    assert binary_search_plan(8, [e(0, 8, 4), e(8, 8, 0), e(4, 8, 2), e(6, 8, 0), e(5, 8, 0)]) == []
    assert binary_search_plan(8, [e(0, 8, 0), e(8, 8, 0)]) == []  # unsolvable: nothing to search
    assert binary_search_plan(8, [e(0, 8, 3), e(8, 8, 8)]) == []  # the whole solution reaches the answer
    # full Monte Carlo's estimates leave nothing to do
    assert binary_search_plan(5, [e(k, 8, 3 if k < 3 else 0) for k in range(6)]) == []
    assert prefixes_to_estimate(3, [e(1, 8, 3)], "mc") == [0, 2, 3]
    with pytest.raises(ValueError):
        prefixes_to_estimate(3, [], "omega")


@pytest.mark.parametrize("seed", range(3))
def test_binary_search_finds_monte_carlos_first_error_with_fewer_rollouts(seed):
    """200 solutions of 2..30 steps, a first error anywhere or none; the prover succeeds with probability
    0.6..0.9 before it, 0 from it on, 1 from a whole correct solution. Both methods draw the same
    continuations for a prefix, so wherever Monte Carlo's hard labels are monotone (no prefix before the
    error drew 8 failures by chance) the two agree exactly; that is nearly everywhere."""
    import random

    rng = random.Random(seed)
    solutions = []
    for key in range(200):
        k = rng.randint(2, 30)
        solutions.append((key, k, rng.choice([None, *range(1, k + 1)])))
    curves = {key: first_error_curve(fe, p0=rng.uniform(0.7, 0.9), last=k) for key, k, fe in solutions}
    sampler = ScriptedSampler(lambda key, k: curves[key](k))
    rollouts, agree, right = {"mc": 0, "binary": 0}, 0, 0
    for key, k, truth in solutions:
        found = {}
        for method in rollouts:
            estimates = run_search(k, method, estimator(sampler, key, seed=seed))
            rollouts[method] += sum(x.n for x in estimates)
            found[method] = first_error_from_estimates(estimates)
            if method == "mc":
                hard = [x.n_correct > 0 for x in estimates]
        if hard == sorted(hard, reverse=True):  # monotone: True up to the first error, then False
            assert found["mc"] == found["binary"], (key, k, found, truth)
        agree += found["mc"] == found["binary"]
        right += found["mc"] == truth
    assert agree >= 198 and right >= 196, (agree, right)
    assert rollouts["binary"] < rollouts["mc"] / 2.5, rollouts


def test_a_search_resumes_from_what_a_dead_worker_wrote():
    sampler = ScriptedSampler(lambda key, k: first_error_curve(5)(k))
    whole = run_search(12, "binary", estimator(sampler, "s"))
    asked = sum(len(c) for c in sampler.calls)
    sampler.calls.clear()
    resumed = run_search(12, "binary", estimator(sampler, "s"), known=[e for e in whole if e.step_index in (0, 12)])
    assert resumed == whole and sum(len(c) for c in sampler.calls) == asked - 2
    assert first_error_from_estimates(whole) == 5
