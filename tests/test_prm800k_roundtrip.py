import copy
import json

import pytest
from django.core.management import call_command

from labeling.models import Annotation, Completion, Problem, Solution, StepLabel
from labeling.services.data.prm800k_export import ExportFilters, prm800k_lines
from labeling.services.data.prm800k_import import prm800k_import


def export_text(**filters):
    return "".join(line + "\n" for line, _ in prm800k_lines(ExportFilters(**filters)))


@pytest.mark.django_db
def test_it_gives_back_the_sample_byte_for_byte(shared_data, tmp_path):
    source = shared_data / "prm800k_sample.jsonl"
    call_command("import_prm800k", str(source))
    out = tmp_path / "out.jsonl"
    call_command("export", "--format", "prm800k", "--out", str(out))
    assert out.read_bytes() == source.read_bytes()
    # Nothing was kept verbatim: the normalized rows alone give the lines back.
    assert not Annotation.objects.exclude(verbatim=None).exists()


@pytest.mark.django_db
def test_it_adds_nothing_when_the_same_file_is_imported_twice(shared_data):
    source = shared_data / "prm800k_sample.jsonl"
    first = prm800k_import(path=source)
    counts = [m.objects.count() for m in (Annotation, StepLabel, Completion, Problem, Solution)]
    second = prm800k_import(path=source)
    assert first.created == 10 and second.created == 0 and second.skipped == 10
    assert [m.objects.count() for m in (Annotation, StepLabel, Completion, Problem, Solution)] == counts


def variants(sample_lines):
    """Records of the kinds real PRM800K files hold beyond the sample, made from the sample's shapes."""
    phase1 = json.loads(next(l for l in sample_lines if '"generation": null' in l))
    phase2 = json.loads(next(l for l in sample_lines if '"generation": 6' in l))
    out = []
    r = copy.deepcopy(phase1)
    r["timestamp"] = "2022-08-01T10:00:00"  # zero microseconds: isoformat drops them
    r["is_quality_control_question"] = True
    r["label"]["steps"][0]["completions"][0]["flagged"] = True
    out.append(r)
    r = copy.deepcopy(phase2)
    r["generation"] = 9
    r["question"]["ground_truth_answer"] = "\\frac{\\sqrt{3}}{2} \u2013 caf\u00e9 \u00b0"  # non-ASCII escaped
    r["question"]["pre_generated_answer"] = None
    r["question"]["pre_generated_verifier_score"] = 1e-07
    r["label"]["finish_reason"] = "bad_problem"
    r["label"]["total_time"] = None
    out.append(r)
    r = copy.deepcopy(phase2)
    r["generation"] = 1
    r["timestamp"] = "2022-09-03T01:02:03.000001"
    r["question"]["pre_generated_steps"][0] = "A step with a \"quote\", a tab\t, an emoji \U0001F600 and </script>"
    r["label"]["steps"][0]["completions"][0]["text"] = r["question"]["pre_generated_steps"][0]
    r["label"]["steps"] = r["label"]["steps"][:1]
    r["label"]["finish_reason"] = "give_up"
    out.append(r)
    r = copy.deepcopy(phase2)  # same problem, a different ground-truth answer than the problem row holds
    r["question"]["ground_truth_answer"] = "28,800"
    r["question"]["ground_truth_solution"] = None
    r["timestamp"] = "2022-11-22T16:51:29+00:00"
    out.append(r)
    return [json.dumps(x) for x in out]


@pytest.mark.django_db
def test_it_gives_back_records_of_other_shapes_byte_for_byte(shared_data, write_lines):
    sample = (shared_data / "prm800k_sample.jsonl").read_text().splitlines()
    lines = sample + variants(sample)
    path = write_lines(lines)
    prm800k_import(path=path)
    assert export_text() == "".join(l + "\n" for l in lines)


@pytest.mark.django_db
def test_it_filters_exports(shared_data):
    prm800k_import(path=shared_data / "prm800k_sample.jsonl")
    sample = (shared_data / "prm800k_sample.jsonl").read_text().splitlines(keepends=True)
    gen6 = [l for l in sample if json.loads(l)["generation"] == 6]
    assert export_text(generation=6) == "".join(gen6)
    labeler = json.loads(sample[0])["labeler"]
    assert export_text(labeler=labeler) == "".join(l for l in sample if json.loads(l)["labeler"] == labeler)
    import datetime as dt
    since = dt.datetime(2022, 11, 1, tzinfo=dt.timezone.utc)
    assert export_text(since=since) == "".join(
        l for l in sample if json.loads(l)["timestamp"] >= "2022-11-01")
    assert export_text(exclude_qc=True) == "".join(
        l for l in sample if not json.loads(l)["is_quality_control_question"])


@pytest.mark.django_db
def test_it_grades_imported_solutions(shared_data):
    call_command("import_prm800k", str(shared_data / "prm800k_sample.jsonl"))
    graded = dict(Solution.objects.values_list("final_answer", "is_correct"))
    assert graded["7200"] is False  # ground truth 28800
    assert graded["8, 3, 1"] is None  # the screening question has no ground truth

