"""Training exports (trl, preference, hf) beside PRM800K's: rows checked by hand, loaded back with `datasets`."""
import hashlib
import io
import json
import os
import zipfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # read by datasets at import: never the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402

from labeling.models import Export, ModelVersion, Problem, Round, Solution  # noqa: E402
from labeling.services.data import exports  # noqa: E402
from labeling.services.data.prm800k_export import ExportFilters  # noqa: E402
from labeling.services.data.prm800k_import import prm800k_import  # noqa: E402

datasets = pytest.importorskip("datasets")

P1, P2 = "What is $1+1$?", "What is $2 \\cdot 3$?"
S1 = ["One plus one.", "The answer is 2.\n\n# Answer\n\n2"]
S2 = ["One plus one is 3.", "# Answer\n\n3"]
S3 = ["Add them.", "Get 2.", "# Answer\n\n2"]
S6 = ["Two.", "# Answer\n\n22"]
S4 = ["1+1=2.", "# Answer\n\n2"]
S5 = ["1+1=11.", "# Answer\n\n11"]
LABELER = "0c4a3d5e-1111-4c1b-9a51-3b5e1c2d7f01"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def completion(text, rating):
    return {"text": text, "rating": rating, "flagged": False}


def step(completions, chosen=None, human=None):
    return {"completions": completions, "chosen_completion": chosen, "human_completion": human and {
        "text": human, "rating": None, "source": "human", "flagged": False}}


def line(day, generation, problem, answer, steps, finish, solution=None):
    question = {"problem": problem, "ground_truth_answer": answer}
    if solution is not None:
        question = {"problem": problem, "ground_truth_solution": None, "ground_truth_answer": answer,
                    "pre_generated_steps": solution, "pre_generated_answer": solution[-1].rsplit("\n", 1)[-1],
                    "pre_generated_verifier_score": 0.5}
    return json.dumps({"labeler": LABELER, "timestamp": f"2023-01-0{day}T00:00:00.000001", "generation": generation,
                       "is_quality_control_question": False, "is_initial_screening_question": False,
                       "question": question, "label": {"steps": steps, "total_time": 1000, "finish_reason": finish}})


@pytest.fixture
def labels(db, write_lines, settings, tmp_path):
    """Seven annotations of two problems, every rating chosen by hand (see the expectations below)."""
    settings.EXPORT_DIR = tmp_path / "exports"
    lines = [
        # A1: S1 rated +1, 0, to the end.
        line(1, 1, P1, "2", [step([completion(S1[0], 1)], 0), step([completion(S1[1], 0)], 0)], "solution", S1),
        # A2: S2's first step -1, an alternative rated +1 beside it.
        line(2, 1, P1, "2", [step([completion(S2[0], -1), completion("One plus one is 2.", 1)])], "found_error", S2),
        # A3: S3, right answer, wrong second step; the human's correction there is not the step.
        line(3, 2, P1, "2", [step([completion(S3[0], 1)], 0),
                             step([completion(S3[1], -1)], human="Add 1 and 1 to get 2.")], "found_error", S3),
        # A4, phase 1: a chosen completion, a human completion labeling went on after, a neutral end.
        line(4, None, P1, "2", [step([completion("Think.", 0), completion("Compute 1+1.", 1)], 1),
                                step([completion("It is 3.", -1)], human="It is 2."),
                                step([completion("# Answer\n\n2", 0)], 0)], "solution"),
        # A5: nothing rated.
        line(5, 1, P1, "2", [step([completion(S1[0], None)])], "give_up", S1),
        # A6, phase 1: a chosen -1, then a step that must not be exported.
        line(6, None, P2, "6", [step([completion("Step a", 1)], 0), step([completion("Step b wrong", -1)], 0),
                                step([completion("Step c", 1)], 0)], "solution"),
        # A7: S6 approved to the end by a human, but its answer is graded wrong.
        line(7, 2, P1, "2", [step([completion(S6[0], 1)], 0), step([completion(S6[1], 1)], 0)], "solution", S6),
    ]
    prm800k_import(path=write_lines(lines))
    solutions = {tuple(s.steps): s for s in Solution.objects.all()}
    problem = solutions[tuple(S1)].problem
    for steps, correct in ((S1, True), (S2, False), (S3, True), (S6, False)):
        Solution.objects.filter(id=solutions[tuple(steps)].id).update(is_correct=correct)
    s4 = Solution.objects.create(problem=problem, steps=S4, final_answer="2", is_correct=True)  # graded only
    s5 = Solution.objects.create(problem=problem, steps=S5, final_answer="11", is_correct=False)
    Round.objects.filter(number=2).update(selector=ModelVersion.objects.create(name="prm-r2", kind="prm"))
    ids = {name: solutions[tuple(steps)].id for name, steps in (("S1", S1), ("S2", S2), ("S3", S3), ("S6", S6))}
    return {**ids, "S4": s4.id, "S5": s5.id, "P1": problem.id}


