"""Saving a draft renews the lease (a lease length from then, capped at STEPWISE_LEASE_MAX_HOURS after it began);
the label page counts down to the lease's end, warns in its last minutes, says when it ran out, and moves
its countdown out when a draft save renews the lease."""
import datetime as dt
import re
import time
import uuid

import pytest
from django.utils import timezone

from labeling.errors import LeaseConflict, LeaseExpired
from labeling.models import Assignment
from labeling.services.annotation.queue import assignment_draft_save, leases_expire, queue_next
from labeling.services.annotation.submission import annotation_submit
from tests.api_client import error_of, lease, leased
from tests.browser import wait_until
from tests.label_page_ui import click_rating, make_task, open_page, ready, steps, ui, wait_saved
from tests.queue_factories import annotator_make, ratings, round_make, submission, task_make

MIN = dt.timedelta(minutes=1)


@pytest.fixture
def start(settings):
    settings.STEPWISE_QC_RATE = 0
    settings.STEPWISE_LEASE_MINUTES = 30
    settings.STEPWISE_LEASE_MAX_HOURS = 4
    return timezone.now().replace(microsecond=0)


def save(row, at, draft=None):
    return assignment_draft_save(assignment_id=row.pk, annotator=row.annotator, draft=draft or {"at": str(at)},
                                 now=at)


# --- the service -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_draft_save_renews_the_lease_by_a_lease_length(start):
    task_make()
    row = queue_next(annotator=annotator_make(), now=start)
    assert row.expires_at == start + 30 * MIN
    saved = save(row, start + 20 * MIN)
    assert saved.expires_at == start + 50 * MIN == Assignment.objects.get(pk=row.pk).expires_at
    assert saved.draft_saved_at == start + 20 * MIN


@pytest.mark.django_db
def test_renewal_stops_at_the_cap(start, settings):
    settings.STEPWISE_LEASE_MAX_HOURS = 1
    task_make()
    row = queue_next(annotator=annotator_make(), now=start)
    assert save(row, start + 20 * MIN).expires_at == start + 50 * MIN
    assert save(row, start + 45 * MIN).expires_at == start + 60 * MIN       # not 75: the cap
    assert save(row, start + 59 * MIN, {"last": 1}).expires_at == start + 60 * MIN
    with pytest.raises(LeaseExpired):
        save(row, start + 61 * MIN)
    row.refresh_from_db()
    assert (row.expires_at, row.draft) == (start + 60 * MIN, {"last": 1})


@pytest.mark.django_db
def test_a_lease_is_never_shortened_by_a_cap_below_its_length(start, settings):
    settings.STEPWISE_LEASE_MAX_HOURS = 0.25
    task_make()
    row = queue_next(annotator=annotator_make(), now=start)
    assert save(row, start + MIN).expires_at == start + 30 * MIN


@pytest.mark.django_db
def test_the_rounds_lease_length_is_the_renewal(start):
    task_make(round=round_make(parameters={"lease_minutes": 10}))
    row = queue_next(annotator=annotator_make(), now=start)
    assert row.expires_at == start + 10 * MIN
    assert save(row, start + 5 * MIN).expires_at == start + 15 * MIN


@pytest.mark.django_db
def test_an_expired_lease_is_not_renewed(start):
    task_make()
    row = queue_next(annotator=annotator_make(), now=start)
    with pytest.raises(LeaseExpired):
        save(row, start + 30 * MIN)                   # the instant it ends
    assert leases_expire(now=start + 31 * MIN) == 1
    with pytest.raises(LeaseExpired):
        save(row, start + 31 * MIN)
    row.refresh_from_db()
    assert (row.status, row.expires_at, row.draft) == ("expired", start + 30 * MIN, None)


@pytest.mark.django_db
def test_a_submitted_lease_is_not_renewed(start):
    task_make()
    row = queue_next(annotator=annotator_make(), now=start)
    annotation_submit(assignment=row, annotator=row.annotator, client_id="6f1c4c61-8f2d-4c47-9d8e-0c1f6b6f1a11",
                      ratings=ratings(1, 1, 1, 1), finish_reason="solution", total_time_ms=10, now=start + MIN)
    with pytest.raises(LeaseConflict):
        save(row, start + 2 * MIN)
    assert Assignment.objects.get(pk=row.pk).expires_at == start + 30 * MIN


@pytest.mark.django_db
def test_a_draft_save_is_two_queries(start, django_assert_num_queries):
    task_make()
    annotator = annotator_make()
    row = queue_next(annotator=annotator, now=start)
    with django_assert_num_queries(2):
        assignment_draft_save(assignment_id=row.public_id, annotator=annotator, draft={}, now=start + MIN)


# --- the API -----------------------------------------------------------------------------------------

