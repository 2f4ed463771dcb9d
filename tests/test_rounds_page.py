"""The rounds page: per-round collection, agreement, the PRM trained after each round, charts, buttons."""
import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from labeling.core import charts
from labeling.models import (Annotator, Assignment, Job, ModelVersion, Problem, Round, RoundSelection, Solution,
                             Task)
from labeling.services.rounds.registry import model_version_register, selector_activate, selector_active
from tests.label_factories import annotation_make

T0 = timezone.now() - dt.timedelta(days=1)
NS = {"svg": charts.SVG_NS}


def at(hours):
    return T0 + dt.timedelta(hours=hours)


def prm(name, created, evaluation=None, path="/nonexistent"):
    version = model_version_register(name=name, kind=ModelVersion.Kind.PRM, path=path,
                                     metrics={"evaluation": evaluation} if evaluation else None,
                                     config={"architecture": "step_head"})
    ModelVersion.objects.filter(pk=version.pk).update(created=created)
    version.refresh_from_db()
    return version


def evaluation(f1, auroc, bon, evaluated_at):
    return {"processbench_f1": f1, "step_auroc": auroc, "evaluated_at": evaluated_at.isoformat(),
            "processbench": {"fixed": {"f1": f1}, "best": {"f1": f1, "threshold": 0.5}},
            "best_of_n": {"prm": [[1, 0.3], [2, 0.4], [4, bon]], "last": [[1, 0.3], [2, 0.35], [4, 0.4]],
                          "majority": [[1, 0.3], [2, 0.3], [4, 0.5]], "oracle": [[1, 0.3], [2, 0.5], [4, 0.7]]},
            "best_of_n_max": {"n": 4, "prm": bon, "last": 0.4, "majority": 0.5, "oracle": 0.7},
            "held_out": {"split": "test", "digest": "d"}}


def annotate(annotator, sol, round_, ratings, **extra):
    return annotation_make(annotator=annotator, solution=sol, ratings=ratings, round=round_, timestamp=at(1), **extra)


@pytest.fixture
def history(db):
    """Two rounds. Round 1 (overlap 2) selected w1, w2, w3 as convincing wrong and c1 as convincing any:
    w1 was labeled by x (error at step 1) and y (no error), w2 by x (no error) and, as QC, with an error
    that must not count; w3 by nobody. So errors were found in 1 of the 2 labeled convincing-wrong ones."""
    v1 = prm("v1", at(-1), evaluation(0.4, 0.6, 0.45, at(-1)))
    r1 = Round.objects.create(number=1, selector=v1, overlap=2, started=at(0), status=Round.Status.DONE)
    v2 = prm("v2", at(1), evaluation(0.5, 0.7, 0.55, at(1)))       # trained after round 1 (time order)
    r2 = Round.objects.create(number=2, selector=v2, overlap=1, started=at(2), status=Round.Status.DONE)
    prm("v4-manual", at(2.5))                                      # next by time, but...
    v3 = prm("v3", at(3), evaluation(0.6, 0.8, 0.65, at(3)))
    Job.objects.create(kind=Job.Kind.RETRAIN, status=Job.Status.DONE, model_version=v3,  # ...the job says v3
                       parameters={"rounds": None}, result={"snapshot": {"rounds": [1, 2]}})
    selector_activate(version=v1)

    problem = Problem.objects.create(text="what is 2 + 2?", answer="4", split="train")
    sols = {name: Solution.objects.create(problem=problem, steps=[f"{name} step 0", f"{name} step 1"],
                                          final_answer="5", is_correct=name == "c1")
            for name in ("w1", "w2", "w3", "c1")}
    for rank, name in enumerate(("w1", "w2", "w3", "c1")):
        RoundSelection.objects.create(round=r1, solution=sols[name], problem=problem, score=1 - rank / 10,
                                      is_correct=name == "c1", rank=rank,
                                      reason="convincing_any" if name == "c1" else "convincing_wrong")
    tasks = {name: Task.objects.create(solution=s, round=r1, overlap=2) for name, s in sols.items()}
    x, y = Annotator.objects.create(), Annotator.objects.create()
    for annotator, name, ratings in ((x, "w1", [1, -1]), (y, "w1", [1, 1]), (x, "w2", [1, 1]), (x, "c1", [-1])):
        a = annotate(annotator, sols[name], r1, ratings)
        Assignment.objects.create(task=tasks[name], annotator=annotator, status=Assignment.Status.SUBMITTED,
                                  leased_at=at(1), expires_at=at(2), submitted_at=at(1), annotation=a, round=r1)
    annotate(y, sols["w2"], r1, [-1], is_quality_control=True)
    return {"v1": v1, "v2": v2, "v3": v3, "r1": r1, "r2": r2}


