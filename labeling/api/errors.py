"""API errors: always JSON, `{"error": {"field": "ratings[3].rating", "message": "..."}, "errors": [...]}`.

`error` is the first problem (field null when it is not about one input); `errors` lists them all.
Nothing the client sends may produce a 500 or an HTML page: bad bodies are 400/413/415, refused
queue operations map to their status below, and anything unexpected is logged and answered as JSON.
"""
import json
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from labeling.errors import AssignmentNotFound, InvalidInput, LeaseConflict, LeaseExpired, QueueError, TooLarge

log = logging.getLogger(__name__)

STATUS = (  # most specific first
    (TooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (InvalidInput, status.HTTP_400_BAD_REQUEST),
    (AssignmentNotFound, status.HTTP_404_NOT_FOUND),
    (LeaseExpired, status.HTTP_410_GONE),
    (LeaseConflict, status.HTTP_409_CONFLICT),
    (QueueError, status.HTTP_400_BAD_REQUEST),
)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body too large"
    default_code = "too_large"


class LockedOut(exceptions.Throttled):
    """Too many failed logins for this username from this address (django-axes): 429 with Retry-After, as JSON,
    until the cool-off (AXES_COOLOFF_TIME) has passed without another try."""

    default_detail = "Too many failed logins for this username from this address."
    default_code = "locked_out"


def body(errors):
    errors = [{"field": None if field is None else _printable(field), "message": _printable(message)}
              for field, message in errors] or [{"field": None, "message": "invalid request"}]
    return {"error": errors[0], "errors": errors}


def _printable(text):
    """Messages may quote the input, lone surrogates and all: escape what UTF-8 cannot carry."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def flatten(detail, path=None):
    """(field path, message) pairs of a DRF error detail: {"ratings": [{}, {"rating": ["..."]}]} ->
    ("ratings[1].rating", "...")."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                sub = path
            elif isinstance(key, int):
                sub = f"{path or ''}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            yield from flatten(value, sub)
    elif isinstance(detail, list):
        for i, item in enumerate(detail):
            if isinstance(item, (dict, list)):
                yield from flatten(item, f"{path or ''}[{i}]")
            else:
                yield path, item
    else:
        yield path, detail


def exception_handler(exc, context):
    for kind, code in STATUS:
        if isinstance(exc, kind):
            return Response(body([(exc.field, exc.message)]), status=code)
    response = drf_exception_handler(exc, context)
    if response is None:
        log.error("unhandled API error", exc_info=exc)
        return Response(body([(None, "internal error")]), status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        response.data = body(list(flatten(exc.detail)))
    else:
        response.data = body(flatten(exc.detail))
    return response


class JSONBodyParser(JSONParser):
    """DRF's strict JSON parser with a size cap (the view's `max_body_bytes`) and no way to a 500:
    nesting too deep for the decoder or bytes that are not UTF-8 are a 400 like any bad JSON."""

    max_body_bytes = 1024 * 1024

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = getattr(parser_context.get("view"), "max_body_bytes", self.max_body_bytes)
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLarge(f"request body over {limit} bytes")
        try:
            return json.loads(data.decode(parser_context.get("encoding") or "utf-8"),
                              parse_constant=_no_constants)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


def _no_constants(name):
    raise ValueError(f"{name} is not valid JSON")


@csrf_exempt  # it changes nothing: a POST there is a JSON 404, not the CSRF middleware's HTML 403
def not_found(request, *args, **kwargs):
    """Unknown URLs under /api/ answer JSON too (and never trigger APPEND_SLASH's redirect of a POST)."""
    return JsonResponse(body([(None, f"no API endpoint at {request.path}")]), status=404)
