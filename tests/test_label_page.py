"""The labeling page in real headless Chromium against the live server and the real API: rating by mouse and
keys, math, alternatives, a bad problem, text never taken as HTML, who may open it."""
import json
import os
from pathlib import Path

import pytest

from labeling.models import Annotation, Assignment, Completion, StepLabel
from tests.browser import wait_until
from tests.label_page_ui import (STEPS, click_rating, keys, make_task, open_page, pressed, ready, steps, ui,
                                 wait_saved, wait_submitted)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def screenshot(browser, path):
    size = browser.get_window_size()
    browser.set_window_size(1200, 1240)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(path))
    browser.set_window_size(size["width"], size["height"])


def no_script_ran(browser):
    assert browser.execute_script("return window.__alerts") == []
    assert browser.execute_script("return window.__xss === undefined")


@ui
def test_it_rates_by_mouse_and_keyboard_renders_math_and_submits(browser, live_server, bob, By, tmp_path_factory):
    ready(bob)
    make_task(priority=2.0)
    open_page(browser, live_server, By)
    assignment = Assignment.objects.get()
    assert browser.current_url.endswith(f"/label/{assignment.public_id}/")

    assert browser.find_elements(By.CSS_SELECTOR, "#problem .katex")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#steps .katex")) >= 4
    assert browser.find_elements(By.CSS_SELECTOR, "#steps .katex-display")  # \[...\] and $$...$$
    assert browser.find_element(By.ID, "answer-hint").text.startswith("(Answer:")
    assert "Keys" in browser.find_element(By.CSS_SELECTOR, ".keys").text

    items = steps(browser, By)
    assert "current" in items[0].get_attribute("class")
    assert [i.get_attribute("aria-disabled") for i in items] == ["false", "true", "true", "true"]
    click_rating(items[0], 1)                       # mouse
    assert pressed(items[0]) == 1 and items[1].get_attribute("aria-disabled") == "false"
    keys(browser, "f", "2")                          # keyboard: step 2 flagged unsure, then neutral
    assert pressed(items[1]) == 0
    assert items[1].find_element(By.CSS_SELECTOR, ".flag").get_attribute("aria-pressed") == "true"
    assert "current" in items[2].get_attribute("class")
    keys(browser, "+")
    assert pressed(items[2]) == 1
    keys(browser, "u")                               # undo reopens step 3
    assert pressed(items[2]) is None and "current" in items[2].get_attribute("class")
    keys(browser, "k", "j")                          # navigation lands back on step 3
    assert "current" in items[2].get_attribute("class")
    wait_saved(browser, By)
    # STEPWISE_SCREENSHOTS=1 refreshes the committed picture; a plain run leaves the tree clean.
    target = DOCS if os.environ.get("STEPWISE_SCREENSHOTS") else tmp_path_factory.mktemp("shots")
    screenshot(browser, target / "labeling-page.png")
    assert (target / "labeling-page.png").stat().st_size > 10_000

    assert browser.find_element(By.ID, "submit").get_attribute("disabled") == "true"
    keys(browser, "3", "3")
    assert browser.find_element(By.ID, "submit").is_enabled()
    assert "ready to submit" in browser.find_element(By.ID, "progress").text
    keys(browser, "\ue007")                          # Enter
    wait_submitted(browser, By)

    annotation = Annotation.objects.get()
    assert annotation.finish_reason == "solution"
    assert annotation.total_time_ms > 0
    assert annotation.annotator.user == bob
    labels = StepLabel.objects.filter(annotation=annotation).order_by("index")
    assert [label.index for label in labels] == [0, 1, 2, 3]
    rated = Completion.objects.filter(annotation=annotation, index=0).order_by("step_index")
    assert [(c.rating, bool(c.flagged)) for c in rated] == [(1, False), (0, True), (1, False), (1, False)]
    assert rated[0].text == STEPS[0]
    wait_until(browser, lambda d: d.find_element(By.ID, "empty").is_displayed(), message="no 'No more tasks'")
    assert "No more tasks" in browser.find_element(By.ID, "empty").text



@ui
def test_it_stops_at_the_first_negative_step_and_rates_the_alternatives(browser, live_server, bob, By):
    ready(bob)
    alternatives = {"2": [r"Instead, the sum of the roots is $-b/a = 5$.", "The roots sum to $6$."]}
    make_task(steps=STEPS + ["Extra step after the answer."], alternatives=alternatives, human=True)
    open_page(browser, live_server, By)
    items = steps(browser, By)
    click_rating(items[0], 1)
    click_rating(items[1], 0)
    click_rating(items[2], -1)
    assert [i.get_attribute("aria-disabled") for i in items] == ["false", "false", "false", "true", "true"]
    for later in items[3:]:
        assert not any(b.is_enabled() for b in later.find_elements(By.CSS_SELECTOR, ".rate"))
    alts = browser.find_elements(By.CSS_SELECTOR, "#alternative-list > li.step")
    assert len(alts) == 2 and alts[0].find_elements(By.CSS_SELECTOR, ".katex")
    assert browser.find_element(By.ID, "submit").get_attribute("disabled") == "true"  # alternatives unrated
    keys(browser, "3", "1", "f")                     # keys rate the alternatives in turn
    assert pressed(alts[0]) == 1 and pressed(alts[1]) == -1
    browser.find_element(By.ID, "human-completion").send_keys("The sum is $2 + 3 = 5$.")
    browser.find_element(By.ID, "submit").click()
    wait_submitted(browser, By)

    annotation = Annotation.objects.get()
    assert annotation.finish_reason == "found_error"
    assert StepLabel.objects.filter(annotation=annotation).count() == 3
    completions = {(c.step_index, c.text): (c.rating, bool(c.flagged))
                   for c in Completion.objects.filter(annotation=annotation)}
    assert completions[(2, STEPS[2])] == (-1, False)
    assert completions[(2, alternatives["2"][0])] == (1, False)
    assert completions[(2, alternatives["2"][1])] == (-1, True)
    assert not Completion.objects.filter(annotation=annotation, step_index__gte=3).exists()
    assert "2 + 3 = 5" in json.dumps(human_completion_of(annotation))



