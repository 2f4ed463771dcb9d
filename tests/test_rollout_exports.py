"""Exports of rollout labels: Math-Shepherd lines read back as OpenRLHF's process-reward dataset reads them,
`hf` archives with soft labels and a label_source column, TRL rows from rollouts, and consensus filtering."""
import json
import os
import re
import zipfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from django.core.management import call_command  # noqa: E402

from labeling.models import Annotator, Export, Problem, Solution  # noqa: E402
from labeling.services.data import exports  # noqa: E402
from labeling.services.data.prm800k_export import ExportFilters  # noqa: E402
from tests.label_factories import annotation_make  # noqa: E402
from tests.rollout_factories import estimates_make  # noqa: E402

datasets = pytest.importorskip("datasets")

PLACEHOLDER, REWARD_TOKENS = "ки", ("+", "-")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path, settings):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    settings.EXPORT_DIR = tmp_path / "exports"


# --- a reader written from OpenRLHF's documented format ----------------------------------------------

def tokenize(text):
    """A stand-in tokenizer: words, with the placeholder always a token of its own (as a tokenizer that
    has it as one token, which OpenRLHF's convert_token_to_id requires)."""
    return [t for t in re.split(rf"(\s+|{PLACEHOLDER})", text) if t and not t.isspace()]


def openrlhf_read(row, *, input_key="input", label_key="value", max_length=None):
    """What openrlhf.datasets.ProcessRewardDataset.__getitem__ does with one row: tokenize `input` (truncated
    to max_length), take the `label_key` list (reward-token strings or floats), cut it to the number of
    placeholders left, and put label i at placeholder i. Returns the per-token labels (None elsewhere: -100)."""
    tokens = tokenize(row[input_key])[:max_length]
    values = row[label_key]
    assert isinstance(values, list), "labels should be a list of strings or numbers"
    if isinstance(values[0], str):
        assert all(v in REWARD_TOKENS for v in values), values
    else:
        assert all(isinstance(v, float) for v in values), values
    positions = [i for i, t in enumerate(tokens) if t == PLACEHOLDER]
    labels = [None] * len(tokens)
    for position, value in zip(positions, values[:len(positions)]):
        labels[position] = value
    return tokens, labels


def step_labels_read(row, **kwargs):
    """(the step text the tokens before each placeholder spell, its label), in order."""
    tokens, labels = openrlhf_read(row, **kwargs)
    out, start = [], 0
    for i, (token, label) in enumerate(zip(tokens, labels)):
        if token == PLACEHOLDER:
            out.append((" ".join(tokens[start:i]), label))
            start = i + 1
    return out


def spelled(problem, steps):
    """The token text of each step as the reader sees it (the problem leads the first step)."""
    out = [" ".join(tokenize(f"Step {i}: {s}")) for i, s in enumerate(steps, 1)]
    out[0] = " ".join(tokenize(problem)) + " " + out[0]
    return out


# --- the labels ----------------------------------------------------------------------------------

P = "What is $1+1$?"
SA = ["One plus one.", "It is 3.", "# Answer\n\n3"]
SB = ["Add.", "# Answer\n\n2"]
SC = ["Start.", "Go on.", "# Answer\n\n2"]
SD = ["Two.", "# Answer\n\n2"]
SE = ["Hmm.", "Wrong turn.", "# Answer\n\n5"]


