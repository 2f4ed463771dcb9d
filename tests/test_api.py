"""The JSON API: auth, next/204, resume, drafts, submit and replay, every refusal named, permissions."""
import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Annotation, Assignment, Task
from tests.dbstate import snapshot
from tests.queue_factories import annotator_make, ratings, round_make, submission, task_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """bob's password is hashed once per test: a fast hasher keeps 50 tests from taking 20 s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def api_as(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def as_bob(bob):
    return api_as(bob)


@pytest.fixture
def task(settings):
    settings.STEPWISE_QC_RATE = 0
    return task_make(alternatives={"1": ["An alternative second step."]})


def lease(client):
    response = client.post("/api/queue/next/")
    assert response.status_code == 200, response.content
    return response.json()


def error_of(response):
    assert response["Content-Type"].split(";")[0] in ("application/json", "application/vnd.oai.openapi+json"), (
        response["Content-Type"], response.content[:200])
    return json.loads(response.content)["error"]


# --- auth ----------------------------------------------------------------------------------------------

def test_it_gives_a_token_for_a_username_and_password(bob, task):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "bob", "password": "bob-pw"}, format="json")
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
    assert response.status_code == 200 and response.json()["task_id"] == task.id


# --- next, resume ------------------------------------------------------------------------------------

def test_next_gives_the_task_and_nothing_of_its_kind(as_bob, task):
    payload = lease(as_bob)
    assert set(payload) == {"assignment_id", "task_id", "status", "problem", "steps", "answer_hint", "alternatives",
                            "allow_human_completion", "leased_at", "expires_at", "draft", "draft_saved_at"}
    assert payload["task_id"] == task.id and payload["steps"] == task.solution.steps
    assert payload["problem"] == task.solution.problem.text and payload["answer_hint"] == "42"
    assert payload["alternatives"] == {"1": ["An alternative second step."]}
    assert (payload["allow_human_completion"], payload["draft"], payload["status"]) == (False, None, "leased")
    assert as_bob.post("/api/queue/next/").json() == payload  # resumed, not a second lease


def test_a_qc_task_looks_like_any_task(bob, settings):
    settings.STEPWISE_QC_RATE = 1.0
    task_make()
    qc = task_make(kind=Task.Kind.QC, gold=[1, 1, -1])
    response = api_as(bob).post("/api/queue/next/")
    assert response.json()["task_id"] == qc.id
    text = response.content.decode()
    assert "qc" not in json.loads(text).values() and "gold" not in text and "kind" not in text


def test_a_qc_task_in_a_round_shows_that_rounds_rules(bob, settings):
    settings.STEPWISE_QC_RATE = 0
    rnd = round_make(qc_rate=0.5, show_answer_hint=False, allow_human_completion=True)
    task_make(round=rnd, priority=2)
    task_make(round=rnd, priority=1)
    task_make(kind=Task.Kind.QC)
    client = api_as(bob)
    first = lease(client)
    response = client.post(f"/api/assignments/{first['assignment_id']}/submit/", submission(), format="json")
    assert response.status_code == 201
    second = lease(client)
    assert Task.objects.get(pk=second["task_id"]).kind == "qc"
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
    assert Assignment.objects.get(pk=assignment_id).draft is None


def test_drafts_close_with_the_lease(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    Assignment.objects.filter(pk=assignment_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = as_bob.put(f"/api/assignments/{assignment_id}/draft/", {"a": 1}, format="json")
    assert response.status_code == 410 and "expired" in error_of(response)["message"]


# --- submit --------------------------------------------------------------------------------------------

def test_submit_is_201_and_a_replay_200_with_the_same_body(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    body = submission(ratings=ratings(1, -1), finish_reason="found_error",
                      alternative_ratings=[{"index": 0, "rating": 1, "flagged": False}])
    first = as_bob.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["assignment_id"] == assignment_id and first.json()["client_id"] == body["client_id"]
    state = snapshot()
    again = as_bob.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")
    assert again.status_code == 200 and again.content == first.content
    assert snapshot() == state and Annotation.objects.count() == 1
    response = as_bob.get(f"/api/assignments/{assignment_id}/")
    assert response.status_code == 200 and response.json()["status"] == "submitted"


def test_a_client_id_reused_for_another_assignment_is_409(as_bob, task):
    body = submission()
    first = lease(as_bob)["assignment_id"]
    assert as_bob.post(f"/api/assignments/{first}/submit/", body, format="json").status_code == 201
    task_make()
    second = lease(as_bob)["assignment_id"]
    response = as_bob.post(f"/api/assignments/{second}/submit/", body, format="json")
    assert response.status_code == 409 and error_of(response)["field"] == "client_id"


INVALID = [
    ("ratings[1].rating", submission(ratings=[{"step": 0, "rating": 1}, {"step": 1, "rating": "1"}])),
    ("ratings[1]", submission(ratings=ratings(-1, 1), finish_reason="found_error")),
    ("ratings[4].step", submission(ratings=ratings(1, 1, 1, 1, 1))),
    ("ratings[1].step", submission(ratings=[{"step": 0, "rating": 1}, {"step": 2, "rating": 1}])),
    ("ratings[0].rating", submission(ratings=ratings(7, 1, 1, 1))),
    ("ratings[0].rating", submission(ratings=[{"step": 0, "rating": True}])),
    ("ratings[0].rating", submission(ratings=[{"step": 0, "rating": 1.0}])),
    ("ratings[0].flagged", submission(ratings=[{"step": 0, "rating": 1, "flagged": "no"}])),
    ("ratings[0].rating", submission(ratings=[{"step": 0}])),
    ("ratings[0].colour", submission(ratings=[{"step": 0, "rating": 1, "colour": "red"}])),
    ("ratings", submission(ratings={"0": 1})),
    ("finish_reason", submission(finish_reason="found_error")),
    ("finish_reason", submission(ratings=ratings(1, -1), finish_reason="solution")),
    ("finish_reason", submission(ratings=ratings(1, 1), finish_reason="solution")),
    ("finish_reason", submission(finish_reason="give_up", reason="bored")),
    ("finish_reason", submission(finish_reason=3)),
    ("reason", submission(ratings=ratings(1), finish_reason="bad_problem")),
    ("reason", submission(ratings=ratings(1), finish_reason="bad_problem", reason=7)),
    ("total_time_ms", submission(total_time_ms="12")),
    ("total_time_ms", {k: v for k, v in submission().items() if k != "total_time_ms"}),
    ("client_id", submission(client_id="123")),
    ("client_id", submission(client_id=12345)),
    ("alternative_ratings", submission(alternative_ratings=[{"index": 0, "rating": 1}])),
    ("alternative_ratings[0].index", submission(ratings=ratings(1, -1), finish_reason="found_error",
                                                alternative_ratings=[{"index": 3, "rating": 1}])),
    ("human_completion", submission(ratings=ratings(1, -1), finish_reason="found_error", human_completion="x")),
    ("extra", {**submission(), "extra": 1}),
    (None, [submission()]),
]


@pytest.mark.parametrize("field,body", INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_an_invalid_submission_is_400_naming_the_field(as_bob, task, field, body):
    assignment_id = lease(as_bob)["assignment_id"]
    state = snapshot()
    response = as_bob.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["field"] == field and error["message"], error
    assert snapshot() == state


def test_an_expired_lease_cannot_be_submitted(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    Assignment.objects.filter(pk=assignment_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = as_bob.post(f"/api/assignments/{assignment_id}/submit/", submission(), format="json")
    assert response.status_code == 410 and "expired" in error_of(response)["message"]
    assert as_bob.get(f"/api/assignments/{assignment_id}/").status_code == 410


def test_another_annotators_assignment_is_404_everywhere(as_bob, task):
    carol = api_as(annotator_make().user)
    assignment_id = lease(as_bob)["assignment_id"]
    for response in (carol.get(f"/api/assignments/{assignment_id}/"),
                     carol.put(f"/api/assignments/{assignment_id}/draft/", {}, format="json"),
                     carol.post(f"/api/assignments/{assignment_id}/submit/", submission(), format="json"),
                     carol.get("/api/assignments/999999/"),
                     carol.post("/api/assignments/99999999999999999999999/submit/", submission(), format="json")):
        assert response.status_code == 404 and error_of(response)["message"]
    assert Assignment.objects.get(pk=assignment_id).status == "leased"


def test_bodies_that_are_not_json_are_4xx_json(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    url = f"/api/assignments/{assignment_id}/submit/"
    cases = [
        (b"{not json", "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b'{"total_time_ms": NaN}', "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (b"ratings=1", "application/x-www-form-urlencoded", 415),
        (b"x" * (2 * 1024 * 1024), "application/json", 413),
        (b"", "application/json", 400),
        (b'{"\\ud800": 1}', "application/json", 400),          # quoted back in the error: escaped
        (b'{"finish_reason": "\\ud800"}', "application/json", 400),
    ]
    for data, content_type, status in cases:
        response = as_bob.generic("POST", url, data, content_type=content_type)
        assert response.status_code == status, (data[:20], response.content[:200])
        assert error_of(response)["message"]


def test_unknown_api_urls_are_json_404s(as_bob):
    for response in (as_bob.get("/api/nope/"), as_bob.post("/api/queue/next"), APIClient().get("/api/x")):
        assert response.status_code == 404 and error_of(response)["message"]
    response = as_bob.get("/api/queue/next/")
    assert response.status_code == 405 and error_of(response)["message"]


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
    assert Assignment.objects.get(pk=assignment_id).draft is None


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
    admin = annotator_create(username="dora", password="x", admin=True).user
    assert api_as(admin).post("/api/queue/next/").status_code == 200