def svgs(html):
    return [ET.fromstring(block) for block in re.findall(r"<svg\b.*?</svg>", html, flags=re.S)]


def cell(html, row_id, css_class):
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, flags=re.S).group(1)
    text = re.search(rf'<td class="[^"]*\b{css_class}\b[^"]*">(.*?)</td>', row, flags=re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


def test_it_shows_each_round_with_the_values_set_up(client, alice, history):
    client.force_login(alice)
    response = client.get("/rounds/")
    assert response.status_code == 200
    html = response.content.decode()
    assert cell(html, "round-1", "tasks") == "4"
    assert cell(html, "round-1", "labels") == "4"          # QC left out
    assert cell(html, "round-1", "error-found") == "0.500 (1/2)"
    # Agreement on w1 (x: [+1, -1], y: [+1, +1]): first errors differ -> 0. Fleiss over the aligned steps
    # [+1, +1] and [-1, +1]: P = (1 + 0) / 2 = .5; shares -1: 1/4, +1: 3/4 -> Pe = 10/16; kappa = -1/3.
    assert cell(html, "round-1", "agreement") == "first error 0.000, κ -0.333 (1 tasks)"
    assert cell(html, "round-2", "agreement") == "n/a"     # overlap 1
    assert cell(html, "round-2", "error-found") == "n/a"
    assert cell(html, "round-1", "selector") == "v1"
    assert cell(html, "round-1", "model-after") == "v2"    # by creation time
    assert cell(html, "round-2", "model-after") == "v3"    # named by the retrain job, not v4-manual
    assert (cell(html, "round-1", "f1"), cell(html, "round-1", "auroc"), cell(html, "round-1", "bon")) == \
        ("0.500", "0.700", "0.550 @4")
    assert cell(html, "round-2", "f1") == "0.600"
    assert 'href="/rounds/"' in client.get("/").content.decode()


def test_it_draws_the_round_chart_and_the_best_of_n_charts(client, alice, history):
    client.force_login(alice)
    html = client.get("/rounds/").content.decode()
    rounds_chart, yields_chart, *best_of_n = svgs(html)
    series = {g.get("data-series"): g for g in rounds_chart.iterfind(".//svg:g[@class='series']", NS)}
    assert set(series) == {"ProcessBench F1 (threshold 0.5)", "Step AUROC", "Best-of-N PRM (at the largest N)"}
    legend = [" ".join(node.itertext()) for node in rounds_chart.iterfind(".//svg:g[@class='legend']/svg:text", NS)]
    assert legend == list(series)                                # whole labels, in series order
    ticks = [node.text for node in rounds_chart.iterfind(".//svg:text[@class='x-tick']", NS)]
    assert ticks == ["1", "2"]
    assert len(yields_chart.findall(".//svg:rect[@class='bar']", NS)) == 2  # round 1: convincing wrong and any
    for group in series.values():
        (line,) = group.findall("svg:polyline", NS)
        assert len(line.get("points").split()) == 2            # rounds 1 and 2
    # latest evaluated (v3) and the active selector (v1): one line per rule each
    assert [len(chart.findall(".//svg:polyline", NS)) for chart in best_of_n] == [4, 4]
    titles = [chart.find("svg:title", NS).text for chart in best_of_n]
    assert titles == ["Best-of-N: v3 (latest evaluated)", "Best-of-N: v1 (active selector)"]


def test_annotators_get_403_and_anonymous_visitors_the_login_page(client, bob, history):
    response = client.get("/rounds/")
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert client.post(f"/rounds/models/{history['v2'].pk}/make-selector/").status_code == 302
    client.force_login(bob)
    assert client.get("/rounds/").status_code == 403
    for url in (f"/rounds/models/{history['v2'].pk}/evaluate/", f"/rounds/models/{history['v2'].pk}/make-selector/",
                "/rounds/retrain/"):
        assert client.post(url).status_code == 403
    assert selector_active() == history["v1"] and not Job.objects.filter(kind=Job.Kind.EVALUATE).exists()


def test_make_selector_switches_the_selector(client, alice, history):
    client.force_login(alice)
    response = client.post(f"/rounds/models/{history['v3'].pk}/make-selector/", follow=True)
    assert response.redirect_chain == [("/rounds/", 302)]
    assert selector_active() == history["v3"]
    assert "v3 is now the selector" in response.content.decode()
    assert client.get(f"/rounds/models/{history['v3'].pk}/make-selector/").status_code == 405  # POST only


def test_a_never_evaluated_version_is_made_the_selector_only_when_forced(client, alice, history):
    manual = ModelVersion.objects.get(name="v4-manual")
    client.force_login(alice)
    row = client.get("/rounds/").content.decode().split(f'id="version-{manual.pk}"', 1)[1].split("</tr>", 1)[0]
    assert '<input type="hidden" name="force" value="1">' in row and "Make selector anyway" in row
    response = client.post(f"/rounds/models/{manual.pk}/make-selector/", follow=True)
    assert "v4-manual is not made the selector: it was never evaluated" in response.content.decode()
    assert selector_active() == history["v1"]
    response = client.post(f"/rounds/models/{manual.pk}/make-selector/", {"force": "1"}, follow=True)
    manual.refresh_from_db()
    assert selector_active() == manual and manual.activated_by == alice
    assert manual.activation_note == "forced by alice: not evaluated"
    assert "forced by alice: not evaluated" in response.content.decode()


def test_evaluate_without_held_out_data_says_why(client, alice, history):
    client.force_login(alice)
    response = client.post(f"/rounds/models/{history['v2'].pk}/evaluate/", follow=True)
    assert "no held-out data" in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.EVALUATE).exists()


