"""The problems a round draws: at random by its seed, stratified by subject and level, fresh ones first."""
from collections import Counter

import pytest

from labeling.models import Problem, Round, RoundSelection, Solution
from labeling.services.rounds.stages import RoundParameters, round_start


@pytest.fixture
def problems(db):
    """60 eligible problems in id order: 30 algebra level 1, 15 algebra level 2, 15 geometry level 3 (so a draw
    of 12 takes 6, 3 and 3); and two that no round may draw (test split, no reference answer)."""
    made = []
    for k in range(60):
        subject, level = ("algebra", 1) if k < 30 else ("algebra", 2) if k < 45 else ("geometry", 3)
        made.append(Problem.objects.create(text=f"problem {k}", answer=str(k), subject=subject, level=level,
                                           split="train"))
    Problem.objects.create(text="held out", answer="1", split="test")
    Problem.objects.create(text="no answer", answer=None, split="train")
    return made


def drawn(**params):
    round_ = round_start(params=RoundParameters(**params))
    return round_.parameters["problem_ids"]


def strata(ids):
    return Counter(Problem.objects.filter(pk__in=ids).values_list("subject", "level"))


def test_the_same_seed_draws_the_same_problems_and_another_seed_others(problems):
    first = drawn(problems=12, seed=1)
    assert drawn(problems=12, seed=1) == first  # nothing selected in between: the same pool
    assert set(drawn(problems=12, seed=2)) != set(first)
    assert len(set(first)) == 12


def test_the_draw_is_stratified_and_not_the_lowest_ids(problems):
    for seed in range(5):
        ids = drawn(problems=12, seed=seed)
        assert strata(ids) == {("algebra", 1): 6, ("algebra", 2): 3, ("geometry", 3): 3}
        assert sorted(ids) != [p.pk for p in problems[:12]]


def test_problems_no_round_selected_from_come_first(problems):
    earlier = Round.objects.create(number=1)
    stale = problems[:50]  # selected from by an earlier round: only the last 10 are fresh
    for rank, problem in enumerate(stale):
        sol = Solution.objects.create(problem=problem, steps=["a"], final_answer="1")
        RoundSelection.objects.create(round=earlier, solution=sol, problem=problem, score=0.5, rank=rank,
                                      reason="convincing_any")
    fresh = {p.pk for p in problems[50:]}
    assert set(drawn(problems=6, seed=3)) <= fresh
    ids = drawn(problems=14, seed=3)
    assert fresh <= set(ids) and len(ids) == 14        # every fresh one, then 4 of the rest
    everything = drawn(seed=3)                          # no count: every eligible problem
    assert sorted(everything) == sorted(p.pk for p in problems)
