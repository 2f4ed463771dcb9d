"""Generated text is stored cleaned: no NUL or other control characters, no lone surrogates (PostgreSQL
refuses the first, UTF-8 cannot encode the second)."""
import pytest

from labeling.core.solution_text import storable_text
from labeling.models import Job, Problem, Solution
from labeling.services.jobs.rows import chunk_claim, job_create
from labeling.services.rounds.generation import generate_chunk
from workers.ml.generator import Sample


@pytest.mark.parametrize("text, stored", [
    ("x\x00 = 2", "x = 2"),
    ("a\x01\x08\x0b\x0c\x0e\x1fb", "ab"),
    ("tab\tnewline\ncarriage\r", "tab\tnewline\ncarriage\r"),
    ("lone \ud800 and \udfff", "lone \ufffd and \ufffd"),
    ("a pair \ud83d\ude00", "a pair \U0001f600"),
    ("\\frac{1}{2} \u2212 3\u00b0", "\\frac{1}{2} \u2212 3\u00b0"),
    ("", ""),
])
def test_storable_text(text, stored):
    assert storable_text(text) == stored
    storable_text(text).encode("utf-8")  # never raises


class SampledText:
    """Stands for a model's output (workers.ml.generator.Generator.sample's interface): a tiny model can
    sample a NUL, and a decoder can hand back a lone surrogate."""

    def sample(self, problems, n, *, seed, **settings):
        steps = ["Let x\x00 = 2.", "Then x + x\ud800 = 4.\n\n# Answer\n\n4\x00", "\x00\x07"]
        return [[Sample(text="", steps=steps, final_answer="4\x00", finish_reason="stop", tokens=9,
                        sampling={"seed": seed})] for _ in problems]


@pytest.mark.django_db
def test_a_generation_chunk_stores_sampled_nul_and_lone_surrogates_cleaned():
    problem = Problem.objects.create(text="What is 2 + 2?", answer="4", source_id="s/1", split="train")
    job = job_create(kind=Job.Kind.GENERATE, chunks=[[problem.id]], parameters={})
    chunk = chunk_claim(chunk_id=job.chunks.get().id)
    assert generate_chunk(chunk=chunk, generator=SampledText(), candidates=1, spec="sampled-text",
                          sampling={"seed": 0}) == 1
    solution = Solution.objects.get(problem=problem)
    assert solution.steps == ["Let x = 2.", "Then x + x\ufffd = 4.\n\n# Answer\n\n4"]  # the empty step dropped
    assert solution.steps_hash == Solution.hash_steps(solution.steps)
    assert solution.final_answer == "4" and solution.is_correct is True