def at(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_the_api_says_the_new_expiry(as_bob, start):
    task_make()
    public_id = lease(as_bob)["assignment_id"]
    before = timezone.now()
    Assignment.objects.filter(public_id=public_id).update(leased_at=before - 20 * MIN, expires_at=before + 10 * MIN)
    response = as_bob.put(f"/api/assignments/{public_id}/draft/", {"a": 1}, format="json")
    assert response.status_code == 200
    expires = at(response.json()["expires_at"])
    assert before + 30 * MIN <= expires <= timezone.now() + 30 * MIN
    assert expires == leased(public_id).expires_at
    assert at(as_bob.get(f"/api/assignments/{public_id}/").json()["expires_at"]) == expires


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_passwords")
def test_the_api_renews_up_to_the_cap_and_never_an_expired_lease(as_bob, start):
    task_make()
    public_id = lease(as_bob)["assignment_id"]
    began = timezone.now() - 4 * 60 * MIN + 5 * MIN
    Assignment.objects.filter(public_id=public_id).update(leased_at=began, expires_at=timezone.now() + MIN)
    response = as_bob.put(f"/api/assignments/{public_id}/draft/", {"a": 1}, format="json")
    assert response.status_code == 200 and at(response.json()["expires_at"]) == began + 4 * 60 * MIN

    gone = timezone.now() - dt.timedelta(seconds=1)
    Assignment.objects.filter(public_id=public_id).update(expires_at=gone)
    response = as_bob.put(f"/api/assignments/{public_id}/draft/", {"a": 2}, format="json")
    assert response.status_code == 410 and "expired" in error_of(response)["message"]
    assert (leased(public_id).expires_at, leased(public_id).draft) == (gone, {"a": 1})
    response = as_bob.post(f"/api/assignments/{public_id}/submit/", submission(), format="json")
    assert response.status_code == 410


def test_a_bad_cap_fails_loudly():
    from tests.test_settings import run_settings
    result = run_settings(DEBUG="1", STEPWISE_LEASE_MAX_HOURS="soon", DJANGO_SETTINGS_MODULE="annotate.settings")
    assert result.returncode != 0 and "STEPWISE_LEASE_MAX_HOURS='soon'" in result.stderr


# --- the page ----------------------------------------------------------------------------------------

def left_s(browser, By):
    text = browser.find_element(By.ID, "lease").text
    match = re.search(r"(?:(\d+):)?(\d+):(\d\d) left", text)
    assert match, text
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def lease_class(browser, By):
    return browser.find_element(By.ID, "lease").get_attribute("class").split()


@ui
def test_the_page_counts_down_warns_renews_and_says_when_time_is_up(browser, live_server, bob, By, settings):
    settings.STEPWISE_QC_RATE = 0
    ready(bob)
    make_task()
    row = queue_next(annotator=bob.annotator)
    now = timezone.now()
    # A draft on the server already (opening a task without one saves one at once, which renews the lease).
    Assignment.objects.filter(pk=row.pk).update(leased_at=now - 10 * MIN, expires_at=now + 2 * MIN,
                                                draft={"client_id": str(uuid.uuid4()), "ratings": [], "saved_at": 1})
    open_page(browser, live_server, By)                       # resumes that lease, two minutes left
    first = left_s(browser, By)
    assert 60 < first <= 120 and "warning" in lease_class(browser, By)
    wait_until(browser, lambda d: left_s(d, By) < first, timeout=4, message="the countdown did not move")

    click_rating(steps(browser, By)[0], 1)                    # a draft save renews the lease
    wait_saved(browser, By)
    wait_until(browser, lambda d: left_s(d, By) > 29 * 60, message="the renewal did not reach the countdown")
    assert left_s(browser, By) <= 30 * 60 and "warning" not in lease_class(browser, By)
    assert leased(row.public_id).expires_at > timezone.now() + 29 * MIN

    # The lease runs out while the page is open. Leaving the page saves the draft (which renews the lease):
    # leave, let that save land, cut the lease to a few seconds, come back with draft saves blocked.
    saved_at = leased(row.public_id).draft_saved_at
    browser.get("about:blank")
    wait_until(browser, lambda d: leased(row.public_id).draft_saved_at != saved_at, message="leaving did not save")
    time.sleep(0.5)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/draft/"]})
    try:
        Assignment.objects.filter(pk=row.pk).update(expires_at=timezone.now() + dt.timedelta(seconds=4))
        browser.get(f"{live_server.url}/label/")
        wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#steps li.step"), message="no task")
        assert left_s(browser, By) <= 4
        wait_until(browser, lambda d: "expired" in lease_class(d, By), message="the end of the lease was not shown")
    finally:
        browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    assert browser.find_element(By.ID, "lease").text == "Time is up"
    status = browser.find_element(By.ID, "status")
    assert status.is_displayed() and "ran out" in status.text and "Take the next task" in status.text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
