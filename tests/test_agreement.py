"""Agreement metrics against values computed by hand (pure functions: no database)."""
import pytest

from labeling.core import agreement as metrics
from labeling.core.agreement import NO_ERROR, Overlap

# Wikipedia's Fleiss' kappa example: 10 items, 14 raters, 5 categories; P = 0.378, Pe = 0.213, kappa = 0.210.
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_it_reproduces_the_textbook_fleiss_example():
    result = metrics.fleiss_kappa(WIKIPEDIA_FLEISS)
    assert result.items == 10
    assert result.observed == pytest.approx(0.378, abs=5e-4)
    assert result.expected == pytest.approx(0.213, abs=5e-4)
    assert result.kappa == pytest.approx(0.210, abs=5e-4)


def test_it_reproduces_the_textbook_cohen_example():
    # 50 proposals: both yes 20, A yes B no 5, A no B yes 10, both no 15: p_o 0.7, p_e 0.5, kappa 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    result = metrics.cohen_kappa(a, b, categories=("yes", "no"))
    assert (result.observed, result.expected, result.items) == (pytest.approx(0.7), pytest.approx(0.5), 50)
    assert result.kappa == pytest.approx(0.4)


def test_cohen_kappa_over_three_ratings_by_hand():
    a = [1, 1, 1, 0, 0, -1, 1, 0, 1, -1]
    b = [1, 1, 0, 0, 1, -1, 1, 0, 1, 1]
    # agree on 7 of 10; marginals a: +1 5, 0 3, -1 2; b: +1 6, 0 3, -1 1 -> p_e = (30 + 9 + 2) / 100
    result = metrics.cohen_kappa(a, b)
    assert result.observed == pytest.approx(0.7) and result.expected == pytest.approx(0.41)
    assert result.kappa == pytest.approx(0.29 / 0.59)


def test_perfect_agreement_is_one():
    ratings = [1, 0, -1, 1, 0]
    assert metrics.cohen_kappa(ratings, list(ratings)).kappa == pytest.approx(1.0)
    assert metrics.fleiss_kappa([metrics.category_counts([r] * 3) for r in ratings]).kappa == pytest.approx(1.0)


def test_chance_level_agreement_is_zero():
    result = metrics.cohen_kappa([1, 1, 0, 0], [1, 0, 1, 0])
    assert (result.observed, result.expected, result.kappa) == (0.5, 0.5, 0.0)
    # Half the items agree, half split: P = 1/2 and the even shares predict exactly that.
    assert metrics.fleiss_kappa([[2, 0], [0, 2], [1, 1], [1, 1]]).kappa == pytest.approx(0.0)


def test_systematic_disagreement_is_negative():
    assert metrics.cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]).kappa == pytest.approx(-1.0)
    assert metrics.fleiss_kappa([[1, 1], [1, 1], [1, 1]]).kappa == pytest.approx(-1.0)
    assert metrics.fleiss_kappa([[2, 2], [2, 2]]).kappa == pytest.approx(-1 / 3)


def test_kappa_is_undefined_when_every_rating_is_the_same():
    result = metrics.cohen_kappa([1, 1, 1], [1, 1, 1])
    assert result.kappa is None and result.observed == 1.0 and result.items == 3
    assert metrics.fleiss_kappa([[0, 0, 3], [0, 0, 3]]).kappa is None
    assert metrics.cohen_kappa([], []) == metrics.Kappa(None, None, None, 0)
    assert metrics.fleiss_kappa([[0, 0, 1]]).items == 0, "an item with one rating says nothing about agreement"


def test_neutral_and_positive_are_different_categories():
    assert metrics.cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]).observed == 0.0


def test_fleiss_accepts_items_with_different_rater_counts():
    # Two items rated by 3, one by 2: P_i = 1, 1/3, 0; P = 4/9; shares (of 8 ratings) 3/8 and 5/8.
    result = metrics.fleiss_kappa([[3, 0], [1, 2], [1, 1]])
    expected = (3 / 8) ** 2 + (5 / 8) ** 2
    assert result.observed == pytest.approx(4 / 9) and result.expected == pytest.approx(expected)
    assert result.kappa == pytest.approx((4 / 9 - expected) / (1 - expected))


def test_steps_are_aligned_up_to_the_earliest_first_error():
    rows = metrics.aligned_steps({"a": [1, 1, 0, -1], "b": [1, -1, 1, 1], "c": [1, 0, 1, 1, 1]})
    assert rows == [[1, 1, 1], [1, -1, 0]]
    assert metrics.aligned_steps({"a": [1, None, 1], "b": [1, 1, 1]}) == [[1, 1], [1, 1]]