# (prompt, completions, ratings) of the exported annotations in id order; A5 has no rated step.
STEPWISE = [
    (P1, S1, [1, 0]),
    (P1, S2[:1], [-1]),
    (P1, S3[:2], [1, -1]),
    (P1, ["Compute 1+1.", "It is 2.", "# Answer\n\n2"], [1, 1, 0]),
    (P2, ["Step a", "Step b wrong"], [1, -1]),
    (P1, S6, [1, 1]),
]
POSITIVE = [[True, True], [False], [True, False], [True, True, True], [True, False], [True, True]]
NEGATIVE = [[True, False], [False], [True, False], [True, True, False], [True, False], [True, True]]


def write(fmt, tmp_path, **options):
    path = tmp_path / f"out.{exports.EXTENSIONS[fmt]}"
    result = exports.export_to_path(fmt, path, ExportFilters(), options=exports.export_options(fmt, options))
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    return path, result


def load_json(path, tmp_path):
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))


@pytest.mark.parametrize("neutral, expected", [("positive", POSITIVE), ("negative", NEGATIVE)])
def test_it_writes_trl_stepwise_rows(labels, tmp_path, neutral, expected):
    path, result = write("trl", tmp_path, neutral=neutral)
    rows = load_json(path, tmp_path)
    # what PRMTrainer reads, and where the labels came from (a column its tokenizing map drops)
    assert rows.column_names == ["prompt", "completions", "labels", "label_source"]
    assert set(rows["label_source"]) == {"human"}
    assert rows.features["labels"].feature == datasets.Value("bool")
    assert rows.features["completions"].feature == datasets.Value("string")
    assert rows["prompt"] == [p for p, _, _ in STEPWISE]
    assert rows["completions"] == [c for _, c, _ in STEPWISE]
    assert rows["labels"] == expected
    assert result.records == 6 and result.steps == 12
    assert result.stats["skipped_no_rated_step"] == 1 and result.stats["annotations"] == 7
    assert result.stats["rating_0"] == 2 and result.stats["rows_ending_in_error"] == 3


def test_it_drops_annotations_with_a_neutral_step_when_asked(labels, tmp_path):
    path, result = write("trl", tmp_path, neutral="drop")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert [r["completions"] for r in rows] == [c for _, c, r in STEPWISE if 0 not in r]
    assert [r["labels"] for r in rows] == [[False], [True, False], [True, False], [True, True]]
    assert result.stats["skipped_neutral"] == 2 and result.stats["skipped_no_rated_step"] == 1


