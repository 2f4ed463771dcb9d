"""In real Chromium: an admin opens a solution and sees the rollouts' Q, A and estimated first error beside
the annotators' labels (estimate rows made directly; no model runs here)."""
import pytest

from labeling.models import Annotator, Problem, Solution
from tests.browser import chromium, log_in, wait_until
from tests.label_factories import annotation_make
from tests.rollout_factories import estimates_make


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.mark.django_db(transaction=True)
def test_an_admin_sees_rollout_values_beside_the_human_labels(browser, live_server, alice, bob):
    from selenium.webdriver.common.by import By

    problem = Problem.objects.create(text="What is $1+1$?", answer="2")
    solution = Solution.objects.create(problem=problem, steps=["One plus one.", "It is $3$.", "# Answer\n\n3"],
                                       final_answer="3")
    annotation_make(annotator=bob.annotator, solution=solution, ratings=[1, -1])
    annotation_make(annotator=Annotator.objects.create(), solution=solution, ratings=[1, 1, 1])
    estimates_make(solution, {0: (6, 8), 1: (5, 8), 2: (0, 8), 3: (0, 8)})

    log_in(browser, live_server.url, "alice", "alice-pw", next_path=f"/admin/labeling/solution/{solution.id}/change/")
    if f"/solution/{solution.id}/change/" not in browser.current_url:
        browser.get(f"{live_server.url}/admin/labeling/solution/{solution.id}/change/")
    wait_until(browser, lambda d: d.find_elements(By.ID, "rollout-steps"), message="no rollout section")

    assert browser.find_element(By.ID, "rollout-first-error").text == "step 2"
    rows = {int(tr.get_attribute("data-step")): tr
            for tr in browser.find_elements(By.CSS_SELECTOR, "#rollout-steps tbody tr")}
    assert sorted(rows) == [0, 1, 2, 3]
    assert [rows[k].get_attribute("data-q") for k in range(4)] == ["0.750", "0.625", "0.000", "0.000"]
    assert [rows[k].get_attribute("data-a") for k in range(1, 4)] == ["-0.125", "-0.625", "0.000"]
    cells = [td.text for td in rows[2].find_elements(By.TAG_NAME, "td")]
    # step, text, bob's rating, the other annotator's, Q (correct/n), interval, A, marks
    assert cells[0] == "2" and cells[1] == "It is $3$." and cells[2] == "−1" and cells[3] == "+1"
    assert cells[4] == "0.000 (0/8)" and cells[6] == "-0.625"
    assert "first error (rollouts)" in cells[7] and "first error (human)" in cells[7]
    humans = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".human-first-error")]
    assert humans == ["bob: step 2", f"{Annotator.objects.order_by('id').last()}: no error"]
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
