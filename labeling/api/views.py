"""The labeling API: thin views that parse, call one service, render. Errors: labeling.api.errors."""
from axes.helpers import get_cool_off
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.renderers import (OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer,
                                        OpenApiYamlRenderer2)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, permissions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from labeling.api import serializers as s
from labeling.api.authentication import ExpiringTokenAuthentication
from labeling.api.errors import JSONBodyParser, LockedOut
from labeling.api.schema_docs import (ANY, CALLER, JSON_BODY, SUBMIT_400, SUBMIT_EXAMPLES, TOKEN_400, DraftSerializer,
                                     documented)
from labeling.services.annotation import accounts, queue
from labeling.services.annotation.checks import DRAFT_MAX_BYTES
from labeling.services.annotation.submission import annotation_submit
from labeling.views.access import api_permission


class IsAnnotator(permissions.BasePermission):
    message = "this login is not an annotator"

    def has_permission(self, request, view):
        return hasattr(request.user, "annotator")


class ApiView(APIView):
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`.
    authentication_classes = [ExpiringTokenAuthentication, SessionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONBodyParser]
    renderer_classes = [JSONRenderer]


class AnnotatorView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAnnotator]

    @property
    def annotator(self):
        return self.request.user.annotator


class TokenView(APIView):
    """POST {"username", "password"} -> {"token"}; then send `Authorization: Token <key>`. Throttled per address
    ("auth-token" rate); failures count towards django-axes' lockout of this username from this address."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth-token"
    parser_classes = [JSONBodyParser]
    renderer_classes = [JSONRenderer]

    @documented(request=s.CredentialsSerializer, ok={200: s.TokenSerializer}, refusals=(*JSON_BODY, *ANY), auth=[],
                why={"400": TOKEN_400})
    def post(self, request):
        s.CredentialsSerializer(data=request.data).is_valid(raise_exception=True)
        # DRF's serializer calls authenticate(request=request, ...): the axes backend refuses a locked-out
        # client there and its failure handler counts the miss (flags stay on this DRF request).
        form = AuthTokenSerializer(data=request.data, context={"request": request})
        try:
            form.is_valid(raise_exception=True)
        except exceptions.ValidationError:
            if getattr(request, "axes_locked_out", False):
                raise LockedOut(wait=axes_cool_off_seconds(request)) from None
            raise
        user = form.validated_data["user"]
        # A token is a login: last_login is set and axes forgets this client's earlier misses.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        return Response({"token": accounts.token_issue(user=user).key})


def axes_cool_off_seconds(request):
    cool_off = get_cool_off(request)
    return None if cool_off is None else cool_off.total_seconds()


class LogoutView(ApiView):
    """Deletes the caller's token (every client of this login must ask for a new one) and ends a browser
    session if that is how the call came."""

    @documented(request=None, ok={204: OpenApiResponse(description="token deleted")}, refusals=CALLER)
    def post(self, request):
        accounts.tokens_revoke(user=request.user)
        if request.auth is None:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueueNextView(AnnotatorView):
    @documented(request=None, refusals=CALLER,
                ok={200: s.AssignmentSerializer, 204: OpenApiResponse(description="nothing left for you")})
    def post(self, request):
        assignment = queue.queue_next(annotator=self.annotator)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.assignment_payload(assignment))


class AssignmentView(AnnotatorView):
    @documented(ok={200: s.AssignmentSerializer}, refusals=(*CALLER, 404, 410))
    def get(self, request, assignment_id):
        assignment = queue.assignment_get(assignment_id=assignment_id, annotator=self.annotator)
        return Response(s.assignment_payload(assignment))


class DraftView(AnnotatorView):
    max_body_bytes = DRAFT_MAX_BYTES

    @documented(request=DraftSerializer, ok={200: s.DraftSavedSerializer},
                refusals=(*JSON_BODY, *CALLER, 404, 409, 410))
    def put(self, request, assignment_id):
        assignment = queue.assignment_draft_save(assignment_id=assignment_id, annotator=self.annotator,
                                                 draft=request.data)
        return Response({"assignment_id": assignment.public_id, "draft_saved_at": assignment.draft_saved_at,
                         "expires_at": assignment.expires_at})


class SubmitView(AnnotatorView):
    @documented(request=s.SubmitSerializer, examples=SUBMIT_EXAMPLES,
                ok={201: OpenApiResponse(s.AnnotationSerializer, description="stored"),
                    200: OpenApiResponse(s.AnnotationSerializer, description="a replay: this client_id and body "
                                                                             "were stored before")},
                refusals=(*JSON_BODY, *CALLER, 404, 409, 410), why={"400": SUBMIT_400})
    def post(self, request, assignment_id):
        form = s.SubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = annotation_submit(assignment=assignment_id, annotator=self.annotator, **form.validated_data)
        return Response(s.annotation_payload(result.annotation, assignment_id),
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class QueueSummaryView(ApiView):
    """Admins only (view_task): how full the queue is."""

    permission_classes = [api_permission("queue_summary")]

    @documented(ok={200: s.QueueSummarySerializer}, refusals=CALLER)
    def get(self, request):
        return Response(queue.queue_summary())


@extend_schema_view(get=documented(ok={200: OpenApiResponse(OpenApiTypes.OBJECT, description="this document")},
                                   refusals=(*CALLER, 404), why={"404": "No renderer for this `format`."}))
class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, for any logged-in user (authenticated like the rest of the API)."""

    authentication_classes = ApiView.authentication_classes
    permission_classes = [permissions.IsAuthenticated]
    # JSON first, so refusals are JSON like everywhere else; ?format=yaml still gives YAML.
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]
