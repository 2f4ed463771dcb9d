"""ProcessBench-format evaluation sets: import (JSON list and JSONL), located errors, export round trip, and
ProcessBench's per-subset table checked against a hand computation on the project's own sample file."""
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.errors import DataError
from labeling.models import Annotator, EvaluationItem, EvaluationSet, ModelVersion, Problem, Solution
from labeling.services.data.evaluation_sets import (evaluation_set_export, evaluation_set_from_labels,
                                                    evaluation_set_import_processbench, evaluation_set_import_prm800k)
from labeling.services.rounds.registry import model_version_register
from labeling.services.training.benchmarks import evaluate_on_sets
from tests.label_factories import annotation_make

SAMPLE = Path(__file__).parent / "data" / "processbench_sample.json"

# P(step is not an error) the hand scorer gives each record's steps, by id. With threshold 0.5 the
# prediction is the first step below 0.5 (-1 if none):
#   gsm8k-0 [.9 .8 .7] -> -1, gold -1: right      gsm8k-1 [.9 .2] -> 1, gold 1: right
#   gsm8k-2 [.6 .3]    ->  1, gold  0: wrong      gsm8k-3 [.8 .4] -> 1, gold -1: wrong
#     gsm8k: erroneous 1/2, correct 1/2, F1 = 2(.5)(.5)/(1) = .5
#   math-0 [.7 .6 .1] -> 2, gold 2: right   math-1 [.9 .95] -> -1: right   math-2 [.55 .6] -> -1: right
#     math: erroneous 1/1, correct 2/2, F1 = 1
#   omnimath-0 [.45] -> 0, gold 0: right   omnimath-1 [.8 .9 .3] -> 2, gold 1: wrong
#   omnimath-2 [.4 .9] -> 0, gold -1: wrong
#     omnimath: erroneous 1/2, correct 0/1, F1 = 0
#   average F1 over the three subsets: (.5 + 1 + 0) / 3 = .5
SCORES = {"gsm8k-0": [.9, .8, .7], "gsm8k-1": [.9, .2], "gsm8k-2": [.6, .3], "gsm8k-3": [.8, .4],
          "math-0": [.7, .6, .1], "math-1": [.9, .95], "math-2": [.55, .6],
          "omnimath-0": [.45], "omnimath-1": [.8, .9, .3], "omnimath-2": [.4, .9]}
HAND = {"gsm8k": (1 / 2, 1 / 2, .5, 2, 2), "math": (1.0, 1.0, 1.0, 1, 2), "omnimath": (1 / 2, 0.0, 0.0, 2, 1)}


class HandScorer:
    """Floats per step (an implicit PRM's kind of value), looked up by the record's steps."""

    def __init__(self, scores_by_id=SCORES, sample=SAMPLE):
        records = json.loads(Path(sample).read_text())
        self.by_steps = {tuple(r["steps"]): scores_by_id[r["id"]] for r in records if r["id"] in scores_by_id}

    def score(self, items, batch_size=16, max_length=1024):
        return [list(self.by_steps[tuple(steps)]) for _problem, steps in items]

    def solution_score(self, values):
        return min(values)


def prm(name="prm-pb"):
    return model_version_register(name=name, kind=ModelVersion.Kind.PRM, path="/nonexistent",
                                  config={"architecture": "implicit", "reference": "/nonexistent"})


# --- import and export ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_it_round_trips_the_sample(tmp_path):
    result = evaluation_set_import_processbench(path=SAMPLE, name="pb")
    assert result.created == 10 and result.evaluation_set.role == "test"
    # Subsets come from ProcessBench's id prefixes when the file's name is not a subset's.
    assert list(EvaluationItem.objects.values_list("subset", flat=True).distinct().order_by("subset")) == [
        "gsm8k", "math", "omnimath"]
    out = tmp_path / "out.json"
    assert evaluation_set_export(evaluation_set=result.evaluation_set, out=out) == 10
    assert json.loads(out.read_text()) == json.loads(SAMPLE.read_text())
    # ... and the written file imports again to the same items.
    again = evaluation_set_import_processbench(path=out, name="pb-again")
    fields = ("subset", "source_id", "generator", "problem", "steps", "label", "final_answer_correct")
    assert (list(again.evaluation_set.items.values_list(*fields))
            == list(result.evaluation_set.items.values_list(*fields)))


