"""The selection rule of a round (labeling.core.selection) and the solution score it ranks by
(labeling.core.step_scores), on hand-made scores: no database needed."""
import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.core.selection import CONVINCING_ANY, CONVINCING_WRONG, QC, Selected, select_for_round, wrong_slots
from labeling.core.step_scores import solution_score


def cand(solution_id, score, is_correct, problem_id=1):
    return {"solution_id": solution_id, "problem_id": problem_id, "score": score, "is_correct": is_correct}


def picked(selection):
    return [(s.solution_id, s.reason) for s in selection]


# --- solution_score ---------------------------------------------------------------------------------

def test_it_scores_the_product_of_p_not_negative_by_default():
    assert solution_score([0.9, 0.5, 1.0]) == pytest.approx(0.45)


def test_it_reads_triples_as_neutral_plus_positive():
    steps = [(0.1, 0.2, 0.7), (0.5, 0.25, 0.25), (0.0, 1.0, 0.0)]
    assert solution_score(steps) == pytest.approx(0.9 * 0.5 * 1.0)
    assert solution_score(steps, how="min") == pytest.approx(0.5)
    assert solution_score(steps, how="last") == pytest.approx(1.0)


def test_it_scores_min_and_last():
    assert solution_score([0.9, 0.3, 0.8], how="min") == pytest.approx(0.3)
    assert solution_score([0.9, 0.3, 0.8], how="last") == pytest.approx(0.8)


def test_it_scores_a_single_step_the_same_every_way():
    for how in ("product", "min", "last"):
        assert solution_score([(0.25, 0.25, 0.5)], how=how) == pytest.approx(0.75)


def test_it_accepts_a_generator_and_mixed_steps():
    assert solution_score(p for p in [0.5, (0.5, 0.0, 0.5)]) == pytest.approx(0.25)


def test_it_tolerates_rounding_in_a_triple_and_caps_at_one():
    assert solution_score([(0.0, 0.5, 0.504)]) == 1.0


@pytest.mark.parametrize("steps, message", [
    ([], "empty"),
    ([0.5, 1.5], "outside"),
    ([-0.1], "outside"),
    ([float("nan")], "outside"),
    ([(0.2, 0.2, 0.2)], "sum"),
    ([(0.5, 0.5)], "3 probabilities"),
    ([(0.5, 0.7, -0.2)], "outside"),
    ([True], "expected a probability"),
    (["0.5"], "expected a probability"),
    ([None], "expected a probability"),
    ("0.5", "not a string"),
])
def test_it_rejects_bad_step_probabilities(steps, message):
    with pytest.raises(ValueError, match=message):
        solution_score(steps)


def test_it_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="unknown score mode"):
        solution_score([0.5], how="mean")


# --- wrong_slots: the rounding rule -----------------------------------------------------------------

@pytest.mark.parametrize("k, fraction, expected", [
    (1, 0.8, 1), (1, 0.4, 0), (1, 0.5, 1), (5, 0.8, 4), (5, 0.5, 3), (2, 0.25, 1), (4, 0.8, 3),
    (10, 0.8, 8), (25, 0.58, 15), (3, 0.0, 0), (3, 1.0, 3),
])
def test_it_rounds_wrong_slots_half_up(k, fraction, expected):
    assert wrong_slots(k, fraction) == expected


# --- select_for_round -------------------------------------------------------------------------------

def test_it_takes_the_most_convincing_wrong_then_the_most_convincing_any():
    candidates = [
        cand(1, 0.95, True), cand(2, 0.90, False), cand(3, 0.85, False), cand(4, 0.80, None),
        cand(5, 0.70, False), cand(6, 0.60, False), cand(7, 0.10, False),
    ]
    selection = select_for_round(candidates, per_problem=5, wrong_fraction=0.8)
    # 4 wrong slots: 2, 3, 5, 6; the last slot goes to the best remaining of any kind: 1.
    assert picked(selection) == [(1, CONVINCING_ANY), (2, CONVINCING_WRONG), (3, CONVINCING_WRONG),
                                 (5, CONVINCING_WRONG), (6, CONVINCING_WRONG)]
    assert selection[0] == Selected(1, 1, 0.95, True, CONVINCING_ANY)


def test_it_fills_with_ungraded_candidates():
    candidates = [cand(1, 0.9, None), cand(2, 0.8, None), cand(3, 0.2, False)]
    selection = select_for_round(candidates, per_problem=2, wrong_fraction=0.5)
    assert picked(selection) == [(1, CONVINCING_ANY), (3, CONVINCING_WRONG)]


