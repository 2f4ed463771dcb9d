"""The labeling page in real headless Chromium when things go wrong: a draft survives a reload, a save or
submit retries until the network is back, an API error reaches the annotator."""
from labeling.models import Annotation, Assignment
from tests.browser import wait_until
from tests.label_page_ui import (click_rating, keys, make_task, open_page, pressed, ready, steps, ui, wait_saved,
                                 wait_submitted)


@ui
def test_it_restores_the_draft_after_a_reload(browser, live_server, bob, By):
    ready(bob)
    make_task()
    open_page(browser, live_server, By)
    items = steps(browser, By)
    click_rating(items[0], 1)
    keys(browser, "-", "u", "f", "0")
    wait_saved(browser, By)
    assignment = Assignment.objects.get()
    assert assignment.draft["ratings"] == [1, 0] and assignment.draft["flags"][1] is True
    client_id = assignment.draft["client_id"]

    browser.execute_script("localStorage.clear()")   # the server's copy alone must bring it back
    browser.refresh()
    wait_until(browser, lambda d: len(steps(d, By)) == 4)
    items = steps(browser, By)
    assert [pressed(i) for i in items] == [1, 0, None, None]
    assert items[1].find_element(By.CSS_SELECTOR, ".flag").get_attribute("aria-pressed") == "true"
    assert "current" in items[2].get_attribute("class")
    keys(browser, "3", "3")
    wait_saved(browser, By)
    keys(browser, "\ue007")
    wait_submitted(browser, By)
    annotation = Annotation.objects.get()
    assert str(annotation.client_id) == client_id and annotation.finish_reason == "solution"



@ui
def test_it_retries_a_failed_save_and_submit_until_the_network_is_back(browser, live_server, bob, By):
    ready(bob)
    make_task()
    open_page(browser, live_server, By)
    wait_saved(browser, By)
    browser.set_network_conditions(offline=True, latency=0, download_throughput=-1, upload_throughput=-1)
    try:
        click_rating(steps(browser, By)[0], 1)
        wait_until(browser, lambda d: "Not saved — retrying" in d.find_element(By.ID, "save-status").text)
        keys(browser, "3", "3", "3", "\ue007")
        wait_until(browser, lambda d: "Not submitted — retrying" in d.find_element(By.ID, "save-status").text)
        assert not Annotation.objects.exists()
    finally:
        browser.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
    wait_until(browser, lambda d: Annotation.objects.exists(), timeout=20)
    wait_until(browser, lambda d: d.find_element(By.ID, "empty").is_displayed())
    assert Annotation.objects.get().finish_reason == "solution"



@ui
def test_it_shows_api_errors_to_the_annotator(browser, live_server, bob, By):
    ready(bob)
    make_task()
    open_page(browser, live_server, By)
    Assignment.objects.update(status=Assignment.Status.EXPIRED)   # the lease was taken away meanwhile
    keys(browser, "3", "3", "3", "3", "\ue007")
    status = browser.find_element(By.ID, "status")
    wait_until(browser, lambda d: status.is_displayed() and status.text.startswith("Not submitted:"))
    assert "expired" in status.text and not Annotation.objects.exists()
    status.find_element(By.XPATH, ".//button[.='Take the next task']").click()
    wait_until(browser, lambda d: d.find_element(By.ID, "empty").is_displayed())
    assert not status.is_displayed()
