"""The first-error threshold is chosen on a dev set, stored with the version, and used (and reported, beside
the F1 at 0.5) on test sets. A dev set and a test set that disagree on the best threshold prove where it
comes from."""
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.errors import EvaluationError
from labeling.models import Annotator, ModelVersion, Problem, Solution
from labeling.services.data.evaluation_sets import evaluation_set_from_labels, evaluation_set_import_processbench
from labeling.services.rounds.registry import model_version_register
from labeling.services.training.benchmarks import benchmark_start, evaluate_on_sets, threshold_calibrate
from tests.label_factories import annotation_make

# (id, label, P(not an error) per step). A step's text is its id and index, so the scorer can look it up.
# Dev: the best threshold is 0.35 (d0 needs t > .3, d1 needs t <= .35): F1 1 there, 0 at 0.5.
DEV = [("d0", 0, [.3]), ("d1", -1, [.35, .9])]
# Test: at 0.35, erroneous t0 wrong, t2 right, t3 wrong (1/3), correct t1 right (1): F1 = .5.
#       at 0.5: every erroneous one wrong: F1 0.  At 0.7 (the best on test): 2/3 and 1: F1 = .8.
TEST = [("t0", 0, [.6]), ("t1", -1, [.7, .8]), ("t2", 1, [.45, .2]), ("t3", 0, [.65, .9])]
VALUES = {f"{rid} step {k}": v for rid, _, values in DEV + TEST for k, v in enumerate(values)}


class HandScorer:
    def score(self, items, batch_size=16, max_length=1024):
        return [[VALUES[s] for s in steps] for _problem, steps in items]

    def solution_score(self, values):
        return min(values)


def write_set(tmp_path, name, records):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps([{"id": rid, "generator": "hand", "problem": f"problem {rid}",
                                 "steps": [f"{rid} step {k}" for k in range(len(values))],
                                 "final_answer_correct": label == -1, "label": label}
                                for rid, label, values in records]))
    return path


@pytest.fixture
def sets(db, tmp_path):
    dev = evaluation_set_import_processbench(path=write_set(tmp_path, "dev", DEV), name="dev", subset="math",
                                             role="dev").evaluation_set
    test = evaluation_set_import_processbench(path=write_set(tmp_path, "test", TEST), name="test",
                                              subset="math").evaluation_set
    test_as_dev = evaluation_set_import_processbench(path=write_set(tmp_path, "test", TEST), name="test-as-dev",
                                                     subset="math", role="dev").evaluation_set
    return dev, test, test_as_dev


def prm(name="prm-cal"):
    return model_version_register(name=name, kind=ModelVersion.Kind.PRM, path="/nonexistent",
                                  config={"architecture": "implicit", "reference": "/nonexistent"})


def test_the_threshold_comes_from_the_dev_set(sets):
    dev, test, _ = sets
    version = threshold_calibrate(version=prm(), scorer=HandScorer(), dev_set=dev)
    assert version.config["first_error_threshold"] == 0.35
    calibration = version.metrics["calibration"]
    assert (calibration["dev_set"], calibration["dev_f1"], calibration["dev_f1_at_0_5"]) == ("dev", 1.0, 0.0)
    m = evaluate_on_sets(version=version, scorer=HandScorer(), sets=[test])
    assert m["threshold"] == {"value": 0.35, "source": "dev set dev"}
    table = m["sets"]["test"]
    assert table["threshold"] == 0.35 and table["note"] == ""
    # Not the test set's own best (0.7, F1 .8): the dev set's threshold, and 0.5 reported beside it.
    assert table["at_threshold"]["subsets"]["math"]["f1"] == pytest.approx(.5)
    assert table["at_threshold"]["subsets"]["math"]["error_acc"] == pytest.approx(1 / 3)
    assert table["at_0_5"]["subsets"]["math"]["f1"] == 0.0


def test_another_dev_set_gives_another_threshold(sets):
    _, test, test_as_dev = sets
    # The same records as the test set, but as a dev set: its best threshold (0.7) is chosen instead.
    version = threshold_calibrate(version=prm(), scorer=HandScorer(), dev_set=test_as_dev)
    assert version.config["first_error_threshold"] == 0.7
    m = evaluate_on_sets(version=version, scorer=HandScorer(), sets=[test, test_as_dev])
    assert m["sets"]["test"]["at_threshold"]["subsets"]["math"]["f1"] == pytest.approx(.8)
    assert "not a held-out figure" in m["sets"]["test-as-dev"]["note"]