def test_outcomes_and_first_error_agreement():
    assert metrics.outcome([1, 0, -1], 5) == 2
    assert metrics.outcome([1, 0, 1], 3) == NO_ERROR
    assert metrics.outcome([1, 0], 3) is None, "gave up before the end without finding an error"
    overlaps = [Overlap({"a": [1, -1], "b": [0, -1]}, 4),          # both say step 1
                Overlap({"a": [1, 1, 1], "b": [1, 0, 1]}, 3),      # both found no error
                Overlap({"a": [1, -1], "b": [-1]}, 3),             # step 1 vs step 0
                Overlap({"a": [1], "b": [1]}, 3),                  # both gave up: no agreement
                Overlap({"a": [1, -1]}, 3)]                        # not overlapped: ignored
    assert metrics.first_error_agreement(overlaps) == 0.5
    assert metrics.first_error_agreement([]) is None


def test_agreement_report_by_hand():
    overlaps = [
        Overlap({"bob": [1, 1, 1, 1], "carol": [1, 1, 1, 1], "dave": [1, 1, 0, 1]}, 4),
        Overlap({"bob": [1, 0, -1], "carol": [1, 0, -1], "dave": [1, -1]}, 4),
        Overlap({"bob": [1, -1], "carol": [0, -1]}, 3),
    ]
    report = metrics.agreement(overlaps)
    assert report.tasks == 3
    # 8 aligned steps: task 1 (+1 +1 +1)x3 and (+1 +1 0); task 2 (+1 +1 +1), (0 0 -1); task 3 (+1 0), (-1 -1).
    # P_i = 1, 1, 1/3, 1 | 1, 1/3 | 0, 1 -> P = (17/3) / 8 = 17/24. 22 ratings (-1: 3, 0: 4, +1: 15)
    # -> Pe = (9 + 16 + 225) / 484; kappa = (17/24 - 250/484) / (1 - 250/484) = 557/1404.
    assert report.fleiss.items == 8 and report.fleiss.observed == pytest.approx(17 / 24)
    assert report.fleiss.expected == pytest.approx(250 / 484)
    assert report.fleiss.kappa == pytest.approx(557 / 1404)
    assert report.first_error == pytest.approx(2 / 3)
    pairs = {(p.a, p.b): p for p in report.pairs}
    assert set(pairs) == {("bob", "carol"), ("bob", "dave"), ("carol", "dave")}
    bob_carol = pairs["bob", "carol"]
    # 9 steps, 8 agree; marginals bob (+1 6, 0 1, -1 2), carol (+1 5, 0 2, -1 2): Pe = 36/81 -> kappa 0.8
    assert (bob_carol.tasks, bob_carol.kappa.items, bob_carol.first_error) == (3, 9, 1.0)
    assert bob_carol.kappa.kappa == pytest.approx(0.8)
    for pair in (pairs["bob", "dave"], pairs["carol", "dave"]):
        # 6 steps, 4 agree; Pe = (5*4 + 1*1) / 36 -> kappa (2/3 - 7/12) / (5/12) = 0.2
        assert (pair.tasks, pair.kappa.items, pair.first_error) == (2, 6, 0.5)
        assert pair.kappa.kappa == pytest.approx(0.2)


def test_gold_score():
    score = metrics.gold_score([1, 0, 1, -1], [1, 1, 1, -1], 4)
    assert (score.steps_compared, score.steps_agreed, score.first_error_match) == (4, 3, True)
    assert (score.step_agreement, score.score) == (0.75, 0.875)
    early = metrics.gold_score([1, 1, 1], [1, -1], 3)
    assert (early.step_agreement, early.first_error_match, early.score) == (0.5, False, 0.25)
    nothing = metrics.gold_score([1, -1], [], 3)
    assert (nothing.step_agreement, nothing.first_error_match, nothing.score) == (None, False, 0.0)


def test_throughput_and_time_per_step():
    assert metrics.throughput(3, 360_000) == pytest.approx(30.0)
    assert metrics.throughput(0, None) is None
    assert metrics.median_ms_per_step([(60_000, 4), (120_000, 3), (180_000, 2), (5_000, 0), (None, 3)]) == 40_000
    assert metrics.median_ms_per_step([]) is None