def test_the_retrain_button_queues_a_retrain(client, alice, history):
    client.force_login(alice)
    assert 'id="retrain"' in client.get("/rounds/").content.decode()
    # round 1 has labels (of a train problem) to train on: a RETRAIN job is queued, sent once this commits
    response = client.post("/rounds/retrain/", follow=True)
    assert response.redirect_chain == [("/rounds/", 302)]
    assert Job.objects.filter(kind=Job.Kind.RETRAIN, status=Job.Status.PENDING).exists()
    assert "retraining job" in response.content.decode()


@pytest.fixture(scope="module")
def tiny_prm_dir(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.tiny_models import build_token_classifier
    return build_token_classifier(tmp_path_factory.mktemp("tiny_prm"))


def test_the_evaluate_button_runs_an_evaluation_job(client, alice, db, tiny_prm_dir, settings,
                                                    django_capture_on_commit_callbacks):
    # With EMBEDDED_TASKS off, in_background() leaves the (eager) task in this thread, which sees the test's
    # uncommitted rows; in the embedded mode proper it would run in a thread of its own.
    settings.EMBEDDED_TASKS = False
    problem = Problem.objects.create(text="what is 3 + 3?", answer="6", split="test")
    for k, (answer, correct) in enumerate([("6", True), ("7", False)]):
        Solution.objects.create(problem=problem, steps=[f"we add {k}", f"the answer is {answer}"],
                                final_answer=answer, is_correct=correct)
    version = prm("tiny", timezone.now(), path=tiny_prm_dir)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/rounds/models/{version.pk}/evaluate/")
    assert response.status_code == 302 and response.url == "/rounds/"
    job = Job.objects.get(kind=Job.Kind.EVALUATE)
    assert job.model_version == version and job.requested_by == alice
    assert job.status == Job.Status.DONE, job.error
    version.refresh_from_db()
    assert version.metrics["evaluation"]["counts"]["solutions"] == 2
    html = client.get("/rounds/").content.decode()
    assert f"job {job.pk} done" in html
    row = html.split(f'id="version-{version.pk}"', 1)[1].split("</tr>", 1)[0]
    assert '<button type="submit" class="make-selector">Make selector</button>' in row  # evaluated: no force


def yield_rounds(history):
    """On top of `history`: round 2 served 4 convincing wrong (3 with an error found), 2 convincing any (1), 4 control
    (1) and 1 random wrong (1), each labeled by one annotator through a submitted assignment."""
    r2 = history["r2"]
    problem = Problem.objects.create(text="what is 3 + 3?", answer="6", split="train")
    annotator = Annotator.objects.create()
    plan = [("convincing_wrong", [1, -1]), ("convincing_wrong", [-1]), ("convincing_wrong", [1, 1, -1]),
            ("convincing_wrong", [1, 1]), ("convincing_any", [1, -1]), ("convincing_any", [1]),
            ("control", [1, -1]), ("control", [1, 1]), ("control", [1]), ("control", [1, 1]),
            ("random_wrong", [-1])]
    for rank, (reason, ratings) in enumerate(plan):
        sol = Solution.objects.create(problem=problem, steps=[f"{rank} step {i}" for i in range(3)], final_answer="7",
                                      is_correct=reason == "convincing_any")
        RoundSelection.objects.create(round=r2, solution=sol, problem=problem, score=0.5, rank=rank, reason=reason,
                                      is_correct=reason == "convincing_any")
        task = Task.objects.create(solution=sol, round=r2)
        a = annotate(annotator, sol, r2, ratings)
        Assignment.objects.create(task=task, annotator=annotator, status=Assignment.Status.SUBMITTED, leased_at=at(1),
                                  expires_at=at(2), submitted_at=at(1), annotation=a, round=r2)
    return r2


LEGEND_BOXES = """
return Array.from(document.querySelectorAll(arguments[0] + ' g.legend text')).map(function (t) {
  var box = t.getBBox(), view = t.ownerSVGElement.viewBox.baseVal;
  return {text: Array.from(t.childNodes).map(function (n) { return n.textContent; }).join(' '),
          right: box.x + box.width, bottom: box.y + box.height, width: view.width, height: view.height};
});"""


@pytest.mark.django_db(transaction=True)
def test_the_page_in_chromium_shows_yields_with_intervals_whole_legends_and_round_ticks(browser, live_server, alice,
                                                                                         history, By):
    from labeling.core.intervals import wilson_interval
    from tests.browser import log_in

    yield_rounds(history)
    log_in(browser, live_server.url, "alice", "alice-pw", next_path="/rounds/")
    if "/rounds/" not in browser.current_url:
        browser.get(f"{live_server.url}/rounds/")

    def row(number, reason):
        cells = browser.find_element(By.ID, f"yield-{number}-{reason}")
        return {name: cells.find_element(By.CSS_SELECTOR, f"td.{name}").text
                for name in ("reason", "served", "found", "share", "interval", "ratio")}

    for reason, found, served in (("convincing_wrong", 3, 4), ("convincing_any", 1, 2), ("control", 1, 4),
                                  ("random_wrong", 1, 1)):
        low, high = wilson_interval(found, served)
        shown = row(2, reason)
        assert (shown["found"], shown["served"], shown["share"]) == (str(found), str(served), f"{found / served:.3f}")
        assert shown["interval"] == f"{low:.3f} – {high:.3f}"
    assert row(2, "control")["reason"] == "control (random)"
    assert row(2, "convincing_wrong")["ratio"] == "3.00×"       # 0.75 / 0.25
    assert row(1, "convincing_wrong")["share"] == "0.500"        # round 1 of `history`: 1 of 2
    assert not browser.find_elements(By.ID, "yield-1-control")   # round 1 had no control slice

    # The yields chart: a bar and an error bar per served reason and round (round 1: two, round 2: four).
    chart = browser.find_element(By.ID, "yields-chart")
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.bar")) == 6
    assert len(chart.find_elements(By.CSS_SELECTOR, "g.error-bar")) == 6
    for selector in ("#rounds-chart", "#yields-chart"):
        boxes = browser.execute_script(LEGEND_BOXES, selector)
        assert boxes and all("\u2026" not in b["text"] for b in boxes)
        for box in boxes:  # what the browser lays out lies inside the drawing: no label is clipped
            assert box["right"] <= box["width"] and box["bottom"] <= box["height"], box
    texts = [b["text"] for b in browser.execute_script(LEGEND_BOXES, "#rounds-chart")]
    assert texts == ["ProcessBench F1 (threshold 0.5)", "Step AUROC", "Best-of-N PRM (at the largest N)"]
    assert [b["text"] for b in browser.execute_script(LEGEND_BOXES, "#yields-chart")] == \
        ["convincing wrong", "convincing any", "control (random)", "random wrong (fallback)"]
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#rounds-chart text.x-tick")]
    assert ticks == ["1", "2"]

    browser.set_window_size(1200, 2000)
    browser.execute_script("document.getElementById('rounds').scrollIntoView()")
    browser.save_screenshot("/tmp/rounds_page.png")
    browser.execute_script("document.getElementById('yields').scrollIntoView()")
    browser.save_screenshot("/tmp/rounds_page_yields.png")
