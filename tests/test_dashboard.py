"""The admins' quality dashboard: who may see it, and what it shows for a small hand-checked dataset."""
import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labeling.models import Annotator, Round
from labeling.queries.quality import annotator_rows, overlap_agreement
from tests import factories_quality as f


@pytest.fixture
def labeled(bob):
    """Three overlapped round tasks (the case worked by hand in test_agreement), a screening failure."""
    carol, dave = f.annotator("carol"), f.annotator("dave")
    bob = bob.annotator
    one = Round.objects.create(number=1)
    t1, t2, t3 = f.task(4, round=one), f.task(4, round=one), f.task(3, round=one)
    f.submit(t1, bob, [1, 1, 1, 1], total_time_ms=60_000)     # 15 s a step
    f.submit(t2, bob, [1, 0, -1], total_time_ms=120_000)      # 40 s a step
    f.submit(t3, bob, [1, -1], total_time_ms=180_000)         # 90 s a step
    f.submit(t1, carol, [1, 1, 1, 1])
    f.submit(t2, carol, [1, 0, -1])
    f.submit(t3, carol, [0, -1])
    f.submit(t1, dave, [1, 1, 0, 1])
    f.submit(t2, dave, [1, -1])
    f.submit(f.task(3, round=one), dave, [1, 1, 1])             # alone on its task: not overlapped
    f.submit(f.task(3, round=one), carol, [1, 1, 1], ago=dt.timedelta(days=60))  # outside the default window
    Annotator.objects.filter(pk=dave.pk).update(screening_passed=False, screening_score=0.5)
    Annotator.objects.filter(pk=carol.pk).update(screening_passed=True, qc_count=4, qc_score=0.75)
    return {"bob": bob, "carol": carol, "dave": dave}


def test_anonymous_is_sent_to_log_in(client, db):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response.url.startswith("/login/?next=/dashboard/")


def test_an_annotator_is_refused(client, bob):
    client.force_login(bob)
    assert client.get("/dashboard/").status_code == 403


def test_an_admin_sees_the_empty_dashboard(client, alice):
    client.force_login(alice)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert b"No task has two submissions yet" in response.content


def test_a_bad_filter_is_a_bad_request(client, alice):
    client.force_login(alice)
    assert client.get("/dashboard/?days=0").status_code == 400
    assert client.get("/dashboard/?round=x").status_code == 400


def cell(html, id_):
    match = re.search(rf'id="{id_}">([^<]*)<', html)
    return match.group(1).strip() if match else None


def row(html, annotator):
    match = re.search(rf'<tr id="annotator-{annotator.pk}">(.*?)</tr>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_the_dashboard_shows_speed_quality_screening_and_agreement(client, alice, labeled):
    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()
    assert cell(html, "overlapped-tasks") == "3"
    assert cell(html, "fleiss-kappa") == f"{557 / 1404:.3f}"
    assert cell(html, "first-error-agreement") == "0.667"
    # bob: 3 annotations in 0.1 h -> 30 an hour; per step 15, 40, 90 s -> median 40 s.
    assert row(html, labeled["bob"]).startswith("bob 3 0.10 30.0 40.0 0")
    assert "passed" in row(html, labeled["carol"]) and "4 — — 0.750 passed" in row(html, labeled["carol"])
    dave = row(html, labeled["dave"])
    assert "failed (0.500)" in dave and "clear in the admin" in dave
    assert f'href="/admin/labeling/annotator/{labeled["dave"].pk}/change/"' in html
    pairs = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.split('id="pairs"')[1].split("</table>")[0]))
    assert "bob carol 3 9 0.800 0.889 1.000" in pairs
    assert "bob dave 2 6 0.200 0.667 0.500" in pairs and "carol dave 2 6 0.200 0.667 0.500" in pairs


def test_the_window_and_round_filters(client, alice, labeled):
    client.force_login(alice)
    assert row(client.get("/dashboard/").content.decode(), labeled["carol"]).startswith("carol 3 ")
    assert row(client.get("/dashboard/?days=90").content.decode(), labeled["carol"]).startswith("carol 4 ")
    assert cell(client.get("/dashboard/?round=2").content.decode(), "overlapped-tasks") == "0"
    assert cell(client.get("/dashboard/?round=1").content.decode(), "overlapped-tasks") == "3"


def test_queries_match_the_hand_computed_values_in_a_few_queries(labeled):
    since = timezone.now() - dt.timedelta(days=30)
    with CaptureQueriesContext(connection) as queries:
        view = overlap_agreement(since=since)
        rows = {r.annotator.user.username: r for r in annotator_rows(since=since)}
    assert len(queries) <= 8
    assert view.report.tasks == 3 and view.report.fleiss.kappa == pytest.approx(557 / 1404)
    assert {(a, b): p.kappa.kappa for a, b, p in view.pairs()} == {
        ("bob", "carol"): pytest.approx(0.8), ("bob", "dave"): pytest.approx(0.2),
        ("carol", "dave"): pytest.approx(0.2)}
    bob = rows["bob"]
    assert (bob.annotations, bob.per_hour, bob.ms_per_step) == (3, pytest.approx(30.0), 40_000)
    assert rows["dave"].screening_failed and not rows["carol"].screening_failed
    assert rows["carol"].screening == "passed" and rows["bob"].screening == "no screening tasks"
