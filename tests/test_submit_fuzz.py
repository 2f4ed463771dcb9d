"""Fuzzing the submit and draft endpoints: whatever arrives, the answer is a JSON 4xx (or a clean
201 for a payload that happens to be valid), never a 500, and a refusal writes nothing."""
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.services.annotation.queue import queue_next
from tests.dbstate import snapshot
from tests.queue_factories import annotator_make, task_make

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
           | st.sampled_from(["", "\x00", "\ud800", "\U0001F600", "1", "-1", "solution", "found_error", "give_up"]))
keys = st.text(max_size=12) | st.sampled_from(["\ud800", "\udfff\x00", "ratings\ud83d", "step"])
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(keys, inner, max_size=4), max_leaves=12)
ratings_items = st.fixed_dictionaries(
    {"step": st.integers(min_value=-3, max_value=8) | json_values,
     "rating": st.sampled_from([-1, 0, 1]) | st.integers(min_value=-(2 ** 70), max_value=2 ** 70) | json_values},
    optional={"flagged": st.booleans() | json_values, "extra\ud800": json_values})
KEYS = ("client_id", "ratings", "finish_reason", "total_time_ms", "alternative_ratings", "human_completion",
        "reason")


@pytest.fixture
def lease_for(db, settings):
    """A live lease for one annotator, replaced whenever the previous one got submitted."""
    settings.STEPWISE_QC_RATE = 0
    annotator = annotator_make()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator.user).key}")

    def lease():
        assignment = queue_next(annotator=annotator)
        if assignment is None:
            task_make(n_steps=4, alternatives={"2": ["An alternative."]})
            assignment = queue_next(annotator=annotator)
        return client, assignment
    return lease


def valid_body():
    return {"client_id": str(uuid.uuid4()), "ratings": [{"step": i, "rating": 1, "flagged": False} for i in range(4)],
            "finish_reason": "solution", "total_time_ms": 1000}


@st.composite
def mutated_bodies(draw):
    """A valid submission with one to three things broken."""
    body = valid_body()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        how = draw(st.sampled_from(["drop", "replace", "add", "ratings", "unicode"]))
        key = draw(st.sampled_from(KEYS))
        if how == "drop":
            body.pop(key, None)
        elif how == "replace":
            body[key] = draw(json_values)
        elif how == "add":
            body[draw(keys)] = draw(json_values)
        elif how == "ratings":
            body["ratings"] = draw(st.lists(ratings_items, max_size=6))
        else:
            body[draw(st.sampled_from(["reason", "human_completion", "finish_reason"]))] = draw(st.text(max_size=50))
    return body


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(min_value=4000, max_value=6000).map(lambda n: b'{"total_time_ms": ' + b"9" * n + b"}"),
    st.integers(min_value=1000, max_value=50_000).map(lambda n: b"[" * n + b"]" * n),
    st.just(b'{"client_id": NaN}'),
    st.just(b'{"a": 1, "a": 2}'),
)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", ""])


def check(response, before):
    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    body = json.loads(response.content)
    if response.status_code >= 400:
        assert body["error"]["message"] and "field" in body["error"]
        assert snapshot() == before, "a refused request wrote something"
    else:
        assert response.status_code in (200, 201) and "client_id" in body


@FUZZ
@given(body=json_values | mutated_bodies())
def test_fuzzed_json_submissions(lease_for, body):
    client, assignment = lease_for()
    before = snapshot()
    data = json.dumps(body).encode()  # ASCII-escaped: lone surrogates travel as JSON escapes
    check(client.generic("POST", f"/api/assignments/{assignment.public_id}/submit/", data,
                         content_type="application/json"), before)


@FUZZ
@given(data=raw_bodies, content_type=content_types)
def test_fuzzed_raw_submissions(lease_for, data, content_type):
    client, assignment = lease_for()
    before = snapshot()
    check(client.generic("POST", f"/api/assignments/{assignment.public_id}/submit/", data, content_type=content_type),
          before)


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(draft=json_values)
def test_fuzzed_drafts(lease_for, draft):
    client, assignment = lease_for()
    before = snapshot()
    response = client.generic("PUT", f"/api/assignments/{assignment.public_id}/draft/", json.dumps(draft).encode(),
                              content_type="application/json")
    assert response.status_code < 500, response.content[:300]
    body = json.loads(response.content)
    if response.status_code >= 400:
        assert body["error"]["message"] and snapshot() == before
    else:  # (numbers may come back in another spelling: jsonb keeps decimals, not binary floats)
        assert isinstance(draft, dict)
        assert client.get(f"/api/assignments/{assignment.public_id}/").json()["draft"].keys() == draft.keys()
