"""The JSON API's submit: 201 and replay, every refusal named, bodies that are not JSON."""
import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from labeling.models import Annotation, Assignment
from tests.api_client import api_as, error_of, lease, leased
from tests.dbstate import snapshot
from tests.queue_factories import annotator_make, ratings, submission, task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


@pytest.fixture
def task(settings):
    settings.STEPWISE_QC_RATE = 0
    return task_make(alternatives={"1": ["An alternative second step."]})


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


def test_a_replay_with_another_body_is_409_not_the_old_annotation(as_bob, task):
    assignment_id = lease(as_bob)["assignment_id"]
    body = submission(ratings=ratings(1, -1), finish_reason="found_error",
                      alternative_ratings=[{"index": 0, "rating": 1, "flagged": False}])
    assert as_bob.post(f"/api/assignments/{assignment_id}/submit/", body, format="json").status_code == 201
    state = snapshot()
    stale = {**body, "ratings": ratings(1, 1, 1, 1), "finish_reason": "solution", "alternative_ratings": []}
    response = as_bob.post(f"/api/assignments/{assignment_id}/submit/", stale, format="json")
    assert response.status_code == 409 and error_of(response)["field"] == "client_id"
    assert snapshot() == state


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
    Assignment.objects.filter(public_id=assignment_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
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
                     carol.get(f"/api/assignments/{leased(assignment_id).pk}/"),
                     carol.get("/api/assignments/00000000-0000-4000-8000-000000000000/"),
                     carol.post("/api/assignments/99999999999999999999999/submit/", submission(), format="json")):
        assert response.status_code == 404 and error_of(response)["message"]
    assert leased(assignment_id).status == "leased"


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
