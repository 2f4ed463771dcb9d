"""What /api/schema/ says beyond the serializers' types, in one place: every status an operation answers with the
error body they share, the response headers that come with them, and the request rules JSON Schema can state
(enums, bounds, lengths, no NUL characters, no unknown keys). Views declare an operation with `documented(...)`.

tests/test_api_schema_fuzz.py holds the schema to what the server does (schemathesis, every check, as an
annotator and as an admin): no status it does not list, no body it calls valid and the server cannot take.
"""
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from labeling.services.annotation.checks import DRAFT_MAX_BYTES, DRAFT_MAX_DEPTH

# Text PostgreSQL can store has no NUL character (lone surrogates, which no schema can generate, are refused too).
NO_NUL = "^[^\\u0000]*$"

WHY = {
    400: "The body is not what this operation takes (malformed JSON, a wrong type, an unknown key) or breaks a "
         "rule; `error.field` names the input at fault, e.g. `ratings[3].rating`.",
    401: "No credentials, or a token that is wrong or expired (`WWW-Authenticate: Token`): "
         "POST /api/auth/token/ for a new one.",
    403: "Logged in but not allowed here: an annotator on an admin endpoint, a login without an annotator on "
         "an annotator endpoint, or a session request without its CSRF token.",
    404: "No such object. Someone else's assignment looks the same as none.",
    409: "The request contradicts what already happened: the assignment was submitted (with another client_id, "
         "or this client_id with other labels), or its draft is closed.",
    410: "The lease ran out: the task went back to the queue. POST /api/queue/next/ for another.",
    406: "The `Accept` header allows no answer this operation gives (JSON).",
    413: "The body is over this operation's size limit.",
    415: "The body is not `application/json`.",
    429: "Too many requests (throttled), or too many failed logins for this username from this address: "
         "`Retry-After` says how many seconds to wait.",
}


class ErrorItemSerializer(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="the input at fault (a path such as "
                                                             "`ratings[3].rating`), null when it is not one input")
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """Every refusal (4xx) has this body."""

    error = ErrorItemSerializer(help_text="the first problem")
    errors = ErrorItemSerializer(many=True, help_text="every problem (at least one), the first one first")


HEADERS = [
    OpenApiParameter("WWW-Authenticate", str, OpenApiParameter.HEADER, required=True, response=[401],
                     description="`Token`: send `Authorization: Token <key>`"),
    OpenApiParameter("Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429],
                     description="seconds to wait before the next try"),
]


def errors(*codes, **why) -> dict:
    """{status: its documented error response}; `why={"404": "..."}` words one for this operation."""
    return {code: OpenApiResponse(ErrorSerializer, description=why.get(str(code), WHY[code])) for code in codes}


def documented(*, ok: dict, refusals=(), why=None, parameters=(), **kwargs):
    """extend_schema for one operation: its successes (`ok`), every refusal it can answer, with the error body
    and the headers that come with 401 and 429."""
    responses = {**ok, **errors(*refusals, **(why or {}))}
    return extend_schema(responses=dict(sorted(responses.items())), parameters=[*parameters, *HEADERS], **kwargs)


# Refusals every API call can meet (content negotiation, the throttle), and but for the token endpoint
# authentication and permission.
ANY = (406, 429)
CALLER = (401, 403, *ANY)
JSON_BODY = (400, 413, 415)


def path_integer(name, description, example=None):
    """A path's `<int:...>`: digits only (anything else is the catch-all's 404), and no more than the database's int."""
    return OpenApiParameter(name, {"type": "integer", "minimum": 0, "maximum": 2 ** 31 - 1}, OpenApiParameter.PATH,
                            description=description,
                            examples=[OpenApiExample(str(example), value=example)] if example is not None else None)


TOKEN_400 = "Wrong username or password (`Unable to log in with provided credentials.`), or a malformed body."
SUBMIT_400 = ("The body is malformed, or breaks a rule that depends on the task: steps 0..k-1 in order and within "
              "the solution, nothing after the first -1, a finish_reason that fits the ratings, a reason with "
              "bad_problem and give_up, alternatives only at the -1 step, a human completion only where the round "
              "takes one.")
SUBMIT_EXAMPLES = [OpenApiExample("the second of two steps is wrong", request_only=True, value={
    "client_id": "3f2b8c1e-7d4a-4e5b-9c6d-0a1b2c3d4e5f", "finish_reason": "found_error", "total_time_ms": 42000,
    "ratings": [{"step": 0, "rating": 1}, {"step": 1, "rating": -1}]})]


# --- request rules the serializers cannot say themselves ---------------------------------------------------

class StrictSerializerSchema(OpenApiSerializerExtension):
    """labeling.api.serializers.StrictSerializer refuses keys it does not know (`additionalProperties: false`) and
    JSON of another type than the field's, even where JSON Schema would take it: 1.0 for an integer."""

    target_class = "labeling.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return schema
        return {**schema, "additionalProperties": False,
                "description": "Unknown keys are refused; so are integers written with a fraction (1.0)."}


class RequestTextSchema(OpenApiSerializerFieldExtension):
    """DRF's CharField refuses NUL characters (ProhibitNullCharactersValidator): so does the schema."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if isinstance(schema.get("type"), list):  # OAS 3.1: the caller adds "null" again for allow_null
            schema = {**schema, "type": "string"}
        return {**schema, "pattern": NO_NUL} if direction == "request" else schema


class DraftSerializer(serializers.Serializer):
    """Documents a draft (never used to parse one: labeling.services.annotation.checks.draft_validate does)."""


class DraftSchema(OpenApiSerializerExtension):
    """A draft is the client's own JSON object, stored as it comes: any JSON PostgreSQL's jsonb can hold."""

    target_class = DraftSerializer

    def map_serializer(self, auto_schema, direction):
        value = ResolvedComponent(name="DraftValue", type=ResolvedComponent.SCHEMA, object="DraftValue", schema={
            "description": "any JSON value; strings and object keys without NUL characters",
            "anyOf": [{"type": "string", "pattern": NO_NUL}, {"type": ["number", "boolean", "null"]},
                      {"type": "array", "items": {"$ref": "#/components/schemas/DraftValue"}},
                      {"type": "object", "propertyNames": {"pattern": NO_NUL},
                       "additionalProperties": {"$ref": "#/components/schemas/DraftValue"}}]})
        auto_schema.registry.register_on_missing(value)
        return {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": value.ref,
                "description": f"The client's draft, any JSON object up to {DRAFT_MAX_BYTES} bytes (413 above) and "
                               f"{DRAFT_MAX_DEPTH} levels deep; strings and keys without NUL characters. "
                               "An empty body saves `{}`."}
