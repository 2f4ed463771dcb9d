"""Rollouts from step prefixes with a tiny causal LM: the prefix encoded once and its KV cache shared by its n
continuations gives the same continuations as re-encoding it for each, deterministically under a seed."""
import pytest

from labeling.core.rollout_values import PrefixRequest
from tests.tiny_models import build_causal_lm

torch = pytest.importorskip("torch")

STEPS = ("Let x be 2.", "Then 2x + 3 = 7.", "So x = 2.\n\n# Answer\n\n2")


@pytest.fixture(scope="module")
def sampler(tmp_path_factory, torch_one_thread):
    from workers.ml.generator import Generator
    from workers.ml.rollouts import RolloutSampler

    folder = build_causal_lm(tmp_path_factory.mktemp("prover"))
    return RolloutSampler(Generator(*_load(folder), spec=folder))


def _load(folder):
    from transformers import AutoTokenizer, LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def requests():
    return ([PrefixRequest(1, "What is x if 2x + 3 = 7?", STEPS, k, "2") for k in range(len(STEPS) + 1)]
            + [PrefixRequest(2, "Compute the sum of 1 and 1.", STEPS[:2], k, "2") for k in range(3)])


def run(sampler, **kw):
    kw = {"max_new_tokens": 12, "seed": 5, "batch_prefixes": 3, **kw}
    return sampler.rollouts(requests(), 4, **kw)


@pytest.fixture(scope="module")
def baseline(sampler):
    """The shared-cache run every test compares with, and its stats."""
    return run(sampler), dict(sampler.last_stats)


def test_shared_prefix_cache_samples_what_re_encoding_samples(sampler, baseline):
    shared, stats_shared = baseline
    encoded, stats_encoded = run(sampler, share_prefix=False, batch_prefixes=2), sampler.last_stats
    assert [r.texts for r in shared] == [r.texts for r in encoded]
    assert [r.n_correct for r in shared] == [r.n_correct for r in encoded]
    assert stats_shared["tokens"] == stats_encoded["tokens"] > 0
    # the prefix tokens encoded: once per prefix against n times
    assert stats_encoded["prefix_tokens"] == 4 * stats_shared["prefix_tokens"]
    assert len({t for r in shared for t in r.texts}) > 10  # the samples differ from each other


def test_the_prefix_is_encoded_once(sampler):
    """With the cache, the model never sees a prefix again: after the prefix pass only one token per row."""
    widths = []
    hook = sampler.generator.model.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        sampler.rollouts(requests()[:3], 4, max_new_tokens=5, seed=1, batch_prefixes=3)
    finally:
        hook.remove()
    prefix_pass, *steps = widths
    assert prefix_pass[0] == 3 and prefix_pass[1] > 10  # the 3 prefixes once, not 12 rows
    assert all(shape == (12, 1) for shape in steps), widths


def test_deterministic_under_a_seed_whatever_the_batch(sampler, baseline):
    a, b = baseline[0], run(sampler, batch_prefixes=1)
    assert [r.texts for r in a] == [r.texts for r in b]
    assert [r.texts for r in run(sampler, seed=6)] != [r.texts for r in a]


def test_a_finished_solution_is_graded_not_continued(sampler, baseline):
    results = baseline[0]
    whole = results[len(STEPS)]  # prefix = every step of solution 1, its answer written
    assert (whole.k, whole.n_correct, whole.tokens, whole.answers) == (3, 4, 0, ["2"] * 4)
    wrong = sampler.rollouts([PrefixRequest(1, "p", STEPS, 3, "5")], 4, seed=0)[0]
    assert wrong.n_correct == 0 and wrong.tokens == 0
    assert all(0 < r.tokens <= 4 * 12 for r in results[:len(STEPS)])
