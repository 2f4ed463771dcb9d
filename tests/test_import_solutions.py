import json

import pytest

from labeling.models import Solution
from labeling.services.data.problem_import import problems_import
from labeling.services.data.solution_import import solutions_import


@pytest.mark.django_db
def test_it_grades_each_solution_and_adds_nothing_twice(write_lines):
    problems = write_lines([json.dumps({"problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.", "solution": "$\\boxed{\\frac34}$",
                                        "answer": "\\frac{3}{4}", "subject": "Prealgebra", "level": 1,
                                        "unique_id": "t/1.json"})], name="p.jsonl")
    problems_import(path=problems)
    lines = [
        json.dumps({"unique_id": "t/1.json", "steps": ["Add them.", "I get $0.75$.\n\n# Answer\n\n0.75"],
                    "generator": "g1"}),
        json.dumps({"problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.", "steps": ["So $\\boxed{\\frac{2}{6}}$."]}),
        json.dumps({"unique_id": "t/1.json", "steps": ["Just guess."], "answer": "3/4",
                    "sampling": {"temperature": 0.7}}),
        json.dumps({"unique_id": "t/1.json", "steps": ["No answer here."]}),
    ]
    path = write_lines(lines, name="s.jsonl")
    result = solutions_import(path=path)
    assert (result.created, result.correct, result.ungraded) == (4, 2, 1)
    got = {s.steps[-1]: (s.final_answer, s.is_correct) for s in Solution.objects.all()}
    assert got["I get $0.75$.\n\n# Answer\n\n0.75"] == ("0.75", True)
    assert got["So $\\boxed{\\frac{2}{6}}$."] == ("\\frac{2}{6}", False)
    assert got["Just guess."] == ("3/4", True)
    assert got["No answer here."] == (None, None)
    assert Solution.objects.get(final_answer="3/4").sampling == {"temperature": 0.7}
    again = solutions_import(path=path)
    assert again.created == 0 and again.skipped == 4 and Solution.objects.count() == 4
