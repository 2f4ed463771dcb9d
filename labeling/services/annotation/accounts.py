"""Logins: admins and annotators. Every annotator has a stable labeler UUID; API tokens expire and die with
the password or the logout."""
import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from labeling.models import Annotator


@transaction.atomic
def annotator_create(*, username, password, admin=False) -> Annotator:
    """A new login; the password must pass AUTH_PASSWORD_VALIDATORS (ValueError listing every reason)."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValueError(f"user {username!r} already exists")
    try:
        validate_password(password, user=User(username=username, is_staff=admin, is_superuser=admin))
    except ValidationError as exc:
        raise ValueError("password refused:\n" + "\n".join(f"- {m}" for m in exc.messages)) from None
    user = User.objects.create_user(username, password=password, is_staff=admin, is_superuser=admin)
    return Annotator.objects.create(user=user)


def token_expired(token, *, now=None) -> bool:
    return token.created <= (now or timezone.now()) - dt.timedelta(hours=settings.STEPWISE_TOKEN_HOURS)


def token_issue(*, user) -> Token:
    """The user's API token: the live one (other clients of the same login keep working), else a new one."""
    token, created = Token.objects.get_or_create(user=user)
    if created or not token_expired(token):
        return token
    # A new key in place: two clients renewing at once both end with the one new token.
    Token.objects.filter(pk=token.pk).update(key=Token.generate_key(), created=timezone.now())
    return Token.objects.get(user=user)


def tokens_revoke(*, user) -> int:
    """Delete the user's API token (password change, logout): a client must log in again."""
    return Token.objects.filter(user=user).delete()[0]
