"""labeling.core.intervals against direct computations."""
import itertools
import math
import random

import pytest

from labeling.core.intervals import auroc_interval, beats_chance, wilson_interval


def test_wilson_matches_the_textbook_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_auroc_is_the_share_of_correctly_ordered_pairs():
    rng = random.Random(3)
    scores = [round(rng.random(), 1) for _ in range(40)]
    labels = [rng.random() < s for s in scores]
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    direct = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(pos, neg)) / (len(pos) * len(neg))
    got = auroc_interval(scores, labels)
    assert got["auroc"] == pytest.approx(direct)
    assert got["low"] < got["auroc"] < got["high"]


def test_a_perfect_ranker_beats_chance_and_noise_does_not():
    assert beats_chance(auroc_interval([0.9] * 20 + [0.1] * 20, [True] * 20 + [False] * 20))
    rng = random.Random(0)
    noise = auroc_interval([rng.random() for _ in range(40)], [i % 2 == 0 for i in range(40)])
    assert not beats_chance(noise)
    assert auroc_interval([0.3, 0.4], [True, True]) is None


def test_the_interval_covers_the_truth_at_about_the_stated_rate():
    # Two normal classes one unit apart: true AUROC = Phi(1 / sqrt(2)).
    truth = 0.5 * (1 + math.erf(1 / 2))
    rng = random.Random(7)
    covered = 0
    for _ in range(300):
        scores = [rng.gauss(1, 1) for _ in range(30)] + [rng.gauss(0, 1) for _ in range(30)]
        got = auroc_interval(scores, [True] * 30 + [False] * 30)
        covered += got["low"] <= truth <= got["high"]
    assert 0.90 <= covered / 300 <= 0.99
