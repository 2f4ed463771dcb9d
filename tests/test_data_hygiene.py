"""Data hygiene: the held-out test split stays out of training exports unless asked, the export says which splits
it holds, and a problem changes split on re-import only with an explicit flag."""
import json

import pytest
from django.core.management import CommandError, call_command

from labeling.errors import DataError
from labeling.models import Export, Problem
from labeling.services.data import exports
from labeling.services.data.problem_import import problems_import
from tests.test_training_exports import P1, P2, _offline, labels  # noqa: F401  (fixtures)


def run(fmt, alice, capture, **kwargs):
    with capture(execute=True):
        export = exports.export_create(fmt=fmt, filters={}, user=alice, **kwargs)
    export.refresh_from_db()
    assert export.status == Export.Status.DONE, export.error
    return export


@pytest.mark.parametrize("fmt, kept, all_", [("trl", 5, 6), ("hf", 5, 6)])
def test_training_exports_leave_the_test_split_out_unless_asked(labels, alice, django_capture_on_commit_callbacks,
                                                                fmt, kept, all_):
    Problem.objects.filter(text=P2).update(split="test")
    Problem.objects.filter(text=P1).update(split="train")
    default = run(fmt, alice, django_capture_on_commit_callbacks)
    assert default.record_count == kept and default.filters["exclude_test"] is True
    assert default.provenance["test_split"] == "excluded"
    assert default.provenance["problem_splits"] == {"train": 1}
    asked = run(fmt, alice, django_capture_on_commit_callbacks, include_test=True)
    assert asked.record_count == all_ and "exclude_test" not in asked.filters
    assert asked.provenance["test_split"] == "included"
    assert asked.provenance["problem_splits"] == {"test": 1, "train": 1}


def test_preference_pairs_over_all_problems_skip_test_problems(labels, alice, django_capture_on_commit_callbacks):
    Problem.objects.filter(text=P1).update(split="test")  # P1 holds every pair
    default = run("preference", alice, django_capture_on_commit_callbacks, options={"pairs_per_problem": 2})
    assert default.record_count == 0 and default.provenance["output"]["problems"] == 0
    asked = run("preference", alice, django_capture_on_commit_callbacks, options={"pairs_per_problem": 2},
                include_test=True)
    assert asked.record_count == 2


def test_the_label_archive_keeps_every_split(labels, alice, django_capture_on_commit_callbacks):
    Problem.objects.filter(text=P2).update(split="test")
    archive = run("prm800k", alice, django_capture_on_commit_callbacks)
    assert archive.record_count == 7 and archive.provenance["test_split"] == "included"
    assert archive.provenance["problem_splits"] == {"test": 1, "unassigned": 1}


def test_the_export_command_takes_include_test(labels, tmp_path, capsys):
    Problem.objects.filter(text=P2).update(split="test")
    out = tmp_path / "trl.jsonl"
    call_command("export", "--format", "trl", "--out", str(out))
    assert len(out.read_text().splitlines()) == 5
    assert "test-split problems left out" in capsys.readouterr().err
    call_command("export", "--format", "trl", "--include-test", "--out", str(out))
    assert len(out.read_text().splitlines()) == 6
    call_command("export", "--format", "prm800k", "--out", str(out))
    assert len(out.read_text().splitlines()) == 7


def problem_line(uid, text):
    return json.dumps({"problem": text, "solution": "\\boxed{1}", "answer": "1", "subject": "Algebra",
                       "level": "Level 1", "unique_id": uid})


@pytest.mark.django_db
def test_a_split_change_on_re_import_is_refused_with_its_line(write_lines):
    problems_import(path=write_lines([problem_line("a", "A?"), problem_line("b", "B?")]), split="train")
    again = write_lines([problem_line("c", "C?"), problem_line("b", "B?")])
    with pytest.raises(DataError) as err:
        problems_import(path=again, split="test")
    assert (err.value.line, err.value.field) == (2, "split") and "--change-split" in str(err.value)
    assert "'train'" in str(err.value) and str(again) in str(err.value)
    # All or nothing: the new problem on line 1 was not created either.
    assert not Problem.objects.filter(source_id="c").exists()
    assert dict(Problem.objects.values_list("source_id", "split")) == {"a": "train", "b": "train"}
    # The same split, or no split at all, is no change.
    assert problems_import(path=again, split="train").created == 1
    assert problems_import(path=again).split_changed == 0


@pytest.mark.django_db
def test_change_split_moves_problems_on_purpose(write_lines, capsys):
    problems_import(path=write_lines([problem_line("a", "A?"), problem_line("b", "B?")]), split="train")
    path = write_lines([problem_line("b", "B?")])
    with pytest.raises(CommandError, match="split"):
        call_command("import_problems", str(path), "--split", "test")
    call_command("import_problems", str(path), "--split", "test", "--change-split")
    assert "1 moved to split test" in capsys.readouterr().out
    assert dict(Problem.objects.values_list("source_id", "split")) == {"a": "train", "b": "test"}
