"""labeling.core.draws: seeded, stratified problem draws."""
from collections import Counter

from hypothesis import given, settings, strategies as st

from labeling.core.draws import Drawable, split_for_validation, stratified_sample

SUBJECTS = ("Algebra", "Geometry", "Number Theory", "")


@st.composite
def problems(draw):
    n = draw(st.integers(0, 80))
    return [Drawable(i, draw(st.sampled_from(SUBJECTS)), draw(st.sampled_from([1, 2, 3, None]))) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(problems(), st.integers(0, 90), st.integers(0, 5))
def test_it_draws_n_distinct_ids_each_stratum_within_one_of_its_share(items, n, seed):
    got = stratified_sample(items, n, seed=seed)
    assert len(got) == min(n, len(items)) and len(set(got)) == len(got)
    assert set(got) <= {i.id for i in items}
    if 0 < n < len(items):
        drawn = {i.id for i in items if i.id in set(got)}
        strata = Counter((i.subject, i.level) for i in items)
        picked = Counter((i.subject, i.level) for i in items if i.id in drawn)
        for key, size in strata.items():
            assert abs(picked[key] - size * n / len(items)) < 1 + 1e-9


def test_it_is_seeded_and_not_by_id():
    items = [Drawable(i, "Algebra", 1) for i in range(100)]
    assert stratified_sample(items, 10, seed=1) == stratified_sample(items, 10, seed=1)
    assert stratified_sample(items, 10, seed=1) != stratified_sample(items, 10, seed=2)
    assert sorted(stratified_sample(items, 10, seed=1)) != list(range(10))


def test_validation_split_is_disjoint_and_covers_everything():
    items = [Drawable(i, SUBJECTS[i % 3], i % 5) for i in range(40)]
    train, validation = split_for_validation(items, fraction=0.3, seed=0)
    assert set(train).isdisjoint(validation) and set(train) | set(validation) == set(range(40))
    assert len(validation) == 12
    assert split_for_validation([Drawable(1)], fraction=0.5) == ([1], [])
    assert len(split_for_validation([Drawable(1), Drawable(2)], fraction=0.01)[1]) == 1
