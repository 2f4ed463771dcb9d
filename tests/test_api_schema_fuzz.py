"""The OpenAPI schema at /api/schema/ holds for the live app. schemathesis loads it from the app itself (WSGI, in
this process and this test's transaction) and sends what it makes of it: the schema's examples, a case for every
constraint it states (coverage), then random requests, valid and invalid; as an annotator and as an admin. Every
answer goes through every check: no server error, no status the schema does not list, content type, body and
headers as documented, invalid data refused, valid data accepted.

The annotator holds a live lease, a submitted one and an expired one; a valid path names one of them three
times in four, so the checks also see the 200/201/409/410 answers a random UUID never reaches.
"""
import datetime as dt
import json
import os
import zlib

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from labeling.api.serializers import CredentialsSerializer, SubmitSerializer
from labeling.models import Assignment, Job, RoundSelection
from labeling.services.annotation.accounts import annotator_create
from labeling.services.annotation.queue import queue_next
from labeling.services.annotation.submission import annotation_submit
from tests.api_client import error_of
from tests.queue_factories import round_make, task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

# Two-step solutions: the schema's example of a submission (the second step is wrong) fits them.
N_STEPS = 2

# What a check may see beyond schemathesis' defaults, and why:
# - invalid data is also refused by 410 (a lease that ran out is refused before its body is read) and 413;
# - a valid body can still fail rules that depend on the task (a step past the solution's end, a finish_reason
#   that does not fit the ratings): 400 on submit; 410 on any assignment that expired;
# - the token endpoint answers 400 to a well-formed request with credentials that do not exist.
NEGATIVE_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "410", "413", "415", "422", "428", "429"]
POSITIVE_ANSWERS = ["2xx", "401", "403", "404", "409", "429"]


def positive(*extra):
    return {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_ANSWERS, *extra]}}


CONFIG = {
    "seed": 20251201,
    "cache": {"enabled": False},
    "suppress-health-check": ["too_slow"],  # generation slows on a busy machine; the server's time is not checked
    # A dozen random cases per operation and persona on top of the examples and coverage cases keeps this file
    # under a minute on two cores; STEPWISE_FUZZ_EXAMPLES=500 digs deeper (the seed stays fixed).
    "generation": {"max-examples": int(os.environ.get("STEPWISE_FUZZ_EXAMPLES", 12)), "deterministic": True,
                   "database": "none"},
    "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_REFUSALS}},
    "operations": [
        {"include-path": "/api/auth/token/", "checks": positive("400")},
        {"include-path": "/api/assignments/{assignment_id}/submit/", "checks": positive("400", "410")},
        {"include-path-regex": "^/api/assignments/\\{assignment_id\\}/(draft/)?$", "checks": positive("410")},
    ],
}

CALLER = {}  # who the running test calls as, and the annotator's leases (set by the fixture)


def leases(annotator):
    """A submitted lease, an expired one and a live one, as their public ids."""
    submitted = queue_next(annotator=annotator)
    annotation_submit(assignment=submitted.pk, annotator=annotator, client_id="00000000-0000-4000-8000-000000000001",
                      ratings=[{"step": i, "rating": 1} for i in range(N_STEPS)], finish_reason="solution",
                      total_time_ms=1000)
    expired = queue_next(annotator=annotator)
    Assignment.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    live = queue_next(annotator=annotator)
    assert len({submitted.pk, expired.pk, live.pk}) == 3
    return [str(a.public_id) for a in Assignment.objects.filter(pk__in=[live.pk, submitted.pk, expired.pk])]