def test_it_pairs_correct_against_incorrect_solutions(labels, tmp_path):
    path, result = write("preference", tmp_path)
    rows = load_json(path, tmp_path)
    assert rows.column_names == ["prompt", "chosen", "rejected", "verified", "problem_id", "chosen_solution_id",
                                 "rejected_solution_id"]
    assert rows.features["verified"] == datasets.Value("bool")
    assert rows.features["chosen_solution_id"] == datasets.Value("int64")
    # correct: S1 (checked), S4; incorrect: S2, S3 (human -1 despite the right answer; checked), S5.
    # S6 (graded wrong, approved by a human) is left out. Pair k: correct[k % 2] with incorrect[k % 3].
    pairs = [("S1", "S2", True), ("S4", "S3", False), ("S1", "S5", False)]
    assert [(r["chosen_solution_id"], r["rejected_solution_id"], r["verified"]) for r in rows] == [
        (labels[c], labels[r], v) for c, r, v in pairs]
    steps = {"S1": S1, "S2": S2, "S3": S3, "S4": S4, "S5": S5}
    assert rows["chosen"] == ["\n\n".join(steps[c]) for c, _, _ in pairs]
    assert rows["rejected"] == ["\n\n".join(steps[r]) for _, r, _ in pairs]
    assert rows["prompt"] == [P1] * 3 and rows["problem_id"] == [labels["P1"]] * 3
    graded = dict(Solution.objects.values_list("id", "is_correct"))
    assert all(graded[r["chosen_solution_id"]] is True for r in rows)
    assert result.stats["solutions_left_out_conflicting"] == 1 and result.stats["pairs_verified"] == 1
    assert result.stats["problems"] == 1 and result.records == 3

    path, _ = write("preference", tmp_path, pairs_per_problem=1)
    assert [json.loads(x)["rejected_solution_id"] for x in path.read_text().splitlines()] == [labels["S2"]]


def pairs(filters, **options):
    out = io.BytesIO()
    exports.FORMATS["preference"](out=out, filters=filters, options=exports.export_options("preference", options))
    return [(r["chosen_solution_id"], r["rejected_solution_id"], r["verified"])
            for r in map(json.loads, out.getvalue().splitlines())]


def test_only_the_filtered_labels_count_as_human_checks(labels):
    p2 = Problem.objects.get(text=P2)
    Solution.objects.create(problem=p2, steps=["6"], final_answer="6", is_correct=True)  # nothing to pair with
    # Round 2's labels only: S3's -1 counts, A1's approval of S1 and A2's -1 on S2 do not.
    assert pairs(ExportFilters(generation=2)) == [
        (labels["S1"], labels["S3"], False), (labels["S4"], labels["S2"], False), (labels["S1"], labels["S5"], False)]
    # No labels at all: graded answers alone, S3 correct and S6 incorrect again.
    assert pairs(ExportFilters(generation=3)) == [
        (labels["S1"], labels["S2"], False), (labels["S3"], labels["S6"], False), (labels["S4"], labels["S5"], False)]
    assert pairs(ExportFilters(generation=3), problems="labeled") == []


def test_it_writes_a_hugging_face_dataset_and_parquet(labels, tmp_path):
    path, result = write("hf", tmp_path, neutral="negative")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    assert "data.parquet" in names and "dataset/dataset_info.json" in names
    on_disk = datasets.load_from_disk(str(tmp_path / "unzipped" / "dataset"))
    parquet = datasets.Dataset.from_parquet(str(tmp_path / "unzipped" / "data.parquet"),
                                            cache_dir=str(tmp_path / "hf-cache"))
    for rows in (on_disk, parquet):
        assert rows.column_names == ["prompt", "completions", "labels", "ratings", "annotation_id", "problem_id",
                                     "solution_id", "round", "soft_labels", "label_source"]
        assert rows["label_source"] == ["human"] * 6  # rollout and consensus rows: tests/test_rollout_exports.py
        f = rows.features
        assert (f["prompt"], f["completions"].feature, f["labels"].feature, f["ratings"].feature) == (
            datasets.Value("string"), datasets.Value("string"), datasets.Value("bool"), datasets.Value("int8"))
        assert all(f[c] == datasets.Value("int64") for c in ("annotation_id", "problem_id", "solution_id", "round"))
        assert rows["prompt"] == [p for p, _, _ in STEPWISE]
        assert rows["completions"] == [c for _, c, _ in STEPWISE]
        assert rows["ratings"] == [r for _, _, r in STEPWISE]
        assert rows["labels"] == NEGATIVE
        assert rows["round"] == [1, 1, 2, None, None, 2]
        assert rows["solution_id"] == [labels["S1"], labels["S2"], labels["S3"], None, None, labels["S6"]]
        assert all(len(c) == len(lab) == len(r) for c, lab, r in zip(rows["completions"], rows["labels"],
                                                                     rows["ratings"]))
    assert on_disk["annotation_id"] == sorted(on_disk["annotation_id"]) and len(set(on_disk["annotation_id"])) == 6
    assert result.records == 6
    assert write("hf", tmp_path, neutral="negative")[1].sha256 == result.sha256  # same labels, same archive


