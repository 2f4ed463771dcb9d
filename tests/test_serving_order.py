"""labeling.core.serving: every prefix of a round's served order keeps its mix and spreads over problems."""
import math
from collections import Counter

from hypothesis import given, settings, strategies as st

from labeling.core.selection import select_for_round
from labeling.core.serving import Pick, serving_order

REASONS = ("convincing_wrong", "convincing_any", "control")


def _within_one_of_the_mix(order):
    total = Counter(p.reason for p in order)
    seen = Counter()
    for n, pick in enumerate(order, start=1):
        seen[pick.reason] += 1
        for reason, count in total.items():
            assert abs(seen[reason] - n * count / len(order)) <= 1, (n, reason, seen, total)


@st.composite
def picks(draw):
    n = draw(st.integers(0, 60))
    problems = draw(st.integers(1, 12))
    return [Pick(i, draw(st.integers(0, problems - 1)), draw(st.sampled_from(REASONS)),
                 draw(st.floats(0, 1, allow_nan=False))) for i in range(n)]


@settings(max_examples=300, deadline=None)
@given(picks())
def test_it_keeps_every_reason_within_one_task_of_its_share_in_every_prefix(items):
    order = serving_order(items)
    assert sorted(p.solution_id for p in order) == sorted(p.solution_id for p in items)
    _within_one_of_the_mix(order)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 15), st.integers(1, 6), st.sampled_from([0.25, 0.5, 0.75, 0.8, 1.0]), st.randoms())
def test_it_keeps_the_requested_wrong_fraction_of_a_selection(problems, per_problem, fraction, rng):
    candidates = [{"solution_id": p * 100 + i, "problem_id": p, "score": rng.random(), "is_correct": rng.random() < 0.3}
                  for p in range(problems) for i in range(per_problem * 3)]
    selected = select_for_round(candidates, per_problem=per_problem, wrong_fraction=fraction)
    order = serving_order([Pick(s.solution_id, s.problem_id, s.reason, s.score) for s in selected])
    _within_one_of_the_mix(order)


def test_it_goes_round_robin_over_problems_highest_score_first_within_a_problem():
    items = [Pick(1, "a", "convincing_wrong", 0.9), Pick(2, "a", "convincing_wrong", 0.8),
             Pick(3, "a", "convincing_wrong", 0.7), Pick(4, "b", "convincing_wrong", 0.5),
             Pick(5, "b", "convincing_wrong", 0.6), Pick(6, "c", "convincing_wrong", 0.1)]
    order = [p.solution_id for p in serving_order(items)]
    assert order == [1, 5, 6, 2, 4, 3]


def test_a_prefix_spreads_over_problems():
    items = [Pick(p * 10 + i, p, "convincing_wrong" if i < 3 else "convincing_any", 1 - i / 10)
             for p in range(5) for i in range(4)]
    order = serving_order(items)
    for n in range(1, len(order) + 1):
        per_problem = Counter(p.problem_id for p in order[:n])
        assert max(per_problem.values()) - min(per_problem.get(p, 0) for p in range(5)) <= 1 or n < 5


def test_the_first_served_of_a_three_to_one_round_are_three_wrong_to_one_any():
    items = [Pick(p * 10 + i, p, "convincing_wrong" if i < 3 else "convincing_any", 0.9 if i == 3 else 0.1)
             for p in range(8) for i in range(4)]
    order = serving_order(items)
    for n in (4, 8, 12, 16):
        assert sum(p.reason == "convincing_wrong" for p in order[:n]) == math.floor(n * 0.75)


def test_it_is_deterministic_and_handles_nothing():
    assert serving_order([]) == []
    items = [{"solution_id": i, "problem_id": i % 3, "reason": REASONS[i % 2], "score": 0.5} for i in range(9)]
    assert serving_order(items) == serving_order(list(reversed(items)))
