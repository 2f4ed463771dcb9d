"""The labeling page driven as an annotator drives it: a task to label, a login, clicks and keys, waits."""
import pytest

from labeling.models import Annotation, Problem, Round, Solution, Task
from tests.browser import log_in, wait_until

ui = pytest.mark.django_db(transaction=True)

PROBLEM = r"What is the sum of all values of $x$ that satisfy $x^2 - 5x + 6 = 0$?"
STEPS = [
    r"I can factor the quadratic: $x^2 - 5x + 6 = (x-2)(x-3)$.",
    r"So the solutions are \(x = 2\) and \(x = 3\), and their sum is \[2 + 3 = 5.\]",
    r"As a check, Vieta's formulas give the sum of the roots as $$-\frac{b}{a} = -\frac{-5}{1} = 5.$$",
    "# Answer\n\n5",
]


def make_task(*, steps=STEPS, problem=PROBLEM, answer="5", alternatives=None, human=False, priority=0.0):
    rnd, _ = Round.objects.get_or_create(number=1, defaults={"allow_human_completion": human})
    if rnd.allow_human_completion != human:
        rnd.allow_human_completion = human
        rnd.save()
    prob = Problem.objects.create(text=problem, answer=answer)
    solution = Solution.objects.create(problem=prob, steps=steps, final_answer=answer)
    return Task.objects.create(solution=solution, round=rnd, priority=priority, alternatives=alternatives or {})


def ready(annotator_user):
    """Annotators in these tests are past screening: the page, not the gate, is under test."""
    annotator = annotator_user.annotator
    annotator.screening_passed = True
    annotator.cleared_by_admin = True
    annotator.save()
    return annotator_user


def open_page(browser, live_server, By):
    log_in(browser, live_server.url, "bob", "bob-pw-long-enough")
    wait_until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#steps li.step") or
               not d.find_element(By.ID, "empty").get_attribute("hidden"), message="the page loaded no task")


def steps(browser, By):
    return browser.find_elements(By.CSS_SELECTOR, "#steps > li.step")


def click_rating(item, rating):
    from selenium.webdriver.common.by import By
    item.find_element(By.CSS_SELECTOR, f":scope > .step-body > .step-actions .rate[data-rating='{rating}']").click()


def pressed(item):
    from selenium.webdriver.common.by import By
    buttons = item.find_elements(By.CSS_SELECTOR, ":scope > .step-body > .step-actions .rate[aria-pressed='true']")
    return int(buttons[0].get_attribute("data-rating")) if buttons else None


def keys(browser, *sequence):
    from selenium.webdriver.common.action_chains import ActionChains
    chain = ActionChains(browser)
    for key in sequence:
        chain.send_keys(key)
    chain.perform()


def wait_saved(browser, By):
    wait_until(browser, lambda d: d.find_element(By.ID, "save-status").text == "Saved", message="draft not saved")


def wait_submitted(browser, By):
    wait_until(browser, lambda d: Annotation.objects.exists(), message="no annotation was stored")
    wait_until(browser, lambda d: not d.find_element(By.ID, "loading").is_displayed(), message="stuck loading")