@pytest.mark.parametrize("fmt, options, records", [
    ("prm800k", {}, 7), ("trl", {"neutral": "negative"}, 6), ("preference", {"pairs_per_problem": 2}, 2),
    ("hf", {}, 6)])
def test_it_runs_each_format_as_a_job_with_provenance(labels, alice, django_capture_on_commit_callbacks, settings,
                                                      fmt, options, records):
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.export_create(fmt=fmt, filters={}, options=options, user=alice)
    export.refresh_from_db()
    assert export.status == Export.Status.DONE, export.error
    assert export.file == f"export-{export.id}.{exports.EXTENSIONS[fmt]}" and export.record_count == records
    data = (settings.EXPORT_DIR / export.file).read_bytes()
    assert export.sha256 == hashlib.sha256(data).hexdigest()
    p = export.provenance
    assert [(r["number"], r["selector"] and r["selector"]["name"]) for r in p["rounds"]] == [(1, None), (2, "prm-r2")]
    assert [s["name"] for s in p["selectors"]] == ["prm-r2"]
    assert p["annotations"] == 7 and p["annotations_without_round"] == 2 and p["step_labels"] == 14
    assert p["completion_ratings"] == {"-1": 4, "0": 3, "1": 8, "unrated": 1}
    defaults = exports.export_options(fmt)
    assert p["options"] == ({**vars(defaults), **options} if defaults else {})
    assert export.filters.get("options", {}) == p["options"]
    if fmt != "prm800k":
        assert p["output"]["steps"] == export.step_count


def test_the_command_takes_format_options(labels, tmp_path):
    out = tmp_path / "trl.jsonl"
    call_command("export", "--format", "trl", "--neutral", "negative", "--generation", "1", "--out", str(out))
    assert [json.loads(x)["labels"] for x in out.read_text().splitlines()] == NEGATIVE[:2]
    out = tmp_path / "pairs.jsonl"
    call_command("export", "--format", "preference", "--pairs-per-problem", "1", "--out", str(out))
    assert len(out.read_text().splitlines()) == 1
    with pytest.raises(CommandError, match="takes no options"):
        call_command("export", "--format", "prm800k", "--neutral", "negative", "--out", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="pairs_per_problem"):
        call_command("export", "--format", "preference", "--pairs-per-problem", "0", "--out", str(tmp_path / "x"))


def test_the_admin_form_passes_the_chosen_formats_options(client, alice, labels, django_capture_on_commit_callbacks):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/labeling/export/add/", {"format": "preference", "pairs_per_problem": "1",
                                                               "neutral": "negative"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.status == Export.Status.DONE and export.record_count == 1
    assert export.filters["options"] == {"pairs_per_problem": 1, "problems": "all"}
    assert "prm-r2" in client.get(f"/admin/labeling/export/{export.id}/change/").content.decode()  # provenance


def test_it_exports_the_prm800k_sample_for_trl(db, shared_data, tmp_path):
    prm800k_import(path=shared_data / "prm800k_sample.jsonl")
    path, result = write("trl", tmp_path)
    rows = load_json(path, tmp_path)
    records = [json.loads(x) for x in (shared_data / "prm800k_sample.jsonl").read_text().splitlines()]
    assert len(rows) == result.records == len(records) and not result.stats.get("skipped_no_rated_step")
    for row, record in zip(rows, records):
        assert row["prompt"] == record["question"]["problem"]
        assert len(row["labels"]) == len(row["completions"]) > 0
        assert all(isinstance(x, bool) for x in row["labels"]) and False not in row["labels"][:-1]
        question, finish = record["question"], record["label"]["finish_reason"]
        if "pre_generated_steps" in question:  # phase 2: the solution's own steps, up to the first -1
            assert row["completions"] == question["pre_generated_steps"][:len(row["completions"])]
            assert (row["labels"][-1] is False) == (finish == "found_error")
