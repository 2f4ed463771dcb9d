"""Who is calling: API tokens that expire, the one client address that throttles and lockouts use, and client
headers that lockouts can store."""
from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.throttling import BaseThrottle

from labeling.services.annotation.accounts import token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token check with an age limit (STEPWISE_TOKEN_HOURS), loading the annotator with the user: one
    query per request, not two."""

    def authenticate_credentials(self, key):
        token = Token.objects.select_related("user", "user__annotator").filter(key=key).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                f"Token expired: tokens last {settings.STEPWISE_TOKEN_HOURS} h; "
                "POST your username and password to /api/auth/token/ for a new one.")
        return token.user, token


def client_ip(request):
    """The caller's address: REMOTE_ADDR, or the X-Forwarded-For entry set by the last of STEPWISE_PROXY_COUNT
    trusted proxies (DRF's rule, so that django-axes locks out the address the throttles count)."""
    return BaseThrottle().get_ident(request)


class StorableClientHeaders:
    """Middleware: django-axes stores the User-Agent and Accept headers of every login attempt, and PostgreSQL
    refuses a NUL character (a 500 on the token endpoint and the login pages). NULs there become U+FFFD."""

    HEADERS = ("HTTP_USER_AGENT", "HTTP_ACCEPT")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for key in self.HEADERS:
            if "\x00" in request.META.get(key, ""):
                request.META[key] = request.META[key].replace("\x00", "\ufffd")
        return self.get_response(request)
