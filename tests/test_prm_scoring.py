"""Selector PRM scoring on a tiny Llama built offline: shapes, padding, ordering, streaming, truncation."""
import math
import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests import tiny_models  # noqa: E402
from workers.ml.prm import StepPRM, solution_score  # noqa: E402

CORPUS = tiny_models.CORPUS[:5]


def build_tiny_prm(directory, seed=0):
    return tiny_models.build_token_classifier(directory, seed=seed)


@pytest.fixture(scope="module")
def prm(tmp_path_factory):
    return StepPRM.load(build_tiny_prm(tmp_path_factory.mktemp("tiny_prm")))


def make_items(n, seed=1):
    rng = random.Random(seed)
    words = " ".join(CORPUS).split()
    items = []
    for _ in range(n):
        problem = " ".join(rng.choices(words, k=rng.randint(3, 30)))
        steps = [" ".join(rng.choices(words, k=rng.randint(1, 25))) for _ in range(rng.randint(1, 6))]
        items.append((problem, steps))
    return items


def assert_close(a, b, tol=1e-5):
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        assert len(sa) == len(sb)
        for pa, pb in zip(sa, sb):
            assert (pa is None) == (pb is None)
            if pa is not None:
                assert all(abs(x - y) <= tol for x, y in zip(pa, pb)), (pa, pb)


def test_it_returns_one_distribution_per_step(prm):
    items = make_items(10)
    for (_, steps), probs in zip(items, prm.score(items)):
        assert len(probs) == len(steps)
        for p in probs:
            assert len(p) == 3 and all(isinstance(x, float) for x in p)
            assert math.isclose(sum(p), 1.0, abs_tol=1e-5)


def test_it_scores_batched_as_one_at_a_time(prm):
    prm.tokenizer.padding_side = "left"  # scoring must not depend on the tokenizer's padding side
    items = make_items(37)
    batched = prm.score(items, batch_size=8)
    single = [prm.score([item], batch_size=1)[0] for item in items]
    assert_close(batched, single)


def test_it_restores_input_order_after_length_sorting(prm):
    items = make_items(20)
    forward = prm.score(items, batch_size=4)
    backward = prm.score(items[::-1], batch_size=4)
    assert_close(forward, backward[::-1])
    # Lengths differ, so sorting really permuted the batch.
    assert len({len(prm.encode(p, s)[0]) for p, s in items}) > 5


def test_it_streams_in_chunks_like_the_list_version(prm):
    items = make_items(300, seed=7)
    seen = []

    def source():
        for item in items:
            seen.append(item)
            yield item

    stream = prm.score_stream(source(), chunk=64, batch_size=16)
    first = next(stream)
    assert len(seen) == 64  # only one chunk pulled from the source so far
    assert_close([first, *stream], prm.score(items, batch_size=16))


def test_it_reads_labels_at_the_last_separator_token_of_each_step(prm):
    steps = ["first part\n\nstill the first step", "second", "\n\n", "fourth\n\n\n\nend"]
    ids, positions = prm.encode("A problem.\n\nWith a blank line.", steps)
    assert len(positions) == len(steps)
    sep = prm.sep_ids
    for k, pos in enumerate(positions):
        assert ids[pos - len(sep) + 1:pos + 1] == sep
    assert positions[-1] == len(ids) - 1
    # The positions are exactly the ones a hand-built sequence gives.
    tok = lambda t: prm.tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    expected_ids, expected_pos = prm.prefix_ids + tok("A problem.\n\nWith a blank line.") + sep, []
    for step in steps:
        expected_ids += tok(step) + sep
        expected_pos.append(len(expected_ids) - 1)
    assert (ids, positions) == (expected_ids, expected_pos)
    assert len(prm.score([("A problem.", steps)])[0]) == len(steps)


def test_it_ignores_special_separator_text_inside_a_step(tmp_path):
    prm = StepPRM.load(build_tiny_prm(tmp_path), step_separator="<|step|>")
    step_id = prm.tokenizer.convert_tokens_to_ids("<|step|>")
    assert prm.sep_ids == [step_id]
    steps = ["a step that mentions <|step|> literally", "another <|step|><|step|> one"]
    ids, positions = prm.encode("Problem <|step|> text", steps)
    assert [i for i, t in enumerate(ids) if t == step_id] == [ids.index(step_id), *positions]
    probs = prm.score([("Problem <|step|> text", steps)])[0]
    assert len(probs) == 2 and all(p is not None for p in probs)


def test_it_marks_steps_past_max_length_as_none(prm):
    problem = "Compute the sum of the first ten positive integers."
    steps = ["Step one: factor the polynomial."] * 6
    full_ids, full_pos = prm.encode(problem, steps, max_length=1024)
    cut = full_pos[2] + 1  # room for exactly three steps
    ids, positions = prm.encode(problem, steps, max_length=cut)
    assert len(ids) == cut and positions == full_pos[:3] + [None] * 3
    probs = prm.score([(problem, steps)], max_length=cut)[0]
    full = prm.score([(problem, steps)])[0]
    assert probs[3:] == [None] * 3
    assert_close([probs[:3]], [full[:3]])  # the kept prefix scores as in the untruncated solution
    # Unscorable: never the product of the three steps that fit, which would rank it above the whole solution.
    assert solution_score(probs) is None
    assert solution_score(full) == pytest.approx(math.prod(1 - p[0] for p in full))


def test_it_cuts_a_long_problem_to_its_head(prm):
    problem = " ".join(["apples"] * 400)
    steps = ["x = 4.", "The answer is 42."]
    ids, positions = prm.encode(problem, steps, max_length=64)
    # The problem gives way so the first step fits; the second no longer does.
    assert len(ids) == 64 and positions[0] == 63 and positions[1] is None
    head = prm.tokenizer(problem, add_special_tokens=False)["input_ids"][:10]
    assert ids[len(prm.prefix_ids):len(prm.prefix_ids) + 10] == head
    # A first step too long for the budget leaves every step unscored, without an error.
    probs = prm.score([(problem, [" ".join(["apples"] * 200), "x"])], max_length=64)[0]
    assert probs == [None, None]
    assert solution_score(probs) is None