def test_a_test_set_is_never_calibrated_on(sets):
    _, test, _ = sets
    version = prm()
    with pytest.raises(EvaluationError, match="test set: a threshold is chosen on a dev set only"):
        threshold_calibrate(version=version, scorer=HandScorer(), dev_set=test)
    with pytest.raises(EvaluationError, match="test set: a threshold is chosen on a dev set only"):
        benchmark_start(version=version, calibrate_on="test")
    assert "first_error_threshold" not in ModelVersion.objects.get(pk=version.pk).config


@pytest.mark.django_db(transaction=True)  # the job is sent on commit
def test_the_command_calibrates_then_reports_both_thresholds(tmp_path, monkeypatch, capsys):
    import workers.ml.scorers

    monkeypatch.setattr(workers.ml.scorers, "scorer_for", lambda **kwargs: HandScorer())
    evaluation_set_import_processbench(path=write_set(tmp_path, "dev", DEV), name="dev", subset="math", role="dev")
    evaluation_set_import_processbench(path=write_set(tmp_path, "test", TEST), name="test", subset="math")
    version = prm()
    with pytest.raises(CommandError, match="test set"):
        call_command("evaluate", "--model", version.name, "--calibrate-on", "test")
    call_command("evaluate", "--model", version.name, "--calibrate-on", "dev", "--set", "test")
    out = capsys.readouterr().out
    assert "threshold 0.35 chosen on dev set dev (2 items): dev F1 1.0000, 0.0000 at 0.5" in out
    assert "first-error threshold 0.35 (dev set dev)" in out
    assert ["math", "3", "1", "0.3333", "1.0000", "0.5000", "0.0000"] in [line.split() for line in out.splitlines()]
    version.refresh_from_db()
    assert version.config["first_error_threshold"] == 0.35
    assert version.metrics["benchmarks"]["test"]["threshold_source"] == "dev set dev"


def test_a_dev_set_of_train_problems_never_holds_a_test_problem(db):
    ann = Annotator.objects.create()
    for k in range(6):
        split = "test" if k == 0 else "train"
        problem = Problem.objects.create(text=f"problem {k}", answer="1", split=split)
        annotation_make(annotator=ann, solution=Solution.objects.create(problem=problem, steps=[f"s{k}"]),
                        ratings=[-1 if k % 2 else 1], finish_reason="found_error" if k % 2 else "solution")
    result = evaluation_set_from_labels(name="dev", split="train", fraction=0.4, seed=1)
    assert result.evaluation_set.role == "dev" and result.created == 2
    assert "problem 0" not in set(result.evaluation_set.items.values_list("problem", flat=True))


def test_the_held_out_evaluation_reports_the_dev_threshold_beside_0_5(sets):
    from labeling.services.training.evaluation import evaluate_version

    dev, _, _ = sets
    test_problem = Problem.objects.create(text="held out", answer="1", split="test")
    ann = Annotator.objects.create()
    for rid, label, values in TEST:  # the test records as labeled held-out trajectories
        steps = [f"{rid} step {k}" for k in range(len(values))]
        ratings = [1] * len(values) if label == -1 else [1] * label + [-1]
        annotation_make(annotator=ann, solution=Solution.objects.create(problem=test_problem, steps=steps),
                        ratings=ratings, finish_reason="solution" if label == -1 else "found_error")
    version = prm()
    assert evaluate_version(version=version, scorer=HandScorer())["processbench"]["calibrated"] is None
    version = threshold_calibrate(version=version, scorer=HandScorer(), dev_set=dev)
    pb = evaluate_version(version=version, scorer=HandScorer())["processbench"]
    assert (pb["calibrated"]["threshold"], pb["calibrated"]["source"]) == (0.35, "dev set dev")
    assert pb["calibrated"]["f1"] == pytest.approx(.5) and pb["fixed"]["f1"] == 0.0
    assert pb["best"]["threshold"] == 0.7  # the oracle fitted on the held-out set: reported, never used


def test_the_rounds_page_shows_the_f1_at_the_dev_threshold(client, alice):
    evaluation = {"processbench_f1": 0.0, "step_auroc": 0.5, "evaluated_at": "2026-01-01T00:00:00+00:00",
                  "processbench": {"fixed": {"f1": 0.0, "threshold": 0.5}, "best": {"f1": 0.8, "threshold": 0.7},
                                   "calibrated": {"f1": 0.5, "threshold": 0.35, "source": "dev set dev"}},
                  "best_of_n": {}, "best_of_n_max": None, "held_out": {"split": "test", "digest": "d"}}
    model_version_register(name="prm-page", kind=ModelVersion.Kind.PRM, path="/nonexistent",
                           metrics={"evaluation": evaluation}, config={"architecture": "step_head"})
    client.force_login(alice)
    page = client.get("/rounds/").content.decode()
    assert "F1 0.500 at threshold 0.350 (dev set dev)" in page
