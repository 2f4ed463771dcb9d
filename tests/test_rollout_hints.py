"""The annotator's rollout hint: the estimated first error shows only where the round turns hints on."""
import pytest

from labeling.models import Round
from tests.api_client import api_as, lease
from tests.label_page_ui import make_task, open_page, ready
from tests.queue_factories import round_make, task_make
from tests.rollout_factories import estimates_make

pytestmark = [pytest.mark.usefixtures("fast_passwords")]


def leased_with_rollouts(bob, settings, counts, **round_fields):
    settings.STEPWISE_QC_RATE = 0
    task = task_make(round=round_make(**round_fields), n_steps=4)
    estimates_make(task.solution, counts)
    return lease(api_as(bob))


@pytest.mark.django_db
def test_hints_are_off_by_default_and_never_shown_then(bob, settings):
    payload = leased_with_rollouts(bob, settings, {0: (4, 4), 1: (4, 4), 2: (0, 4), 3: (0, 4), 4: (0, 4)})
    assert payload["rollout_hint"] is None


@pytest.mark.django_db
def test_a_round_with_hints_on_shows_the_estimated_first_error(bob, settings):
    payload = leased_with_rollouts(bob, settings, {0: (4, 4), 1: (4, 4), 2: (0, 4), 3: (0, 4), 4: (0, 4)},
                                   rollout_hints=True)
    assert payload["rollout_hint"] == {"first_error": 2}  # 1-based, as the page numbers steps


@pytest.mark.django_db
def test_no_error_and_undecided_estimates(bob, settings, django_user_model):
    payload = leased_with_rollouts(bob, settings, {0: (3, 4), 4: (1, 4)}, rollout_hints=True)
    assert payload["rollout_hint"] == {"first_error": None}  # the whole solution still reaches the answer


@pytest.mark.django_db
def test_a_prover_that_cannot_solve_the_problem_gives_no_hint(bob, settings):
    payload = leased_with_rollouts(bob, settings, {0: (0, 4), 1: (0, 4), 2: (0, 4), 3: (0, 4), 4: (0, 4)},
                                   rollout_hints=True)
    assert payload["rollout_hint"] is None


@pytest.mark.parametrize("hints", [True, False])
@pytest.mark.django_db(transaction=True)
def test_the_label_page_shows_the_hint_only_when_on(browser, live_server, bob, By, hints):
    ready(bob)
    task = make_task()
    Round.objects.filter(pk=task.round_id).update(rollout_hints=hints)
    estimates_make(task.solution, {0: (4, 4), 1: (4, 4), 2: (0, 4), 3: (0, 4), 4: (0, 4)})
    open_page(browser, live_server, By)
    hint = browser.find_element(By.ID, "rollout-hint")
    if hints:
        assert hint.is_displayed() and "the first wrong step may be step 2" in hint.text
    else:
        assert not hint.is_displayed() and hint.text == ""


@pytest.mark.django_db
def test_a_round_records_its_hint_setting_and_selection_rule(alice, client):
    from labeling.models import Problem
    from labeling.services.rounds.stages import RoundParameters, round_start

    Problem.objects.create(text="What is 2+2?", answer="4", split="train")
    assert round_start(params=RoundParameters()).rollout_hints is False  # off by default
    hinted = round_start(params=RoundParameters(rollout_hints=True, selection_rule="disagreement"))
    assert hinted.rollout_hints is True and hinted.parameters["selection_rule"] == "disagreement"
    client.force_login(alice)
    form = client.get("/admin/labeling/round/start/").content.decode()
    assert 'name="rollout_hints"' in form and 'name="selection_rule"' in form
