"""The JSON API: auth, next/204, resume, drafts, and who may call what."""
import datetime as dt
import itertools
import json
import uuid

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from labeling.models import Assignment, Task
from labeling.services.annotation.queue import qc_turn
from tests.api_client import api_as, error_of, lease, leased
from tests.queue_factories import round_make, submission, task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


@pytest.fixture
def task(settings):
    settings.STEPWISE_QC_RATE = 0
    return task_make(alternatives={"1": ["An alternative second step."]})


# --- auth ----------------------------------------------------------------------------------------------

def test_it_gives_a_token_for_a_username_and_password(bob, task):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "bob", "password": "bob-pw-long-enough"}, format="json")
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.post("/api/queue/next/").status_code == 200


def test_a_wrong_password_gets_no_token(bob):
    response = APIClient().post("/api/auth/token/", {"username": "bob", "password": "nope"}, format="json")
    assert response.status_code == 400 and "Unable to log in" in error_of(response)["message"]
    response = APIClient().post("/api/auth/token/", {"username": "bob"}, format="json")
    assert response.status_code == 400 and error_of(response)["field"] == "password"


def test_a_bad_token_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = client.post("/api/queue/next/")
    assert response.status_code == 401 and error_of(response)["message"] == "Invalid token."


def test_session_auth_works_with_csrf(bob, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post("/api/queue/next/").status_code == 403  # no CSRF token
    client.get("/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/queue/next/", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and leased(response.json()).task_id == task.id


# --- next, resume ------------------------------------------------------------------------------------

def test_next_gives_the_task_and_nothing_of_its_kind(as_bob, task):
    payload = lease(as_bob)
    assert set(payload) == {"assignment_id", "status", "problem", "steps", "answer_hint", "rollout_hint",
                            "alternatives", "allow_human_completion", "leased_at", "expires_at", "draft",
                            "draft_saved_at"}
    assert leased(payload).task_id == task.id and payload["steps"] == task.solution.steps
    assert payload["problem"] == task.solution.problem.text and payload["answer_hint"] == "42"
    assert payload["alternatives"] == {"1": ["An alternative second step."]}
    assert (payload["allow_human_completion"], payload["draft"], payload["status"]) == (False, None, "leased")
    assert as_bob.post("/api/queue/next/").json() == payload  # resumed, not a second lease


def test_a_qc_task_looks_like_any_task(bob, settings):
    settings.STEPWISE_QC_RATE = 1.0
    task_make()
    qc = task_make(kind=Task.Kind.QC, gold=[1, 1, -1])
    response = api_as(bob).post("/api/queue/next/")
    assert leased(response.json()).task_id == qc.id
    text = response.content.decode()
    assert "qc" not in json.loads(text).values() and "gold" not in text and "kind" not in text


def test_a_qc_task_in_a_round_shows_that_rounds_rules(bob, settings):
    settings.STEPWISE_QC_RATE = 0
    rnd = round_make(qc_rate=0.5, show_answer_hint=False, allow_human_completion=True)
    task_make(round=rnd, priority=2)
    task_make(round=rnd, priority=1)
    task_make(kind=Task.Kind.QC)
    # bob's seeded draw at 0.5 makes his first lease a round task and his second a QC turn
    bob.annotator.labeler = next(u for u in (uuid.UUID(int=i) for i in itertools.count())
                                 if not qc_turn(u, 1, 0.5) and qc_turn(u, 2, 0.5))
    bob.annotator.save()
    client = api_as(bob)
    first = lease(client)
    response = client.post(f"/api/assignments/{first['assignment_id']}/submit/", submission(), format="json")
    assert response.status_code == 201
    second = lease(client)
    assert leased(second).task.kind == "qc"
    same = ("answer_hint", "allow_human_completion", "alternatives", "draft", "status")
    assert {k: first[k] for k in same} == {k: second[k] for k in same} and set(first) == set(second)


def test_the_round_decides_the_hint_and_human_completions(bob, settings):
    settings.STEPWISE_QC_RATE = 0
    task_make(round=round_make(show_answer_hint=False, allow_human_completion=True))
    payload = lease(api_as(bob))
    assert (payload["answer_hint"], payload["allow_human_completion"]) == (None, True)


def test_next_is_204_when_nothing_is_left(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    submit = as_bob.post(f"/api/assignments/{assignment_id}/submit/", submission(), format="json")
    assert submit.status_code == 201
    response = as_bob.post("/api/queue/next/")
    assert response.status_code == 204 and response.content == b""


def test_get_assignment_resumes_with_the_same_payload(as_bob, task):
    payload = lease(as_bob)
    response = as_bob.get(f"/api/assignments/{payload['assignment_id']}/")
    assert response.status_code == 200 and response.json() == payload


# --- drafts ------------------------------------------------------------------------------------------

def test_a_draft_is_saved_and_comes_back(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    draft = {"ratings": [1, 0], "note": "caf\u00e9 \U0001F600", "nested": {"a": [None, True, 1.5]}}
    response = as_bob.put(f"/api/assignments/{assignment_id}/draft/", draft, format="json")
    assert response.status_code == 200 and response.json()["assignment_id"] == assignment_id
    again = as_bob.get(f"/api/assignments/{assignment_id}/").json()
    assert again["draft"] == draft and again["draft_saved_at"] == response.json()["draft_saved_at"]
    assert as_bob.post("/api/queue/next/").json()["draft"] == draft


DEEP = {"a": [1]}
for _ in range(40):
    DEEP = {"a": DEEP}


@pytest.mark.parametrize("body,status,field", [
    ({"x": "y" * 70_000}, 413, None),
    ([1, 2], 400, "draft"),
    ("text", 400, "draft"),
    ({"a": "\u0000"}, 400, "draft.a"),
    (DEEP, 400, None),
])
def test_a_bad_draft_is_refused(as_bob, task, body, status, field):
    assignment_id = lease(as_bob)["assignment_id"]
    response = as_bob.put(f"/api/assignments/{assignment_id}/draft/", body, format="json")
    assert response.status_code == status
    if field:
        assert error_of(response)["field"] == field
    assert leased(assignment_id).draft is None


def test_drafts_close_with_the_lease(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    Assignment.objects.filter(public_id=assignment_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = as_bob.put(f"/api/assignments/{assignment_id}/draft/", {"a": 1}, format="json")
    assert response.status_code == 410 and "expired" in error_of(response)["message"]


# --- permissions ------------------------------------------------------------------------------------------

def annotator_calls(assignment_id):
    return [("post", "/api/queue/next/", None), ("get", f"/api/assignments/{assignment_id}/", None),
            ("put", f"/api/assignments/{assignment_id}/draft/", {"a": 1}),
            ("post", f"/api/assignments/{assignment_id}/submit/", submission())]


def call(client, method, url, body):
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


def test_anonymous_gets_nothing_anywhere(bob, task):
    assignment_id = lease(api_as(bob))["assignment_id"]
    for method, url, body in annotator_calls(assignment_id) + [("get", "/api/queue/", None),
                                                              ("get", "/api/schema/", None)]:
        response = call(APIClient(), method, url, body)
        assert response.status_code in (401, 403), url
        assert error_of(response)["message"]
    assert leased(assignment_id).draft is None


def test_an_annotator_reaches_the_labeling_api_and_the_schema_but_not_admin_urls(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    for method, url, body in annotator_calls(assignment_id):
        assert call(as_bob, method, url, body).status_code in (200, 201), url
    assert as_bob.get("/api/schema/").status_code == 200
    response = as_bob.get("/api/queue/")
    assert response.status_code == 403 and error_of(response)["message"]


def test_an_admin_sees_the_queue_and_the_schema(alice, task):
    client = api_as(alice)
    summary = client.get("/api/queue/")
    assert summary.status_code == 200 and summary.json()["tasks"]["round"]["tasks"] == 1
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert {"/api/queue/next/", "/api/assignments/{assignment_id}/submit/"} <= set(schema.json()["paths"])
    # alice has no annotator profile: she cannot take tasks
    response = client.post("/api/queue/next/")
    assert response.status_code == 403 and error_of(response)["message"] == "this login is not an annotator"


def test_an_admin_who_is_also_an_annotator_can_label(task):
    from labeling.services.annotation.accounts import annotator_create
    admin = annotator_create(username="dora", password="dora-pw-long-enough", admin=True).user
    assert api_as(admin).post("/api/queue/next/").status_code == 200
