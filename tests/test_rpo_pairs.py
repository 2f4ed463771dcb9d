"""Iterative RPO's pairs: the generator's own graded candidates, on its own prompt, test split left out."""
import io
import json

import pytest

from labeling.core.prompts import INSTRUCTION, TEMPLATE_ID, generator_message
from labeling.models import Export, Job, ModelVersion, Problem, Round, Solution
from labeling.services.data.exports import export_run
from labeling.services.data.generator_pairs import GeneratorPairOptions, generator_pairs_export
from labeling.services.rounds.registry import generator_version
from labeling.errors import InvalidInput
from labeling.services.training.generator_promotion import generator_default_spec, generator_promote
from labeling.services.training.generator_training import GeneratorTrainParameters, generator_train_start

pytestmark = pytest.mark.django_db

GEN = "package:tiny-generator"


def solve(problem, answer, k, generator=GEN, correct=None):
    steps = [f"attempt {k} of {problem.text}", f"so it is {answer}\n\n# Answer\n\n{answer}"]
    return Solution.objects.create(problem=problem, steps=steps, final_answer=answer, generator=generator,
                                   is_correct=correct, graded_mode="fixed" if correct is not None else "")


@pytest.fixture
def candidates():
    train = Problem.objects.create(text="What is 2 + 3?", answer="5", split="train")
    other = Problem.objects.create(text="What is 2 x 3?", answer="6", split="train")
    test = Problem.objects.create(text="What is 4 + 4?", answer="8", split="test")
    return {"train": train, "other": other, "test": test,
            "right": [solve(train, "5", 0), solve(train, "5.0", 1)], "wrong": [solve(train, "7", 2)],
            "other_right": solve(other, "6", 0), "other_wrong": solve(other, "5", 1),
            "test_right": solve(test, "8", 0), "test_wrong": solve(test, "9", 1),
            "someone_else": solve(train, "4", 3, generator="another-model")}


def export(**options):
    out = io.BytesIO()
    result = generator_pairs_export(out=out, options=GeneratorPairOptions(generator=GEN, **options))
    return [json.loads(line) for line in out.getvalue().decode().splitlines()], result


def test_it_pairs_correct_against_wrong_on_the_generators_own_prompt(candidates):
    version = generator_version(spec=GEN)
    rows, result = export()
    train = candidates["train"]
    mine = [r for r in rows if r["problem_id"] == train.pk]
    assert len(mine) == 2  # two correct (5 and 5.0, graded in fixed mode) against the one wrong
    for row in mine:
        assert row["prompt"] == generator_message(train.text) == INSTRUCTION.format(problem=train.text)
        assert row["prompt"] != train.text and row["prompt_template"] == TEMPLATE_ID
        assert row["chosen_solution_id"] in {s.pk for s in candidates["right"]}
        assert row["rejected_solution_id"] == candidates["wrong"][0].pk
        assert row["chosen"] == "\n\n".join(Solution.objects.get(pk=row["chosen_solution_id"]).steps)
        assert row["chosen_generator"] == row["rejected_generator"] == GEN
        assert row["chosen_generator_version"] == row["rejected_generator_version"] == version.name
    assert result.stats["prompt_template"] == {"id": TEMPLATE_ID, "text": INSTRUCTION}
    assert result.stats["generator"] == {"spec": GEN, "version": version.name}
    assert result.stats["grading"] == "fixed" and result.stats["test_split"] == "excluded"


def test_it_leaves_the_test_split_and_other_generators_out(candidates):
    rows, result = export()
    used = {r["chosen_solution_id"] for r in rows} | {r["rejected_solution_id"] for r in rows}
    assert candidates["test"].pk not in {r["problem_id"] for r in rows}
    assert candidates["someone_else"].pk not in used
    assert result.stats["test_split_solutions_left_out"] == 2
    assert result.stats["pairs"] == len(rows) == 3 and result.stats["problems_with_pairs"] == 2


def test_it_takes_one_rounds_problems(candidates):
    Round.objects.create(number=1, parameters={"problem_ids": [candidates["other"].pk]})
    rows, _ = export(rounds=[1])
    assert {r["problem_id"] for r in rows} == {candidates["other"].pk}
    assert export(pairs_per_problem=1)[1].stats["pairs"] == 2


def test_the_export_job_records_template_and_versions(candidates, settings, tmp_path):
    settings.MEDIA_ROOT, settings.EXPORT_DIR = tmp_path, tmp_path / "exports"
    row = Export.objects.create(format="generator_pairs",
                                filters={"exclude_test": True, "options": {"generator": GEN}})
    assert export_run(export_id=row.pk)
    row.refresh_from_db()
    output = row.provenance["output"]
    assert row.record_count == 3 and output["prompt_template"]["id"] == TEMPLATE_ID
    assert output["generator"]["spec"] == GEN


def test_training_starts_from_the_promoted_generator(candidates, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        with pytest.raises(InvalidInput, match="no solutions sampled by"):
            generator_train_start(params=GeneratorTrainParameters(base="never-used"))
        promoted = generator_promote(version=generator_version(spec=GEN))
        assert generator_default_spec() == GEN and promoted.is_active_generator
        job = generator_train_start(params=GeneratorTrainParameters(steps=2, pairs_from_round=None))
    assert job.kind == Job.Kind.TRAIN_GENERATOR and job.parameters["base"] == GEN
    assert job.parameters["parent"]["name"] == f"generator:{GEN}"
    export_row = Export.objects.get(pk=job.parameters["pairs_export_id"])
    assert export_row.format == "generator_pairs" and export_row.filters["exclude_test"] is True
    other = ModelVersion.objects.create(name="g2", kind=ModelVersion.Kind.GENERATOR, path="g2")
    generator_promote(version=other)
    assert list(ModelVersion.objects.filter(is_active_generator=True)) == [other]


def test_the_rounds_page_shows_generator_accuracy_per_iteration(client, alice):
    base = generator_version(spec=GEN)
    trained = ModelVersion.objects.create(
        name="generator-rpo-job9", kind=ModelVersion.Kind.GENERATOR, path="/models/generator-rpo-job9",
        config={"iteration": 1}, metrics={"final_loss": 0.6931, "generator_evaluation": {
            "greedy_accuracy": 0.25, "majority_accuracy": 0.5, "n": 4, "problems": 8}})
    generator_promote(version=trained)
    Round.objects.create(number=1, parameters={"generator": GEN, "problem_ids": []})
    Round.objects.create(number=2, parameters={"generator": trained.path, "problem_ids": []})
    client.force_login(alice)
    html = client.get("/rounds/").content.decode()
    assert f"{base.name} <span class=\"muted\">(iteration 0)</span>" in html
    assert "generator-rpo-job9 <span class=\"muted\">(iteration 1)</span>" in html
    assert "0.250 / 0.500 <span class=\"muted\">@4</span>" in html
    assert "(promoted)" in html and "0.6931" in html


def test_the_export_command_writes_the_pairs(candidates, tmp_path):
    from django.core.management import call_command

    generator_promote(version=generator_version(spec=GEN))
    err = io.StringIO()
    call_command("export", "--format", "generator_pairs", "--out", str(tmp_path / "pairs.jsonl"), stderr=err)
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["chosen_generator"] == GEN for r in rows)
    assert "exported 3 records" in err.getvalue()
