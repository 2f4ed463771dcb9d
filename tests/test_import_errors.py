"""Every bad input fails with file, line and field named, and leaves the database exactly as it was."""
import json

import pytest
from django.core.management import CommandError, call_command

from labeling.services.data import prm800k_import as importer
from tests.dbstate import snapshot


@pytest.fixture
def loaded(db, shared_data, monkeypatch):
    """Some data already in the database, and tiny chunks so a failure comes after earlier writes."""
    call_command("import_problems", str(shared_data / "math500.jsonl"))
    monkeypatch.setattr(importer, "CHUNK", 2)
    return shared_data


@pytest.fixture
def good_lines(shared_data):
    return (shared_data / "prm800k_sample.jsonl").read_text().splitlines()


def fails(path, *expected, command="import_prm800k"):
    """Run the import command; return its error after checking the database did not change."""
    before = snapshot()
    with pytest.raises(CommandError) as info:
        call_command(command, str(path))
    assert snapshot() == before
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def mutate(line, fn):
    record = json.loads(line)
    fn(record)
    return json.dumps(record)


def test_it_names_the_line_with_invalid_json(loaded, good_lines, write_lines):
    path = write_lines(good_lines[:6] + ['{"labeler": "x", ', *good_lines[6:]])
    fails(path, str(path), "line 7", "invalid JSON")


def test_it_names_a_missing_field(loaded, good_lines, write_lines):
    bad = mutate(good_lines[1], lambda r: r["label"].pop("finish_reason"))
    path = write_lines(good_lines[:5] + [bad])
    fails(path, str(path), "line 6", "field 'label.finish_reason'", "missing")


def test_it_names_a_field_of_the_wrong_type(loaded, good_lines, write_lines):
    bad = mutate(good_lines[1], lambda r: r["label"].__setitem__("total_time", "164458"))
    path = write_lines(good_lines[:4] + [bad])
    fails(path, "line 5", "field 'label.total_time'", "must be an integer, got a string")


def test_it_rejects_a_rating_of_two(loaded, good_lines, write_lines):
    bad = mutate(good_lines[1], lambda r: r["label"]["steps"][2]["completions"][0].__setitem__("rating", 2))
    path = write_lines(good_lines[:3] + [bad])
    fails(path, "line 4", "field 'label.steps[2].completions[0].rating'", "got 2")


def test_it_rejects_an_unknown_finish_reason(loaded, good_lines, write_lines):
    bad = mutate(good_lines[1], lambda r: r["label"].__setitem__("finish_reason", "bored"))
    path = write_lines(good_lines[:5] + [bad])
    fails(path, "line 6", "field 'label.finish_reason'", "'bored'")


def test_it_rejects_an_empty_file(loaded, write_lines):
    path = write_lines([])
    fails(path, str(path), "empty")


def test_it_rejects_a_non_utf8_file(loaded, good_lines, write_lines):
    latin1 = json.dumps({"problem": "caf\u00e9"}, ensure_ascii=False).encode("latin-1")
    path = write_lines([l.encode() for l in good_lines[:3]] + [latin1])
    fails(path, "line 4", "not valid UTF-8")


def test_it_rejects_a_50_mb_line_without_reading_it_whole(loaded, good_lines, tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as fh:
        fh.write(("\n".join(good_lines[:4]) + "\n").encode())
        fh.write(b'{"labeler": "' + b"x" * (50 * 1024 * 1024) + b'"}\n')
        fh.write((good_lines[4] + "\n").encode())
    fails(path, "line 5", "MB", "limit")


def test_it_rejects_a_chosen_completion_out_of_range(loaded, good_lines, write_lines):
    bad = mutate(good_lines[0], lambda r: r["label"]["steps"][0].__setitem__("chosen_completion", 7))
    path = write_lines(good_lines[:3] + [bad])
    fails(path, "line 4", "field 'label.steps[0].chosen_completion'")


def test_it_rejects_an_unknown_field(loaded, good_lines, write_lines):
    bad = mutate(good_lines[0], lambda r: r.__setitem__("labeller", "typo"))
    path = write_lines(good_lines[:3] + [bad])
    fails(path, "line 4", "field 'labeller'", "unknown field")


def test_it_reports_a_missing_file(db):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_prm800k", "/nonexistent/labels.jsonl")


def test_problem_import_errors_name_line_and_field(loaded, write_lines):
    good = json.dumps({"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "answer": "2",
                       "subject": "Algebra", "level": 1, "unique_id": "t/1.json"})
    bad = json.dumps({"problem": "What is $2+2$?", "solution": "4", "answer": 4, "subject": "Algebra",
                      "level": 1, "unique_id": "t/2.json"})
    fails(write_lines([good, bad]), "line 2", "field 'answer'", command="import_problems")


def test_solution_import_errors_name_line_and_field(loaded, write_lines):
    good = json.dumps({"unique_id": "test/precalculus/807.json", "steps": ["So it is 3.\n\n# Answer\n\n3"]})
    unknown = json.dumps({"unique_id": "no/such.json", "steps": ["x"]})
    before = snapshot()
    fails(write_lines([good, unknown]), "line 2", "field 'unique_id'", command="import_solutions")
    path = write_lines([good, json.dumps({"unique_id": "test/precalculus/807.json", "steps": "one step"})])
    with pytest.raises(CommandError, match="line 2, field 'steps': must be a list, got a string"):
        call_command("import_solutions", str(path))
    assert snapshot() == before


@pytest.mark.parametrize("command", ["import_problems", "import_solutions", "import_prm800k"])
@pytest.mark.parametrize("depth", [100, 100_000])  # past MAX_DEPTH; past the parser's recursion limit
def test_a_deeply_nested_line_is_a_located_error_not_a_traceback(loaded, good_lines, write_lines, command, depth):
    nested = '{"problem": ' + "[" * depth + "]" * depth + "}"
    first = {"import_prm800k": good_lines[0],
             "import_solutions": json.dumps({"unique_id": "test/precalculus/807.json", "steps": ["It is 3."]}),
             "import_problems": json.dumps({"problem": "What is $1+1$?", "solution": "$\\boxed{2}$", "answer": "2",
                                            "subject": "Algebra", "level": 1, "unique_id": "t/1.json"})}[command]
    path = write_lines([first, nested])
    fails(path, str(path), "line 2", "nested too deeply", command=command)