@pytest.fixture
def world(db):
    problem = Problem.objects.create(text=P, answer="2", split="train")
    s = {name: Solution.objects.create(problem=problem, steps=steps, final_answer=steps[-1].rsplit("\n", 1)[-1])
         for name, steps in (("A", SA), ("B", SB), ("C", SC), ("D", SD), ("E", SE))}
    who = Annotator.objects.create()
    annotation_make(annotator=who, solution=s["A"], ratings=[1, -1])       # first error: step index 1
    annotation_make(annotator=who, solution=s["B"], ratings=[1, 1])        # no error
    annotation_make(annotator=who, solution=s["C"], ratings=[1, 0, 1])     # no error
    annotation_make(annotator=who, solution=s["D"], ratings=[1, 1])        # no rollouts
    # Full Monte Carlo: A fails from step 2 on (agrees with the human), B from step 2 (disagrees).
    estimates_make(s["A"], {0: (6, 8), 1: (5, 8), 2: (0, 8), 3: (0, 8)})
    estimates_make(s["B"], {0: (4, 8), 1: (3, 8), 2: (0, 8)})
    # Binary search on C: the bare problem and the whole solution both reach the answer: no error.
    estimates_make(s["C"], {0: (8, 8), 3: (7, 8)}, method="binary")
    # E: rollouts only, a later step recovers (kept as Math-Shepherd keeps it: labels per step).
    estimates_make(s["E"], {0: (2, 4), 1: (1, 4), 2: (0, 4), 3: (1, 4)})
    return s


def write(fmt, tmp_path, filters=None, **options):
    path = tmp_path / f"out-{fmt}.{exports.EXTENSIONS[fmt]}"
    result = exports.export_to_path(fmt, path, filters or ExportFilters(), options=exports.export_options(fmt, options))
    return path, result


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_the_math_shepherd_export_reads_back_with_labels_at_the_placeholders(world, tmp_path):
    path, result = write("math_shepherd", tmp_path, source="rollout")
    rows = lines(path)
    assert [r["solution_id"] for r in rows] == [world[x].id for x in "ABCE"]
    expected = {"A": ["+", "-", "-"], "B": ["+", "-"], "C": ["+", "+", "+"], "E": ["+", "-", "+"]}
    for row, name in zip(rows, "ABCE"):
        steps = world[name].steps
        assert row["label_source"] == "rollout" and row["annotation_id"] is None
        assert row["input"].count(PLACEHOLDER) == len(row["value"]) == len(steps)
        read = step_labels_read(row)
        assert [text for text, _ in read] == spelled(P, steps)  # each label sits right after its own step
        assert [label for _, label in read] == row["value"] == expected[name]
        # Math-Shepherd's own `label` column: the input with each placeholder replaced by its label.
        pieces = row["input"].split(PLACEHOLDER)
        assert row["label"] == "".join(p + v for p, v in zip(pieces, row["value"])) + pieces[-1]
        assert row["input"].startswith(P + " Step 1: ")
    assert result.records == 4 and result.steps == 11
    assert result.stats["method_mc"] == 3 and result.stats["method_binary"] == 1


def test_soft_labels_are_floats_at_the_placeholders_and_truncation_drops_the_last(world, tmp_path):
    path, result = write("math_shepherd", tmp_path, source="rollout", labels="soft")
    rows = {r["solution_id"]: r for r in lines(path)}
    assert set(rows) == {world[x].id for x in "ABE"}  # C: binary search did not estimate every step
    assert result.stats["skipped_no_soft_labels"] == 1
    a = rows[world["A"].id]
    assert a["value"] == [5 / 8, 0.0, 0.0]
    assert [label for _, label in step_labels_read(a)] == [0.625, 0.0, 0.0]
    # OpenRLHF truncates the tokens; the labels of placeholders cut off go with them.
    cut = len(tokenize(a["input"])) - 1
    tokens, labels = openrlhf_read(a, max_length=cut)
    assert [v for v in labels if v is not None] == [0.625, 0.0]


def test_human_math_shepherd_labels_follow_the_ratings(world, tmp_path):
    path, _ = write("math_shepherd", tmp_path, neutral="negative")
    rows = lines(path)
    assert [(r["solution_id"], r["value"], r["label_source"]) for r in rows] == [
        (world["A"].id, ["+", "-"], "human"), (world["B"].id, ["+", "+"], "human"),
        (world["C"].id, ["+", "-", "+"], "human"), (world["D"].id, ["+", "+"], "human")]
    for row in rows:
        assert len(step_labels_read(row)) == len(row["value"])


