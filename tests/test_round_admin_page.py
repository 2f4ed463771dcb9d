"""Starting a round from the admin in real Chromium: the progress bar moves while annotators work."""
import time

import pytest

from labeling.models import Round, RoundSelection
from labeling.services.annotation.queue import tasks_enqueue
from tests.browser import chromium, log_in, wait_until
from tests.round_factories import make_candidates, register_selector
from tests.tiny_models import build_token_classifier

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.mark.django_db(transaction=True)
def test_an_admin_starts_a_round_and_watches_it_while_an_annotator_works(browser, live_server, alice, bob, settings,
                                                                         tmp_path, client):
    from selenium.webdriver.common.by import By
    from django.db import connection

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # Shared-cache in-memory SQLite locks whole tables and never waits, so a round thread beside the
        # live server fails at once; the demo's file database waits (timeout 30 s). This runs on PostgreSQL.
        pytest.skip("needs a database that lets two threads write: runs in the PostgreSQL pass")

    settings.STEPWISE_SCORING_CHUNK = 8
    settings.STEPWISE_SCORING_BATCH = 1
    # Enough work (240 forward passes of a 256-wide model) that the bar, polled every second, shows it moving.
    register_selector(build_token_classifier(tmp_path / "prm", hidden_size=256, intermediate_size=512,
                                             num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4))
    make_candidates(n_problems=6, per_problem=40)
    tasks_enqueue()
    annotator = bob.annotator
    annotator.screening_passed = annotator.cleared_by_admin = True
    annotator.save()

    log_in(browser, live_server.url, "alice", "alice-pw", next_path="/admin/labeling/round/")
    if "/admin/labeling/round/" not in browser.current_url:
        browser.get(f"{live_server.url}/admin/labeling/round/")
    # The admin shows object tools in capitals, so find the link by where it goes.
    browser.find_element(By.CSS_SELECTOR, ".object-tools a[href$='/labeling/round/start/']").click()
    browser.find_element(By.ID, "id_per_problem").clear()
    browser.find_element(By.ID, "id_per_problem").send_keys("2")
    browser.find_element(By.CSS_SELECTOR, "#start-round input[type=submit]").click()
    wait_until(browser, lambda d: "/change/" in d.current_url, message="no redirect to the round's page")

    bar = browser.find_element(By.CSS_SELECTOR, "#round-progress progress")
    seen, served = [], None
    deadline = time.time() + 120
    while time.time() < deadline:
        value, status = float(bar.get_attribute("value")), bar.get_attribute("data-status")
        seen.append(value)
        if served is None and status == "scoring" and 0 < value < 1:
            client.force_login(bob)  # meanwhile an annotator is served work
            served = client.post("/api/queue/next/", content_type="application/json", data="{}").status_code
        if status in ("done", "failed"):
            break
        time.sleep(0.1)
    round_ = Round.objects.get()
    assert round_.status == Round.Status.DONE, round_.error
    assert bar.get_attribute("data-status") == "done" and float(bar.get_attribute("value")) == 1.0
    moving = sorted({v for v in seen if 0 < v < 1})
    assert len(moving) >= 2, f"the bar never moved: {seen[:20]}"
    assert seen == sorted(seen), "the bar went backwards"
    assert served in (200, 201), served
    assert RoundSelection.objects.filter(round=round_).count() == 12
    assert "done" in browser.find_element(By.CSS_SELECTOR, "#round-progress .label").text