@pytest.mark.django_db
def test_it_reads_jsonl_and_one_subset_per_file(tmp_path):
    records = [r for r in json.loads(SAMPLE.read_text()) if r["id"].startswith("math")]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = evaluation_set_import_processbench(path=path, name="pb")
    assert result.created == 3 and set(result.evaluation_set.items.values_list("subset", flat=True)) == {"math"}
    out = tmp_path / "out.json"
    call_command("export_evalset", "pb", "--out", str(out), "--subset", "math")
    assert json.loads(out.read_text()) == records


@pytest.mark.django_db
def test_importing_the_same_file_twice_adds_nothing_and_another_file_for_a_subset_is_refused(tmp_path):
    evaluation_set_import_processbench(path=SAMPLE, name="pb")
    assert evaluation_set_import_processbench(path=SAMPLE, name="pb").created == 0
    other = tmp_path / "other.json"
    other.write_text(json.dumps([json.loads(SAMPLE.read_text())[0] | {"problem": "changed"}]))
    with pytest.raises(DataError, match="already has subset gsm8k"):
        evaluation_set_import_processbench(path=other, name="pb")
    assert EvaluationItem.objects.count() == 10


@pytest.mark.django_db
@pytest.mark.parametrize("mutate, where", [
    (lambda rs: rs[2].update(label=5), "field '[2].label': must be -1 or a step index 0..1, got 5"),
    (lambda rs: rs[4]["steps"].__setitem__(1, 7), "field '[4].steps[1]': must be a string"),
    (lambda rs: rs[9].pop("problem"), "field '[9].problem': missing"),
    (lambda rs: rs[1].update(label=True), "field '[1].label': must be an integer, got a boolean"),
    (lambda rs: rs[3].update(extra=1), "field '[3].extra': unknown field"),
    (lambda rs: rs[6].update(id="gsm8k-0"), "appears twice"),
    (lambda rs: rs[5].update(problem="x\ud800"), "field '[5].problem': contains a lone UTF-16 surrogate"),
])
def test_a_bad_record_anywhere_is_located_and_nothing_is_written(tmp_path, mutate, where):
    records = json.loads(SAMPLE.read_text())
    mutate(records)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DataError) as exc:
        evaluation_set_import_processbench(path=path, name="pb")
    assert str(path) in str(exc.value) and where in str(exc.value)
    assert not EvaluationSet.objects.exists() and not EvaluationItem.objects.exists()


@pytest.mark.django_db
def test_a_bad_jsonl_line_is_located_by_its_line(tmp_path):
    lines = [json.dumps(r) for r in json.loads(SAMPLE.read_text())[:3]]
    lines[2] = lines[2].replace('"label": 0', '"label": -2')
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError, match=r"nothing was written: .*gsm8k.jsonl, line 3, field 'label': must be -1"):
        call_command("import_evalset", str(path))
    assert not EvaluationItem.objects.exists()


# --- ProcessBench's table against the hand computation ----------------------------------------------

def check_table(table):
    for subset, (error_acc, correct_acc, f1, n_error, n_correct) in HAND.items():
        got = table["subsets"][subset]
        assert (got["error_acc"], got["correct_acc"], got["n_error"], got["n_correct"]) == pytest.approx(
            (error_acc, correct_acc, n_error, n_correct)), subset
        assert got["f1"] == pytest.approx(f1), subset
    assert table["average_f1"] == pytest.approx(.5)


@pytest.mark.django_db
def test_f1_per_subset_matches_the_hand_computation():
    pb = evaluation_set_import_processbench(path=SAMPLE, name="pb").evaluation_set
    metrics = evaluate_on_sets(version=prm(), scorer=HandScorer(), sets=[pb])
    assert metrics["threshold"] == {"value": 0.5, "source": "default 0.5 (not calibrated)"}
    m = metrics["sets"]["pb"]
    assert (m["items"], m["scored"], m["truncated"]) == (10, 10, 0)
    check_table(m["at_threshold"])
    check_table(m["at_0_5"])