def test_it_gives_every_slot_to_convincing_any_when_a_problem_has_no_wrong_answer():
    candidates = [cand(i, s, c) for i, s, c in [(1, 0.3, True), (2, 0.9, True), (3, 0.5, None), (4, 0.1, True)]]
    selection = select_for_round(candidates, per_problem=3)
    assert picked(selection) == [(2, CONVINCING_ANY), (3, CONVINCING_ANY), (1, CONVINCING_ANY)]


def test_it_gives_missing_wrong_slots_to_convincing_any():
    candidates = [cand(1, 0.9, True), cand(2, 0.8, True), cand(3, 0.1, False), cand(4, 0.5, True)]
    selection = select_for_round(candidates, per_problem=3, wrong_fraction=1.0)
    assert picked(selection) == [(1, CONVINCING_ANY), (2, CONVINCING_ANY), (3, CONVINCING_WRONG)]


def test_it_takes_all_candidates_when_fewer_than_k():
    candidates = [cand(1, 0.2, False), cand(2, 0.7, True)]
    selection = select_for_round(candidates, per_problem=5)
    assert picked(selection) == [(2, CONVINCING_ANY), (1, CONVINCING_WRONG)]


def test_it_takes_the_top_wrong_then_the_next_wrong_when_all_are_wrong():
    candidates = [cand(i, s, False) for i, s in [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.7), (5, 0.3)]]
    selection = select_for_round(candidates, per_problem=4, wrong_fraction=0.8)
    # 3 wrong slots (2, 4, 3), the fourth is the best remaining of any kind: 5, itself wrong.
    assert picked(selection) == [(2, CONVINCING_WRONG), (4, CONVINCING_WRONG), (3, CONVINCING_WRONG),
                                 (5, CONVINCING_ANY)]


def test_it_ignores_correctness_at_wrong_fraction_zero():
    candidates = [cand(1, 0.9, False), cand(2, 0.8, True), cand(3, 0.7, False)]
    selection = select_for_round(candidates, per_problem=2, wrong_fraction=0.0)
    assert picked(selection) == [(1, CONVINCING_ANY), (2, CONVINCING_ANY)]


def test_it_takes_only_wrong_answers_at_wrong_fraction_one_when_there_are_enough():
    candidates = [cand(1, 0.99, True), cand(2, 0.5, False), cand(3, 0.4, False), cand(4, 0.3, False)]
    selection = select_for_round(candidates, per_problem=2, wrong_fraction=1.0)
    assert picked(selection) == [(2, CONVINCING_WRONG), (3, CONVINCING_WRONG)]


def test_it_rounds_a_single_slot_to_a_wrong_answer():
    candidates = [cand(1, 0.9, True), cand(2, 0.4, False)]
    assert picked(select_for_round(candidates, per_problem=1, wrong_fraction=0.8)) == [(2, CONVINCING_WRONG)]
    assert picked(select_for_round(candidates, per_problem=1, wrong_fraction=0.4)) == [(1, CONVINCING_ANY)]


def test_it_breaks_ties_by_solution_id():
    candidates = [cand(9, 0.5, False), cand(3, 0.5, False), cand(7, 0.5, True), cand(5, 0.5, False)]
    selection = select_for_round(candidates, per_problem=3, wrong_fraction=0.5)
    # 2 wrong slots: 3 and 5 (lowest ids among tied wrong ones); the fill is 7, the lowest id left.
    assert picked(selection) == [(3, CONVINCING_WRONG), (5, CONVINCING_WRONG), (7, CONVINCING_ANY)]


def test_it_selects_per_problem_and_orders_the_result_by_score():
    candidates = [
        cand(1, 0.9, False, problem_id="a"), cand(2, 0.2, False, problem_id="a"), cand(3, 0.5, True, problem_id="a"),
        cand(4, 0.8, False, problem_id="b"), cand(5, 0.95, True, problem_id="b"),
    ]
    selection = select_for_round(candidates, per_problem=2, wrong_fraction=0.5)
    assert [(s.solution_id, s.problem_id, s.reason) for s in selection] == [
        (5, "b", CONVINCING_ANY), (1, "a", CONVINCING_WRONG), (4, "b", CONVINCING_WRONG), (3, "a", CONVINCING_ANY),
    ]


def test_it_is_deterministic_whatever_the_input_order():
    rng = random.Random(4)
    candidates = [cand(i, rng.choice([0.1, 0.5, 0.9]), rng.choice([True, False, None]), problem_id=i % 3)
                  for i in range(40)]
    first = select_for_round(candidates, per_problem=4)
    for _ in range(5):
        rng.shuffle(candidates)
        assert select_for_round(candidates, per_problem=4) == first


