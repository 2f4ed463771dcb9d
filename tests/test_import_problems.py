import json

import pytest
from django.core.management import call_command

from labeling.models import Problem
from labeling.services.data.prm800k_import import prm800k_import
from labeling.services.data.problem_import import problems_import


@pytest.mark.django_db
def test_it_loads_math500_once(shared_data):
    first = problems_import(path=shared_data / "math500.jsonl", split="test")
    assert first.created == 500 and Problem.objects.count() == 500
    again = problems_import(path=shared_data / "math500.jsonl", split="test")
    assert again.created == 0 and again.unchanged == 500 and Problem.objects.count() == 500
    p = Problem.objects.get(source_id="test/precalculus/807.json")
    assert p.split == "test" and p.level and p.subject == "Precalculus" and p.answer


@pytest.mark.django_db
def test_it_completes_a_problem_known_from_prm800k_without_changing_its_answer(shared_data, write_lines, tmp_path):
    prm800k_import(path=shared_data / "prm800k_sample.jsonl")
    record = json.loads((shared_data / "prm800k_sample.jsonl").read_text().splitlines()[0])
    text, truth = record["question"]["problem"], record["question"]["ground_truth_answer"]
    path = write_lines([json.dumps({"problem": text, "solution": "s", "answer": "twenty-nine", "subject": "Algebra",
                                    "level": "Level 2", "unique_id": "train/algebra/1.json"})])
    before = Problem.objects.count()
    call_command("import_problems", str(path), "--split", "train")
    p = Problem.objects.get(text=text)
    assert Problem.objects.count() == before
    assert (p.source_id, p.level, p.subject, p.split, p.answer) == ("train/algebra/1.json", 2, "Algebra", "train", truth)
