"""Error yield per round and reason (labeling.queries.yields) against a hand count."""
import datetime as dt

import pytest
from django.utils import timezone

from labeling.models import (Annotation, Annotator, Assignment, Completion, Problem, Round, RoundSelection, Solution,
                             StepLabel, Task)
from labeling.queries.yields import round_yields, yield_ratio
from tests.label_factories import annotation_make

NOW = timezone.now()


def solution(problem, name):
    return Solution.objects.create(problem=problem, steps=[f"{name} step 0", f"{name} step 1"], final_answer="5",
                                   is_correct=False)


def pick(round_, sol, reason, *, task=True):
    RoundSelection.objects.create(round=round_, solution=sol, problem=sol.problem, score=0.5, reason=reason,
                                  rank=RoundSelection.objects.filter(round=round_).count())
    if task:
        Task.objects.create(solution=sol, round=round_, kind=Task.Kind.QC if reason == "qc" else Task.Kind.ROUND)


def label(annotator, sol, round_, ratings, **extra):
    return annotation_make(annotator=annotator, solution=sol, ratings=ratings, round=round_, timestamp=NOW, **extra)


@pytest.fixture
def rounds(db):
    """Round 1 served (a submitted annotation, QC and screening left out):
    convincing wrong: w1 (x: error, y: none) found, w2 (none; a QC annotation's error does not count) not,
      w5 (a -1 only on an alternative the annotator did not take) not          -> 1 of 3
      w3 (nobody), w4 (only a live lease), w6 (only a screening annotation), w7 (no task) are not served
    convincing any: a1 (error) found, a2 not                                      -> 1 of 2
    control: c1 found, c2..c4 not                                                 -> 1 of 4
    random wrong: r1 found                                                        -> 1 of 1
    qc: q1 (error) is no reason of the yield.
    Round 2 served w2 again, and there its annotator found an error              -> 1 of 1"""
    problem = Problem.objects.create(text="what is 2 + 2?", answer="4", split="train")
    one = Round.objects.create(number=1, status=Round.Status.DONE)
    two = Round.objects.create(number=2, status=Round.Status.DONE)
    s = {name: solution(problem, name) for name in
         "w1 w2 w3 w4 w5 w6 w7 a1 a2 c1 c2 c3 c4 r1 q1".split()}
    for name in "w1 w2 w3 w4 w5 w6".split():
        pick(one, s[name], "convincing_wrong")
    pick(one, s["w7"], "convincing_wrong", task=False)
    for name, reason in (("a1", "convincing_any"), ("a2", "convincing_any"), ("r1", "random_wrong"), ("q1", "qc"),
                         ("c1", "control"), ("c2", "control"), ("c3", "control"), ("c4", "control")):
        pick(one, s[name], reason)
    pick(two, s["w2"], "convincing_wrong")
    x, y = Annotator.objects.create(), Annotator.objects.create()
    for who, name, ratings in ((x, "w1", [1, -1]), (y, "w1", [1, 1]), (x, "w2", [1, 1]), (x, "a1", [-1]),
                               (x, "a2", [1, 0]), (x, "c1", [0, -1]), (x, "c2", [1, 1]), (x, "c3", [1]),
                               (y, "c4", [1, 1]), (x, "r1", [1, -1]), (x, "q1", [-1]), (x, "w7", [-1])):
        label(who, s[name], one, ratings)
    label(y, s["w2"], one, [-1], is_quality_control=True)
    label(y, s["w6"], one, [-1], is_screening=True)
    label(y, s["w2"], two, [1, -1])
    Assignment.objects.create(task=Task.objects.get(solution=s["w4"]), annotator=y, leased_at=NOW,
                              expires_at=NOW + dt.timedelta(hours=1), round=one)
    # w5: step 1's own text rated +1 and taken; an alternative offered there rated -1 but not taken
    w5 = Annotation.objects.create(annotator=x, solution=s["w5"], problem=problem, round=one, timestamp=NOW,
                                   finish_reason="solution")
    StepLabel.objects.bulk_create([StepLabel(annotation=w5, index=0, chosen_completion=0),
                                   StepLabel(annotation=w5, index=1, chosen_completion=0)])
    Completion.objects.bulk_create([Completion(annotation=w5, step_index=0, index=0, text="w5 step 0", rating=1),
                                    Completion(annotation=w5, step_index=1, index=0, text="w5 step 1", rating=1),
                                    Completion(annotation=w5, step_index=1, index=1, text="other", rating=-1)])
    return one, two


def test_it_counts_served_solutions_and_errors_found_per_reason(rounds):
    one, two = rounds
    yields = round_yields([one.pk, two.pk])
    counts = {r: {reason: (y.found, y.served) for reason, y in per.items()} for r, per in yields.items()}
    assert counts[one.pk] == {"convincing_wrong": (1, 3), "convincing_any": (1, 2), "control": (1, 4),
                              "random_wrong": (1, 1)}
    assert counts[two.pk] == {"convincing_wrong": (1, 1), "convincing_any": (0, 0), "control": (0, 0),
                              "random_wrong": (0, 0)}


def test_shares_intervals_and_the_ratio_to_the_control(rounds):
    one, two = rounds
    yields = round_yields([one.pk, two.pk])
    wrong, control = yields[one.pk]["convincing_wrong"], yields[one.pk]["control"]
    assert wrong.share == pytest.approx(1 / 3) and control.share == 0.25
    # Wilson 95% by hand: 1/3 -> (0.0615, 0.7923); 1/4 -> (0.0456, 0.6994); 1/1 -> (0.2065, 1)
    assert wrong.interval == pytest.approx((0.0615, 0.7923), abs=1e-4)
    assert control.interval == pytest.approx((0.0456, 0.6994), abs=1e-4)
    assert yields[two.pk]["convincing_wrong"].interval == pytest.approx((0.2065, 1.0), abs=1e-4)
    assert yields[two.pk]["control"].share is None and yields[two.pk]["control"].interval is None
    assert yield_ratio(yields[one.pk]) == pytest.approx(4 / 3)
    assert yield_ratio(yields[two.pk]) is None  # no control served


def test_rounds_with_nothing_served(db):
    empty = Round.objects.create(number=7)
    assert all(y.served == 0 for y in round_yields([empty.pk])[empty.pk].values())
    assert round_yields([]) == {}
