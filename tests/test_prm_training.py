"""Training a step-head PRM on tiny Llamas built offline: it learns, it ignores unlabeled steps, it saves
only on success, and what it saves is a PRM that StepPRM loads and scores."""
import math
import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.tiny_models import build_causal_lm, build_token_classifier  # noqa: E402
from workers.ml.prm import StepPRM  # noqa: E402
from workers.ml.prm_training import (  # noqa: E402
    TrainingDiverged, TrainingStopped, build_examples, micro_batch_loss, train_step_prm)

FILL = "x = 4 so the sum is 55 hence c = 5 then".split()


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def causal_lm(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("causal_lm"))


@pytest.fixture(scope="module")
def prm_folder(tmp_path_factory):
    return build_token_classifier(tmp_path_factory.mktemp("prm"))


def step_with(rng, marker):
    words = rng.choices(FILL, k=rng.randint(1, 4))
    words.insert(rng.randrange(len(words) + 1), marker)
    return " ".join(words)


def ab_items(n, seed):
    """A step holding token "A" is right (+1), one holding "B" wrong (-1); after the first B, unlabeled."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        steps, ratings, wrong_before = [], [], False
        for _ in range(rng.randint(2, 5)):
            good = rng.random() < 0.6
            steps.append(step_with(rng, "A" if good else "B"))
            ratings.append(None if wrong_before else (1 if good else -1))
            wrong_before = wrong_before or not good
        items.append(("Compute " + " ".join(rng.choices(FILL, k=4)), steps, ratings))
    return items


def held_out(n, seed):
    """Some right steps, then maybe one wrong step: every step is one a labeler would have rated."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        steps = [step_with(rng, "A") for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.5:
            steps.append(step_with(rng, "B"))
        items.append(("Compute " + " ".join(rng.choices(FILL, k=4)), steps))
    return items


def test_it_learns_that_b_steps_are_wrong_from_a_causal_lm(causal_lm, tmp_path):
    out = tmp_path / "prm"
    result = train_step_prm(base_spec=causal_lm, items=ab_items(64, 1), out_dir=out,
                            learning_rate=1e-2, epochs=4, batch_size=8, seed=0)

    prm = StepPRM.load(out)
    items = held_out(40, 99)
    p_neg = {"A": [], "B": []}
    for (_, steps), probs in zip(items, prm.score(items)):
        for step, p in zip(steps, probs):
            p_neg["A" if "A" in step.split() else "B"].append(p[0])
    mean_a = sum(p_neg["A"]) / len(p_neg["A"])
    mean_b = sum(p_neg["B"]) / len(p_neg["B"])
    assert mean_b - mean_a > 0.5, (mean_a, mean_b)
    pairs = [(a, b) for a in p_neg["A"] for b in p_neg["B"]]
    assert sum(b > a for a, b in pairs) / len(pairs) > 0.95
    assert result["steps"] == 4 * 8 == len(result["loss_curve"])
    assert (result["device"], result["dtype"]) == ("cpu", "float32")


def test_it_lowers_the_loss_and_continues_from_a_saved_prm(prm_folder, tmp_path):
    items = ab_items(32, 2)
    first = train_step_prm(base_spec=prm_folder, items=items, out_dir=tmp_path / "one",
                           learning_rate=1e-2, epochs=4, batch_size=8)
    curve = first["loss_curve"]
    assert sum(curve[-3:]) / 3 < 0.5 * curve[0], curve
    labeled = sum(r is not None for _, _, ratings in items for r in ratings)
    assert first["labeled_steps"] == labeled and first["items"] == 32
    assert sum(first["label_counts"].values()) == labeled and first["label_counts"]["neutral"] == 0
    assert first["tokens"] == sum(first["step_tokens"]) > 0 and first["tokens_per_second"] > 0
    assert first["learning_rate"] == 1e-2 and first["epochs"] == 4 and first["batch_size"] == 8

    # The saved head is kept when training continues: the next run starts where this one ended.
    again = train_step_prm(base_spec=str(tmp_path / "one"), items=items, out_dir=tmp_path / "two",
                           learning_rate=1e-6, epochs=1, batch_size=32)
    assert again["loss_curve"][0] < 0.5 * curve[0]