def test_a_step_holding_the_placeholder_is_left_out_not_misaligned(world, tmp_path):
    Solution.objects.filter(pk=world["E"].pk).update(steps=["Hmm ки.", "Wrong turn.", "# Answer\n\n5"])
    path, result = write("math_shepherd", tmp_path, source="rollout")
    assert world["E"].id not in [r["solution_id"] for r in lines(path)]
    assert result.stats["skipped_placeholder_in_text"] == 1


def test_consensus_keeps_the_annotations_whose_first_error_the_rollouts_confirm(world, tmp_path, alice,
                                                                                 django_capture_on_commit_callbacks):
    path, result = write("trl", tmp_path, source="consensus")
    rows = lines(path)
    # A: both say step 2; C: both say no error. B disagrees; D has no rollouts.
    assert [r["completions"] for r in rows] == [SA[:2], SC]
    assert [r["labels"] for r in rows] == [[True, False], [True, True, True]]
    s = result.stats
    assert (s["consensus_candidates"], s["consensus_kept"], s["consensus_disagreed"],
            s["consensus_without_rollouts"]) == (4, 2, 1, 1)
    assert s["consensus_kept_share"] == 0.5 and result.steps == 5 and s["rows"] == 2

    with django_capture_on_commit_callbacks(execute=True):
        export = exports.export_create(fmt="math_shepherd", filters={}, options={"source": "consensus"}, user=alice)
    export.refresh_from_db()
    assert export.status == Export.Status.DONE, export.error
    p = export.provenance
    assert p["label_source"] == "consensus" and p["output"]["consensus_kept"] == 2
    assert p["rollouts"]["solutions"] == 4 and p["rollouts"]["methods"] == ["binary", "mc"]
    from labeling.admin.exports import ExportAdmin
    from django.contrib import admin
    assert ExportAdmin(Export, admin.site).label_source(export) == "consensus: kept 2 of 4 (50%)"


def test_trl_rows_from_rollout_labels(world, tmp_path):
    path, result = write("trl", tmp_path, source="rollout")
    rows = lines(path)
    assert [list(r) for r in rows] == [["prompt", "completions", "labels", "label_source"]] * 4
    assert {r["label_source"] for r in rows} == {"rollout"}
    assert [r["labels"] for r in rows] == [[True, False, False], [True, False], [True, True, True],
                                           [True, False, True]]
    assert result.stats["rows"] == 4


def test_hf_exports_carry_label_source_and_soft_labels_and_load_with_datasets(world, tmp_path):
    for source, expected_rows in (("rollout", 4), ("human", 4), ("consensus", 2)):
        path, result = write("hf", tmp_path, source=source)
        target = tmp_path / f"unzipped-{source}"
        with zipfile.ZipFile(path) as archive:
            archive.extractall(target)
        on_disk = datasets.load_from_disk(str(target / "dataset"))
        parquet = datasets.Dataset.from_parquet(str(target / "data.parquet"), cache_dir=str(tmp_path / "hf-cache"))
        for rows in (on_disk, parquet):
            assert rows.features["label_source"] == datasets.Value("string")
            assert rows.features["soft_labels"].feature == datasets.Value("float64")
            assert rows["label_source"] == [source] * expected_rows
        if source == "rollout":
            by_solution = dict(zip(on_disk["solution_id"], on_disk["soft_labels"]))
            assert by_solution[world["A"].id] == [0.625, 0.0, 0.0]
            assert by_solution[world["C"].id] is None  # binary search: no soft label for every step
            assert on_disk["annotation_id"] == [None] * 4
        if source == "human":
            assert on_disk["soft_labels"][0] == [1.0, 0.0]


def test_the_command_takes_source_and_labels(world, tmp_path):
    out = tmp_path / "ms.jsonl"
    call_command("export", "--format", "math_shepherd", "--source", "rollout", "--labels", "soft",
                 "--out", str(out))
    assert all(isinstance(v, float) for row in lines(out) for v in row["value"])
    with pytest.raises(Exception, match="labels"):
        call_command("export", "--format", "trl", "--labels", "soft", "--out", str(tmp_path / "x"))
