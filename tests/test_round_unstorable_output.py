"""A whole round on PostgreSQL whose generator samples NUL bytes and whose decoder hands back lone surrogates
completes: model output is made storable where it becomes rows, and imported text carrying either is refused,
located, before anything is written."""
import json

import pytest

from labeling.errors import DataError
from labeling.models import Problem, Round, Solution
from labeling.services.data.problem_import import problems_import
from labeling.services.data.solution_import import solutions_import
from labeling.services.rounds.stages import RoundParameters, round_start
from tests.round_factories import make_candidates, register_selector
from tests.tiny_models import build_causal_lm, build_token_classifier

torch = pytest.importorskip("torch")


def nul_emitting_lm(directory):
    """A real tiny byte-level Llama whose head makes the NUL byte (and 'x') all but certain at every step:
    every hidden state is projected on one direction, NUL on its positive side and 'x' on its negative."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    build_causal_lm(directory)
    tok = AutoTokenizer.from_pretrained(directory)
    model = LlamaForCausalLM.from_pretrained(directory)
    nul, x = tok.convert_tokens_to_ids("\u0100"), tok.convert_tokens_to_ids("x")  # byte 0x00 in byte-level BPE
    with torch.no_grad():
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[nul, 0] = 200.0
        model.lm_head.weight[x, 0] = -200.0
    model.save_pretrained(directory)
    return str(directory)


@pytest.fixture
def surrogate_decoder(monkeypatch):
    """Decoding as a byte-level decoder with errors='surrogateescape' would: a lone surrogate in the text."""
    from workers.ml import generator

    real = generator.Generator._to_sample

    def to_sample(self, ids, delimiter, sampling):
        decode = self.tokenizer.decode
        self.tokenizer.decode = lambda *a, **k: decode(*a, **k) + " \udced\n\n# Answer\n\n\ud800"
        try:
            return real(self, ids, delimiter, sampling)
        finally:
            del self.tokenizer.decode
    monkeypatch.setattr(generator.Generator, "_to_sample", to_sample)


@pytest.mark.django_db(transaction=True)
def test_a_postgresql_round_with_nul_and_lone_surrogates_in_model_output_completes(postgres, tmp_path, settings,
                                                                                    surrogate_decoder):
    from workers.ml.generator import Generator

    lm = nul_emitting_lm(tmp_path / "nul-lm")
    raw = Generator.load(lm).sample(["What is 1 + 1?"], 1, max_new_tokens=12, temperature=1.0)[0][0]
    assert "\x00" in raw.text and "\ud800" in raw.text  # the premise: what the model hands over is unstorable

    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_GENERATOR = lm
    make_candidates(n_problems=2, per_problem=1)
    register_selector(build_token_classifier(tmp_path / "prm"))
    round_ = round_start(params=RoundParameters(per_problem=2, candidates=3, max_new_tokens=12, temperature=1.0))
    round_.refresh_from_db()
    assert round_.status == Round.Status.DONE, round_.error
    generated = Solution.objects.filter(generator=lm)
    # Nearly deterministic output: the same cleaned text twice for a problem is one solution (unique steps).
    assert set(generated.values_list("problem_id", flat=True)) == set(Problem.objects.values_list("id", flat=True))
    for solution in generated:
        text = "".join(solution.steps) + (solution.final_answer or "")
        assert "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)
        assert "\ufffd" in text  # the lone surrogate became the replacement character, visibly
    assert round_.stats["generated"] == generated.count() and round_.selections.count() > 0


@pytest.mark.django_db
@pytest.mark.parametrize("escape, what", [("\\u0000", "NUL"), ("\\udfff", "lone UTF-16 surrogate")])
def test_imported_text_with_unstorable_characters_is_refused_located(write_lines, escape, what):
    good = json.dumps({"problem": "Fine?", "answer": "1", "unique_id": "ok/1"})
    bad = '{"problem": "What is 1' + escape + '?", "answer": "1", "unique_id": "bad/1"}'
    with pytest.raises(DataError) as err:
        problems_import(path=write_lines([good, bad]))
    assert (err.value.line, err.value.field) == (2, "problem") and what in str(err.value)
    assert not Problem.objects.exists()  # all or nothing
    Problem.objects.create(text="What is 2?", answer="2", source_id="p/2")
    line = '{"unique_id": "p/2", "steps": ["Two.", "# Answer\\n\\n2' + escape + '"]}'
    with pytest.raises(DataError) as err:
        solutions_import(path=write_lines([line]))
    assert (err.value.line, err.value.field) == (1, "steps[1]")
    assert not Solution.objects.exists()


def test_a_valid_surrogate_pair_and_a_literal_backslash_u_pass(tmp_path):
    from labeling.formats.jsonl import read_jsonl

    path = tmp_path / "ok.jsonl"
    path.write_text('{"a": "\\ud83d\\ude00", "b": "\\\\u0000 is how JSON writes NUL"}\n')
    [(_, _, obj)] = read_jsonl(path)
    assert obj == {"a": "\U0001f600", "b": "\\u0000 is how JSON writes NUL"}