def test_it_leaves_unlabeled_steps_out_of_the_gradient(prm_folder):
    prm = StepPRM.load(prm_folder)
    model = prm.model
    problem, steps = "Compute the sum", ["x = 4", "so c = 5", "then 55"]

    def grads(ratings):
        (example,), _ = build_examples(prm, [(problem, steps[:len(ratings)], ratings)], 512)
        model.zero_grad()
        micro_batch_loss(model, [example], prm.pad_id, "cpu").backward()
        return [p.grad.clone() for p in model.parameters()]

    # Causal attention: the tokens of steps 2-3 cannot reach step 1's logits, so with their
    # ratings None the gradient must be that of step 1 alone (up to float rounding: the sequences differ).
    with_unlabeled, alone = grads([1, None, None]), grads([1])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(with_unlabeled, alone))
    labeled = grads([1, -1, None])
    assert max((a - b).abs().max().item() for a, b in zip(labeled, alone)) > 0.1
    model.zero_grad()


def test_it_refuses_items_without_a_labeled_step(prm_folder, tmp_path):
    out = tmp_path / "prm"
    with pytest.raises(ValueError, match="items"):
        train_step_prm(base_spec=prm_folder, items=[("p", ["a", "b"], [None, None])], out_dir=out)
    with pytest.raises(ValueError, match=r"items\[1\]"):
        train_step_prm(base_spec=prm_folder, items=[("p", ["a"], [1]), ("p", ["a", "b"], [1])], out_dir=out)
    with pytest.raises(ValueError, match=r"items\[0\]"):
        train_step_prm(base_spec=prm_folder, items=[("p", ["a"], [2])], out_dir=out)
    with pytest.raises(ValueError, match="max_length"):  # the only labeled step lies past max_length
        train_step_prm(base_spec=prm_folder, items=[("x = 4 " * 40, ["a", "b"], [None, 1])], out_dir=out,
                       max_length=64)
    assert not out.exists()


@pytest.mark.parametrize("field, value", [
    ("learning_rate", 0), ("learning_rate", -1e-5), ("learning_rate", math.nan), ("learning_rate", math.inf),
    ("epochs", 0), ("batch_size", 0), ("grad_accum", 0), ("max_length", 4), ("batch_size", 2.5),
])
def test_it_names_a_bad_hyperparameter(prm_folder, tmp_path, field, value):
    out = tmp_path / "prm"
    with pytest.raises(ValueError, match=field):
        train_step_prm(base_spec=prm_folder, items=ab_items(4, 0), out_dir=out, **{field: value})
    assert not out.exists()


def nothing_left_beside(out):
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no half-written temp folder either


def test_an_exception_from_progress_aborts_with_nothing_saved(prm_folder, tmp_path):
    out = tmp_path / "runs" / "prm"
    out.parent.mkdir()
    calls = []

    def progress(step, total, loss):
        calls.append((step, total))
        if step == 2:
            raise RuntimeError("cancelled by the user")

    with pytest.raises(RuntimeError, match="cancelled"):
        train_step_prm(base_spec=prm_folder, items=ab_items(16, 0), out_dir=out, batch_size=4,
                       learning_rate=1e-3, progress=progress)
    assert calls == [(1, 4), (2, 4)]
    nothing_left_beside(out)


def test_stop_ends_the_run_with_nothing_saved(prm_folder, tmp_path):
    out = tmp_path / "runs" / "prm"
    out.parent.mkdir()
    steps = []
    with pytest.raises(TrainingStopped):
        train_step_prm(base_spec=prm_folder, items=ab_items(16, 0), out_dir=out, batch_size=4,
                       progress=lambda step, total, loss: steps.append(step), stop=lambda: len(steps) >= 1)
    assert steps == [1]
    nothing_left_beside(out)


def test_a_diverging_learning_rate_saves_nothing(causal_lm, tmp_path):
    out = tmp_path / "runs" / "prm"
    out.parent.mkdir()
    with pytest.raises(TrainingDiverged, match="learning_rate"):
        train_step_prm(base_spec=causal_lm, items=ab_items(16, 0), out_dir=out, batch_size=2,
                       learning_rate=1e30)
    nothing_left_beside(out)


def test_it_never_overwrites_an_existing_folder(prm_folder, tmp_path):
    with pytest.raises(ValueError, match="out_dir"):
        train_step_prm(base_spec=prm_folder, items=ab_items(4, 0), out_dir=tmp_path, batch_size=4)