@pytest.mark.django_db(transaction=True)  # the job is sent on commit
def test_the_evaluate_command_prints_the_table(monkeypatch, capsys):
    import workers.ml.scorers

    monkeypatch.setattr(workers.ml.scorers, "scorer_for", lambda **kwargs: HandScorer())
    evaluation_set_import_processbench(path=SAMPLE, name="pb")
    version = prm()
    call_command("evaluate", "--model", version.name, "--set", "pb")
    out = capsys.readouterr().out
    assert "first-error threshold 0.5 (default 0.5 (not calibrated))" in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith(("gsm8k", "math", "omnimath",
                                                                                  "average"))] == [
        ["gsm8k", "2", "2", "0.5000", "0.5000", "0.5000", "0.5000"],
        ["math", "1", "2", "1.0000", "1.0000", "1.0000", "1.0000"],
        ["omnimath", "2", "1", "0.5000", "0.0000", "0.0000", "0.0000"],
        ["average", "F1", "0.5000", "0.5000"]]
    stored = ModelVersion.objects.get(pk=version.pk).metrics["benchmarks"]["pb"]
    check_table(stored["at_threshold"])
    with pytest.raises(CommandError, match="no evaluation set named 'nope'"):
        call_command("evaluate", "--model", version.name, "--set", "nope")


# --- the project's own labels and PRM800K's, in the same format ---------------------------------------

@pytest.mark.django_db
def test_the_projects_held_out_labels_export_in_processbench_format(tmp_path):
    test_problem = Problem.objects.create(text="What is 2 + 2?", answer="4", split="test")
    train_problem = Problem.objects.create(text="What is 1 + 1?", answer="2", split="train")
    ann = Annotator.objects.create()
    wrong = Solution.objects.create(problem=test_problem, steps=["2 + 2 = 5", "# Answer\n\n5"], final_answer="5",
                                    is_correct=False)
    right = Solution.objects.create(problem=test_problem, steps=["2 + 2 = 4", "# Answer\n\n4"], final_answer="4",
                                    is_correct=True)
    annotation_make(annotator=ann, solution=wrong, ratings=[-1], finish_reason="found_error")
    annotation_make(annotator=ann, solution=right, ratings=[1, 1], finish_reason="solution")
    annotation_make(annotator=ann, solution=right, ratings=[1], finish_reason="give_up")  # first error unknown
    annotation_make(annotator=ann, solution=Solution.objects.create(problem=train_problem, steps=["1 + 1 = 3"]),
                    ratings=[-1], finish_reason="found_error")  # a train problem: not held out
    result = evaluation_set_from_labels(name="heldout")
    assert result.created == 2 and result.left_out == {"first error unknown": 1}
    out = tmp_path / "heldout.json"
    evaluation_set_export(evaluation_set=result.evaluation_set, out=out)
    records = json.loads(out.read_text())
    assert [(r["problem"], r["steps"], r["label"], r["final_answer_correct"]) for r in records] == [
        ("What is 2 + 2?", ["2 + 2 = 5"], 0, False), ("What is 2 + 2?", ["2 + 2 = 4", "# Answer\n\n4"], -1, True)]
    assert evaluation_set_import_processbench(path=out, name="again", subset="stepwise").created == 2


@pytest.mark.django_db
def test_prm800k_test_labels_become_a_set(shared_data, tmp_path):
    source = shared_data / "prm800k_sample.jsonl"
    with pytest.raises(DataError, match="no record of this file is of a test-split problem"):
        evaluation_set_import_prm800k(path=source)
    assert not Problem.objects.exists()  # the PRM800K import rolled back with it
    result = evaluation_set_import_prm800k(path=source, mark_test=True)
    items = list(result.evaluation_set.items.all())
    assert items and all(i.subset == "prm800k" and i.annotation_id for i in items)
    assert result.created + sum(result.left_out.values()) == 10
    assert evaluation_set_import_prm800k(path=source, mark_test=True).created == 0
    out = tmp_path / "prm800k.json"
    evaluation_set_export(evaluation_set=result.evaluation_set, out=out)
    assert [r["label"] for r in json.loads(out.read_text())] == [i.label for i in items]