def test_it_reads_objects_as_well_as_dicts():
    rows = [SimpleNamespace(solution_id=1, problem_id=1, score=0.4, is_correct=False),
            SimpleNamespace(solution_id=2, problem_id=1, score=0.6, is_correct=True)]
    assert picked(select_for_round(rows, per_problem=2, wrong_fraction=0.5)) == [
        (2, CONVINCING_ANY), (1, CONVINCING_WRONG)]


def test_it_reports_qc_reserved_solutions_without_selecting_them():
    candidates = [cand(1, 0.9, False), cand(2, 0.8, False), cand(3, 0.7, True), cand(4, 0.6, False)]
    selection = select_for_round(candidates, per_problem=2, wrong_fraction=0.5, qc_ids={2, 99})
    # 2 is reserved: reported as qc, uses no slot; 99 is not a candidate and is ignored.
    assert picked(selection) == [(1, CONVINCING_WRONG), (2, QC), (3, CONVINCING_ANY)]


@pytest.mark.parametrize("kwargs, message", [
    ({"per_problem": 0}, "per_problem"),
    ({"per_problem": 2.0}, "per_problem"),
    ({"per_problem": True}, "per_problem"),
    ({"per_problem": 2, "wrong_fraction": 1.2}, "wrong_fraction"),
    ({"per_problem": 2, "wrong_fraction": -0.1}, "wrong_fraction"),
    ({"per_problem": 2, "wrong_fraction": float("nan")}, "wrong_fraction"),
])
def test_it_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_for_round([cand(1, 0.5, False)], **kwargs)


@pytest.mark.parametrize("candidates, message", [
    ([cand(1, 0.5, False), cand(1, 0.4, True)], "twice"),
    ([cand(1, float("nan"), False)], "finite"),
    ([cand(1, None, False)], "finite"),
    ([cand(1, 0.5, 1)], "is_correct"),
    ([cand(1, 0.5, "no")], "is_correct"),
    ([{"solution_id": 1, "problem_id": 1, "score": 0.5}], "is_correct"),
    ([SimpleNamespace(solution_id=1, score=0.5, is_correct=None)], "problem_id"),
])
def test_it_rejects_bad_candidates(candidates, message):
    with pytest.raises(ValueError, match=message):
        select_for_round(candidates, per_problem=2)


# --- properties -------------------------------------------------------------------------------------

candidate_lists = st.lists(
    st.tuples(st.integers(0, 3),  # problem id
              st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1),  # ties are likely
              st.sampled_from([True, False, None])),
    max_size=40,
).map(lambda rows: [cand(i, score, ok, problem_id=p) for i, (p, score, ok) in enumerate(rows)])


@settings(max_examples=300, deadline=None)
@given(candidates=candidate_lists, k=st.integers(1, 8), fraction=st.floats(0, 1),
       qc=st.sets(st.integers(0, 45), max_size=6))
def test_selection_properties(candidates, k, fraction, qc):
    selection = select_for_round(candidates, per_problem=k, wrong_fraction=fraction, qc_ids=qc)
    ids = [s.solution_id for s in selection]
    assert len(ids) == len(set(ids))
    assert selection == sorted(selection, key=lambda s: (-s.score, s.solution_id))
    assert {s.solution_id for s in selection if s.reason == QC} == qc & {c["solution_id"] for c in candidates}

    for problem in {c["problem_id"] for c in candidates}:
        pool = [c for c in candidates if c["problem_id"] == problem and c["solution_id"] not in qc]
        chosen = [s for s in selection if s.problem_id == problem and s.reason != QC]
        assert len(chosen) == min(k, len(pool))
        wrong_chosen = [s for s in chosen if s.reason == CONVINCING_WRONG]
        assert all(s.is_correct is False for s in wrong_chosen)
        assert len(wrong_chosen) == min(wrong_slots(k, fraction), sum(c["is_correct"] is False for c in pool))
        chosen_ids = {s.solution_id for s in chosen}
        if wrong_chosen:
            lowest = min(s.score for s in wrong_chosen)
            assert not any(c["is_correct"] is False and c["score"] > lowest
                           for c in pool if c["solution_id"] not in chosen_ids)
        # The fill is the best of what is left: nothing unselected outranks a convincing_any pick.
        fill = [s for s in chosen if s.reason == CONVINCING_ANY]
        if fill:
            worst = max((-s.score, s.solution_id) for s in fill)
            assert not any((-c["score"], c["solution_id"]) < worst
                           for c in pool if c["solution_id"] not in chosen_ids)