def human_completion_of(annotation):
    """Wherever the API keeps it: the -1 step's human text, or a completion row."""
    label = StepLabel.objects.get(annotation=annotation, index=2)
    texts = [label.human_text] + list(Completion.objects.filter(annotation=annotation).values_list("text", flat=True))
    return [t for t in texts if t and "2 + 3 = 5" in t]



@ui
def test_it_submits_a_bad_problem_with_a_reason(browser, live_server, bob, By):
    ready(bob)
    make_task(priority=1.0)
    second = make_task(problem="Second problem: what is $1+1$?", steps=["$1+1=2$.", "# Answer\n\n2"], answer="2")
    open_page(browser, live_server, By)
    click_rating(steps(browser, By)[0], 1)
    browser.find_element(By.ID, "bad-problem").click()
    reason = browser.find_element(By.ID, "reason")
    wait_until(browser, lambda d: reason.is_displayed())
    browser.find_element(By.ID, "reason-submit").click()            # no reason yet: refused on the page
    assert "reason" in browser.find_element(By.ID, "status").text
    reason.send_keys("The problem statement is ambiguous.")
    browser.find_element(By.ID, "reason-submit").click()
    wait_submitted(browser, By)

    annotation = Annotation.objects.get()
    assert annotation.finish_reason == "bad_problem"
    assert Assignment.objects.get(annotation=annotation).reason == "The problem statement is ambiguous."
    # The next task follows by itself.
    wait_until(browser, lambda d: "Second problem" in d.find_element(By.ID, "problem").text)
    assert Assignment.objects.get(status="leased").task == second



@ui
def test_it_shows_step_text_as_text_never_as_html(browser, live_server, bob, By):
    ready(bob)
    evil = ["<script>alert(1)</script> and $x^2$", "<img src=x onerror=\"window.__xss=1;alert(2)\"> then",
            "<b>not bold</b> & \\(y\\)"]
    make_task(steps=evil, problem="<img src=y onerror=alert(3)> Problem with $z$", answer="<i>5</i>")
    open_page(browser, live_server, By)
    items = steps(browser, By)
    assert "<script>alert(1)</script> and" in items[0].text
    assert '<img src=x onerror="window.__xss=1;alert(2)"> then' in items[1].text
    assert "<b>not bold</b> &" in items[2].text
    assert "<img src=y onerror=alert(3)>" in browser.find_element(By.ID, "problem").text
    app = browser.find_element(By.ID, "label-app")
    assert not app.find_elements(By.CSS_SELECTOR, "img, b, i, script")
    assert browser.find_elements(By.CSS_SELECTOR, "#steps .katex")
    no_script_ran(browser)



@ui
def test_a_huge_rule_in_a_step_stays_inside_it_and_the_buttons_stay_clickable(browser, live_server, bob, By):
    ready(bob)
    make_task(steps=[r"A wide one: $\rule{100000em}{1em}$ and $x$.", r"A tall one: $\rule{1em}{100000em}$.",
                     "# Answer\n\n5"])
    open_page(browser, live_server, By)
    items = steps(browser, By)
    font, rule_widths, rule_heights = browser.execute_script(
        "const rules = [...document.querySelectorAll('#steps .katex .rule')];"
        "return [parseFloat(getComputedStyle(document.querySelector('#steps .katex')).fontSize),"
        " rules.map(r => r.getBoundingClientRect().width), rules.map(r => r.getBoundingClientRect().height)];")
    assert len(rule_widths) == 2
    assert max(rule_widths + rule_heights) <= 20.5 * font  # KaTeX's maxSize caps every user size at 20em
    for item in items:
        step, container = (browser.execute_script("return arguments[0].getBoundingClientRect().width", e)
                           for e in (item, browser.find_element(By.ID, "steps")))
        assert step <= container + 1
    for i, item in enumerate(items[:2]):
        button = item.find_element(By.CSS_SELECTOR, ":scope > .step-body > .step-actions .rate[data-rating='1']")
        # what a click at the button's centre lands on is the button, not the rule drawn over it
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        hit = browser.execute_script("const r = arguments[0].getBoundingClientRect();"
                                     "return arguments[0].contains("
                                     "  document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));", button)
        assert hit, f"step {i + 1}'s +1 button is covered"
        click_rating(item, 1)
        assert pressed(item) == 1


@pytest.mark.django_db
def test_it_guards_the_page(client, bob, django_user_model):
    assert client.get("/label/").url.startswith("/login/")
    carol = django_user_model.objects.create_user("carol", password="carol-pw")
    from labeling.services.annotation.accounts import annotator_create
    other = annotator_create(username="dave", password="dave-pw-long-enough")
    task = make_task()
    from django.utils import timezone
    theirs = Assignment.objects.create(task=task, annotator=other, leased_at=timezone.now(),
                                       expires_at=timezone.now())
    client.force_login(bob)
    page = client.get("/label/")
    assert page.status_code == 200 and b"label.js" in page.content and b"katex.min.js" in page.content
    assert b"cdn" not in page.content.lower()
    assert client.get(f"/label/{theirs.public_id}/").status_code == 404
    assert b"Check the queue" in client.get("/").content or b"Start labeling" in client.get("/").content
    client.force_login(carol)
    assert client.get("/label/").status_code == 200