@pytest.fixture(params=["annotator", "admin"])
def api_schema(request, db, django_user_model, monkeypatch, settings):
    settings.STEPWISE_QC_RATE = 0
    # Throttles off (DRF reads its rates once, at import): thousands of requests in a minute are the point.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", dict.fromkeys(SimpleRateThrottle.THROTTLE_RATES))
    # Requests run inside the test's transaction: Django must not close the connection at their end.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
        request.addfinalizer(lambda signal=signal: signal.connect(close_old_connections))
    for _ in range(4):
        task_make(n_steps=N_STEPS)
    if request.param == "admin":
        user = django_user_model.objects.create_user("alice", password="alice-pw", is_staff=True, is_superuser=True)
        CALLER.update(user=user, ids=[])
    else:
        user = annotator_create(username="bob", password="bob-pw-long-enough").user
        CALLER.update(user=user, ids=leases(user.annotator))
    rnd = round_make(number=1)
    task = task_make(n_steps=N_STEPS, round=rnd)
    RoundSelection.objects.create(round=rnd, solution=task.solution, problem=task.solution.problem, score=0.5,
                                  is_correct=False, reason=RoundSelection.Reason.CONVINCING_WRONG, rank=0)
    Job.objects.create(kind=Job.Kind.SCORE, round=rnd, total=10, done=4, status=Job.Status.RUNNING)
    key = Token.objects.get_or_create(user=user)[0].key
    CALLER["key"] = key
    config = {**CONFIG, "auth": {"openapi": {"tokenAuth": {"api_key": f"Token {key}"}}}}
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(),
                                          headers={"Authorization": f"Token {key}"},
                                          config=SchemathesisConfig.from_dict(config))


schema = schemathesis.pytest.from_fixture("api_schema")


# Where a valid body may still be refused (see CONFIG), the serializer that parses it must take it: the 400
# may only come from credentials or task rules, never from a shape the schema allows.
PARSERS = {"/api/auth/token/": CredentialsSerializer, "/api/assignments/{assignment_id}/submit/": SubmitSerializer}


@schema.parametrize()
def test_the_api_answers_as_its_schema_says(case):
    parser = PARSERS.get(case.operation.path)
    if parser and not case.meta.is_negative_at(ParameterLocation.BODY) and isinstance(_plain(case.body), dict):
        form = parser(data=_integral_floats_as_ints(case.body))
        assert form.is_valid(), (case.body, form.errors)
    if "assignment_id" in (case.path_parameters or {}) and CALLER["ids"] and \
            not case.meta.is_negative_at(ParameterLocation.PATH):
        # Deterministic per case, so a failure replays the same way.
        pick = zlib.crc32(json.dumps([case.path_parameters, _plain(case.body)], default=repr).encode()) % 4
        if pick:
            case.path_parameters["assignment_id"] = CALLER["ids"][pick - 1]
    try:
        case.call_and_validate()
    finally:
        # POST /api/auth/logout/ deletes the token: the same one comes back for the cases after it.
        Token.objects.get_or_create(user=CALLER["user"], defaults={"key": CALLER["key"]})


def _plain(body):
    return None if type(body).__name__ == "NotSet" else body


def _integral_floats_as_ints(value):
    """JSON Schema counts 1.0 as an integer; the API refuses it on purpose (strict types), and the schema can only
    say so in words. The one difference a schema cannot state."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    return value


# --- server errors found around the schema (headers and lengths it does not generate) ------------------------

NUL_HEADERS = {"HTTP_USER_AGENT": "a\x00b", "HTTP_ACCEPT": "application/json, a/\x00"}  # django-axes stores both


@pytest.mark.parametrize("body, headers", [
    ({"username": "u" * 300, "password": "x"}, {}),  # longer than axes' username column: refused first
    ({"username": "bob", "password": "wrong"}, NUL_HEADERS),
], ids=["long-username", "nul-in-headers"])
def test_a_login_attempt_the_database_cannot_store_is_a_400_not_a_500(bob, body, headers):
    response = APIClient(**headers).post("/api/auth/token/", body, format="json")
    assert response.status_code == 400 and error_of(response)["message"]
    response = APIClient(**headers).post("/api/auth/token/", {"username": "bob", "password": "bob-pw-long-enough"},
                                         format="json")
    assert response.status_code == 200


def test_a_post_to_no_endpoint_is_a_json_404_even_without_csrf(db):
    response = APIClient(enforce_csrf_checks=True).post("/api/assignments/nope/submit/", {}, format="json")
    assert response.status_code == 404 and "no API endpoint" in error_of(response)["message"]
