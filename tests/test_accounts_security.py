"""Accounts as an attacker meets them: lockout after repeated failed logins (API token and login page),
throttled token requests, password rules, and API tokens that expire and die with a password change or a
logout."""
import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from labeling.models import Annotator
from tests.api_client import api_as, error_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

RIGHT = {"username": "bob", "password": "bob-pw-long-enough"}
WRONG = {"username": "bob", "password": "not-bobs-password"}


@pytest.fixture
def token_rate(monkeypatch):
    """Set the token endpoint's rate (DRF reads its rates once, at import)."""
    def set_rate(rate):
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES",
                            {**SimpleRateThrottle.THROTTLE_RATES, "auth-token": rate})
    return set_rate


def ask_token(body, address="127.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post("/api/auth/token/", body, format="json")


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=16))


def test_it_refuses_the_right_password_after_30_wrong_ones(bob):
    answers = [ask_token(WRONG).status_code for _ in range(30)]
    assert answers[:9] == [400] * 9 and set(answers[9:]) == {429}
    response = ask_token(RIGHT)
    assert response.status_code == 429 and "token" not in response.json()
    cache.clear()  # the throttle's minute is over: the lockout is not
    response = ask_token(RIGHT)
    assert response.status_code == 429
    assert error_of(response)["message"].startswith("Too many failed logins for this username from this address")
    assert response["Retry-After"] == str(15 * 60)
    cool_off_passes()
    assert ask_token(RIGHT).status_code == 200


def test_the_lockout_counts_failures_per_username_and_address(bob, token_rate):
    token_rate(None)
    answers = [ask_token(WRONG).status_code for _ in range(10)]
    assert answers == [400] * 9 + [429]
    assert ask_token(RIGHT).status_code == 429
    assert ask_token(RIGHT, address="10.0.0.7").status_code == 200  # bob elsewhere is not locked out


def test_a_success_before_the_limit_resets_the_count(bob, token_rate):
    token_rate(None)
    for _ in range(9):
        assert ask_token(WRONG).status_code == 400
    assert ask_token(RIGHT).status_code == 200
    for _ in range(9):
        assert ask_token(WRONG).status_code == 400
    assert ask_token(RIGHT).status_code == 200


def test_token_requests_are_throttled_with_a_json_429(db):
    for _ in range(20):
        assert ask_token({"username": "nobody"}).status_code == 400  # no password: refused before any login
    response = ask_token({"username": "nobody"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "throttled" in error_of(response)["message"]
    assert ask_token({"username": "nobody"}, address="10.0.0.7").status_code == 400  # per address


def test_the_login_page_locks_out_too(bob):
    client = Client()
    for _ in range(9):
        assert client.post("/login/", WRONG).status_code == 200  # the form again, with its error
    assert client.post("/login/", WRONG).status_code == 429
    response = client.post("/login/", RIGHT)
    assert response.status_code == 429 and b"too many login attempts" in response.content
    assert "_auth_user_id" not in client.session
    cool_off_passes()
    assert client.post("/login/", RIGHT).status_code == 302 and "_auth_user_id" in client.session


def test_create_annotator_refuses_a_weak_password_and_says_why(db):
    with pytest.raises(CommandError) as refused:
        call_command("create_annotator", "weak", "--password", "1")
    message = str(refused.value)
    assert "password refused" in message
    assert "too short" in message and "at least 10 characters" in message
    assert "too common" in message and "entirely numeric" in message
    with pytest.raises(CommandError, match="too similar to the username"):
        call_command("create_annotator", "mathematician", "--password", "mathematician1")
    assert not Annotator.objects.exists()
    call_command("create_annotator", "strong", "--password", "a-long-unusual-passphrase")
    assert Annotator.objects.get().user.username == "strong"


def test_a_token_older_than_the_limit_is_refused(bob, settings):
    settings.STEPWISE_TOKEN_HOURS = 24
    client = api_as(bob)
    Token.objects.filter(user=bob).update(created=timezone.now() - dt.timedelta(hours=23))
    assert client.get("/api/schema/").status_code == 200
    Token.objects.filter(user=bob).update(created=timezone.now() - dt.timedelta(hours=24, minutes=1))
    response = client.get("/api/schema/")
    assert response.status_code == 401 and error_of(response)["message"].startswith("Token expired")
    old = Token.objects.get(user=bob).key
    fresh = ask_token(RIGHT).json()["token"]  # asking again gives a new token, not the dead one
    assert fresh != old
    client.credentials(HTTP_AUTHORIZATION=f"Token {fresh}")
    assert client.get("/api/schema/").status_code == 200


def test_a_live_token_is_handed_out_again(bob):
    assert ask_token(RIGHT).json()["token"] == ask_token(RIGHT).json()["token"]


def test_a_password_change_kills_the_token(bob):
    client = api_as(bob)
    bob.last_name = "Builder"
    bob.save()  # a save that changes no password keeps the token
    assert client.get("/api/schema/").status_code == 200
    bob.set_password("a-new-long-passphrase")
    bob.save()
    response = client.get("/api/schema/")
    assert response.status_code == 401 and error_of(response)["message"] == "Invalid token."


def test_api_logout_kills_the_callers_token(bob):
    client = api_as(bob)
    response = client.post("/api/auth/logout/")
    assert response.status_code == 204 and not Token.objects.filter(user=bob).exists()
    assert client.get("/api/schema/").status_code == 401


def test_web_logout_kills_the_token_too(bob):
    token_client = api_as(bob)
    browser = Client()
    browser.force_login(bob)
    assert browser.post("/logout/").status_code == 302
    assert token_client.get("/api/schema/").status_code == 401
