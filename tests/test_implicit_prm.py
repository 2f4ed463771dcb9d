"""Implicit PRM (round-0 selector) on a tiny Llama built offline: reward arithmetic, batching,
truncation, aggregation, and training from outcome labels that hinge on one step."""
import copy
import math
import random
import statistics

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from labeling.core.evaluation import first_error_prediction  # noqa: E402
from labeling.core.step_scores import implicit_step_rewards  # noqa: E402
from tests.tiny_models import CORPUS, build_causal_lm  # noqa: E402
from workers.ml.implicit_prm import ImplicitPRM, solution_score  # noqa: E402
from workers.ml.implicit_training import train_implicit_prm  # noqa: E402

WORDS = sorted({w for line in CORPUS[:7] for w in line.split()})
BETA = 0.05


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def perturbed(base):
    """A policy that differs from its reference, so rewards are non-zero."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    reference = AutoModelForCausalLM.from_pretrained(base).eval()
    policy = copy.deepcopy(reference)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    return ImplicitPRM(policy, reference, AutoTokenizer.from_pretrained(base), beta=BETA)


def make_items(n, seed=1):
    rng = random.Random(seed)
    return [(" ".join(rng.choices(WORDS, k=rng.randint(3, 20))),
             [" ".join(rng.choices(WORDS, k=rng.randint(1, 15))) for _ in range(rng.randint(1, 5))])
            for _ in range(n)]


def direct_logprobs(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return [0.0] + [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]


def test_it_splits_the_solution_reward_exactly_into_step_rewards(perturbed):
    prm = perturbed
    tok = lambda t: prm.tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    problem = "Let x be the number of apples.\n\nSolve it."
    steps = ["Then 2x + 3 = 11", "so x = 4.\n\nWe check.", "# Answer\n\n4"]
    # Built by hand: each separator belongs to the step before it.
    ids = prm.prefix_ids + tok(problem) + prm.sep_ids
    bounds = []
    for step in steps:
        start = len(ids)
        ids += tok(step) + prm.sep_ids
        bounds.append((start, len(ids)))
    lp_pol, lp_ref = direct_logprobs(prm.policy, ids), direct_logprobs(prm.reference, ids)
    expected = [BETA * sum(lp_pol[t] - lp_ref[t] for t in range(a, b)) for a, b in bounds]
    solution_reward = BETA * sum(lp_pol[t] - lp_ref[t] for t in range(bounds[0][0], len(ids)))

    rewards = prm.step_rewards([(problem, steps)])[0]
    assert abs(solution_reward) > 0.05 and min(abs(r) for r in rewards) > 1e-3
    assert rewards == pytest.approx(expected, abs=1e-5)
    assert sum(rewards) == pytest.approx(solution_reward, abs=1e-5)
    # score() is the running sum through a sigmoid; its last value is sigmoid(r).
    scores = prm.score([(problem, steps)])[0]
    q = torch.tensor(rewards, dtype=torch.float64).cumsum(0)
    assert scores == pytest.approx(torch.sigmoid(q).tolist(), abs=1e-9)
    assert solution_score(scores, how="last") == pytest.approx(float(torch.sigmoid(torch.tensor(solution_reward))),
                                                               abs=1e-5)


def test_it_offers_step_rewards_and_prefix_values_that_agree(perturbed):
    """r_k (step_rewards), q_k = r_1 + ... + r_k (prefix_values), sigmoid(q_k) (score, what is stored), and
    r_k recovered from the stored values (labeling.core.step_scores.implicit_step_rewards)."""
    prm, items = perturbed, make_items(8, seed=4)
    rewards, prefixes, scores = prm.step_rewards(items), prm.prefix_values(items), prm.score(items)
    assert any(abs(r) > 1e-3 for rs in rewards for r in rs)
    for r, q, s in zip(rewards, prefixes, scores):
        assert q == pytest.approx(torch.tensor(r, dtype=torch.float64).cumsum(0).tolist(), abs=1e-12)
        assert q[-1] == pytest.approx(sum(r), abs=1e-12)  # q_K is the solution reward r
        assert [q[0]] + [b - a for a, b in zip(q, q[1:])] == pytest.approx(r, abs=1e-12)
        assert s == pytest.approx([1 / (1 + math.exp(-x)) for x in q], abs=1e-12)
        stored = [round(v, 6) for v in s]  # as VerifierScore.step_scores keeps them
        assert implicit_step_rewards(stored) == pytest.approx(r, abs=1e-4)
        # Evaluation's first-error prediction at 0.5 is the first prefix with q_k < 0.
        assert first_error_prediction(s, 0.5) == next((k for k, x in enumerate(q) if x < 0), -1)
        assert solution_score(s) == min(s) and solution_score(s, how="last") == s[-1]
    # A cut step: its value and every later one are None, in all three views.
    steps = ["Step one: factor the polynomial."] * 4
    (_, spans), = prm.encode_spans([("Solve.", steps)])
    cut = spans[1][1] + 1
    for view in (prm.step_rewards, prm.prefix_values, prm.score):
        assert view([("Solve.", steps)], max_length=cut)[0][2:] == [None, None]
    assert implicit_step_rewards([0.6, None, 0.4]) == [pytest.approx(math.log(1.5)), None, None]


def test_it_gives_zero_rewards_when_policy_is_the_reference(base):
    prm = ImplicitPRM.load(base, base)
    assert prm.policy is prm.reference  # one copy for the same spec
    assert ImplicitPRM.load(base, base) is prm  # cached per process
    items = make_items(6)
    for rewards, scores in zip(prm.step_rewards(items), prm.score(items)):
        assert rewards == [0.0] * len(rewards)
        assert scores == [0.5] * len(scores)


def test_it_scores_batched_as_one_at_a_time(perturbed):
    prm = perturbed
    prm.tokenizer.padding_side = "left"  # scoring must not depend on the tokenizer's padding side
    items = make_items(11)
    batched = prm.step_rewards(items, batch_size=4)
    single = [prm.step_rewards([item], batch_size=1)[0] for item in items]
    for b, s in zip(batched, single):
        assert b == pytest.approx(s, abs=1e-5)
    assert list(prm.score_stream(iter(items), chunk=5, batch_size=3)) == pytest.approx(
        [pytest.approx(s, abs=1e-5) for s in prm.score(items)])


def test_it_marks_steps_past_max_length_as_none(perturbed):
    prm = perturbed
    problem = "Compute the sum of the first ten positive integers."
    steps = ["Step one: factor the polynomial."] * 5
    (ids, spans), = prm.encode_spans([(problem, steps)])
    # Spans tile the response: contiguous, ending at the last token.
    assert all(spans[k][1] + 1 == spans[k + 1][0] for k in range(4)) and spans[-1][1] == len(ids) - 1
    cut = spans[1][1] + 1  # room for exactly two steps
    full = prm.step_rewards([(problem, steps)])[0]
    rewards = prm.step_rewards([(problem, steps)], max_length=cut)[0]
    assert rewards[2:] == [None] * 3
    assert rewards[:2] == pytest.approx(full[:2], abs=1e-6)  # the kept prefix scores as untruncated
    scores = prm.score([(problem, steps)], max_length=cut)[0]
    assert scores[2:] == [None] * 3 and None not in scores[:2]
    assert solution_score(scores) is None and solution_score(scores, how="last") is None  # unscorable
    assert prm.score([(problem, [" ".join(["apples"] * 300)])], max_length=64) == [[None]]


def test_it_aggregates_min_or_last_and_refuses_product():
    values = [0.7, 0.4, 0.6]
    assert solution_score(values) == 0.4
    assert solution_score(values, how="last") == 0.6
    # A step cut by the maximum length makes the solution unscorable, not scored on the steps that fit.
    assert solution_score(values + [None]) is None and solution_score(values + [None], how="last") is None
    assert solution_score([None, None]) is None and solution_score([]) is None
    with pytest.raises(ValueError, match="product"):
        solution_score(values, how="product")
    with pytest.raises(ValueError, match="unknown"):
        solution_score(values, how="mean")


# --- training -------------------------------------------------------------------------------------

def toy_items(n, seed):
    """3 steps: filler, then "A" (correct) or "B" (wrong), then filler. Only step 2 decides."""
    rng = random.Random(seed)
    filler = lambda: " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))  # noqa: E731
    return [("Solve the problem.", [filler(), "A" if i % 2 == 0 else "B", filler()], i % 2 == 0)
            for i in range(n)]


def decisive_rewards(prm, items):
    rewards = prm.step_rewards([(p, s) for p, s, _ in items])
    a = [r[1] for r, (_, _, good) in zip(rewards, items) if good]
    b = [r[1] for r, (_, _, good) in zip(rewards, items) if not good]
    filler = [abs(r[k]) for r in rewards for k in (0, 2)]
    return a, b, filler


def train_toy(base, out_dir, flip=False):
    items = [(p, s, good != flip) for p, s, good in toy_items(48, seed=1)]
    # beta=1 lets sigmoid(r) reach the labels with a few nats on the decisive token alone; with the
    # paper's 0.05 a tiny model would rather memorise the filler.
    result = train_implicit_prm(base_spec=base, items=items, out_dir=out_dir, beta=1.0, learning_rate=1e-2,
                                epochs=4, batch_size=8, seed=0)
    return result, ImplicitPRM.load(str(out_dir), base, beta=1.0)


def test_it_learns_which_step_decides_the_outcome(base, tmp_path):
    held_out = toy_items(20, seed=99)
    tok = ImplicitPRM.load(base, base).tokenizer
    assert [len(tok(t, add_special_tokens=False)["input_ids"]) for t in ("A", "B")] == [1, 1]
    before_a, before_b, _ = decisive_rewards(ImplicitPRM.load(base, base, beta=1.0), held_out)
    assert before_a + before_b == [0.0] * len(held_out)

    result, prm = train_toy(base, tmp_path / "prm")
    assert result["steps"] == 4 * 6 and result["items"] == 48 and len(result["loss_curve"]) == 24
    assert result["loss_curve"][0] == pytest.approx(0.6931, abs=1e-3)  # r == 0 before the first update
    assert statistics.mean(result["loss_curve"][-6:]) < 0.2
    a, b, filler = decisive_rewards(prm, held_out)
    assert min(a) > 1.0 and max(b) < -1.0  # every held-out item, not just on average
    assert statistics.mean(abs(r) for r in a + b) > 1.5 * statistics.mean(filler)
    scores = prm.score([(p, s) for p, s, _ in held_out])
    good = [solution_score(sc, "last") for sc, (_, _, c) in zip(scores, held_out) if c]
    bad = [solution_score(sc, "last") for sc, (_, _, c) in zip(scores, held_out) if not c]
    # The whole-solution estimate sigmoid(r) also carries the held-out filler's noise: compare on average.
    assert statistics.mean(good) > statistics.mean(bad) + 0.3

    # The separation comes from the labels: swapped labels swap the decisive step's sign.
    _, flipped = train_toy(base, tmp_path / "flipped", flip=True)
    a, b, _ = decisive_rewards(flipped, held_out)
    assert max(a) < -1.0 and min(b) > 1.0


@pytest.mark.parametrize("field, value", [
    ("learning_rate", 0), ("learning_rate", -1e-3), ("epochs", 0), ("batch_size", 0), ("beta", 0.0),
    ("beta", float("nan")), ("max_length", 4), ("items", []),
])
def test_it_rejects_bad_hyperparameters_before_loading(tmp_path, field, value):
    kwargs = dict(base_spec=str(tmp_path / "no-such-model"), items=toy_items(4, seed=0), out_dir=tmp_path / "out")
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        train_implicit_prm(**kwargs)
    assert not (tmp_path / "out").exists()


def test_it_reports_progress_per_step_and_aborts_from_the_callback(base, tmp_path):
    items = toy_items(10, seed=5)
    calls = []
    result = train_implicit_prm(base_spec=base, items=items, out_dir=tmp_path / "ok", epochs=2, batch_size=4,
                                learning_rate=1e-3, progress=lambda *a: calls.append(a))
    assert [(s, t) for s, t, _ in calls] == [(s, 6) for s in range(1, 7)]
    assert [loss for _, _, loss in calls] == result["loss_curve"]
    assert result["tokens"] > 0 and result["tokens_per_second"] > 0
    assert (tmp_path / "ok" / "implicit_prm.json").is_file()

    class Cancelled(Exception):
        pass

    def cancel(step, total, loss):
        if step == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        train_implicit_prm(base_spec=base, items=items, out_dir=tmp_path / "aborted", batch_size=4, progress=cancel)
    assert not (tmp_path / "aborted").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok"]  # no temp folder left behind


def test_a_frozen_trunk_is_shared_with_the_reference_and_scores_as_two_full_passes(tmp_path):
    """Training only the top layer keeps the rest equal to the reference; scoring then runs the shared
    layers once, and gives what two whole forward passes give."""
    from workers.ml.implicit_prm import ImplicitPRM
    from workers.ml.implicit_training import train_implicit_prm
    from workers.ml.shared_trunk import shared_layers

    base = build_causal_lm(tmp_path / "base", num_hidden_layers=3)
    items = [("What is 2 + 2?", ["Let x be 4.", "The answer is 4.\n\n# Answer\n\n4"], True),
             ("What is 2 + 3?", ["Let x be 6.", "The answer is 6.\n\n# Answer\n\n6"], False)] * 4
    result = train_implicit_prm(base_spec=base, items=items, out_dir=str(tmp_path / "trained"), beta=1.0,
                                learning_rate=1e-2, epochs=2, batch_size=4, max_length=128, trainable_layers=1)
    assert result["frozen_layers"] == 2
    prm = ImplicitPRM.load(str(tmp_path / "trained"), base, beta=1.0)
    assert prm.shared == 2 and shared_layers(prm.policy, prm.reference) == 2
    problems = [(p, s) for p, s, _ in items[:2]] + [("A longer problem: what is 10 + 10 + 10?", ["Ten.", "Thirty."])]
    paired = prm.step_rewards(problems, batch_size=3)
    prm.shared = 0  # the same scorer, made to run both models whole
    whole = prm.step_rewards(problems, batch_size=3)
    assert any(abs(r) > 1e-3 for rewards in whole for r in rewards)  # training moved the rewards
    for a, b in zip(paired, whole):
        assert a == pytest.approx(b, abs=1e-5)
