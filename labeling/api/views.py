"""The labeling API: thin views that parse, call one service, render. Errors: labeling.api.errors."""
from drf_spectacular.renderers import (OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer,
                                        OpenApiYamlRenderer2)
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, permissions, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api import serializers as s
from labeling.api.errors import JSONBodyParser
from labeling.services.annotation import queue
from labeling.services.annotation.checks import DRAFT_MAX_BYTES
from labeling.services.annotation.submission import annotation_submit


class TokenAuth(TokenAuthentication):
    """DRF's token check, loading the annotator with the user: one query per request, not two."""

    def authenticate_credentials(self, key):
        token = Token.objects.select_related("user", "user__annotator").filter(key=key).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token


class IsAnnotator(permissions.BasePermission):
    message = "this login is not an annotator"

    def has_permission(self, request, view):
        return hasattr(request.user, "annotator")


class ApiView(APIView):
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`.
    authentication_classes = [TokenAuth, SessionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONBodyParser]
    renderer_classes = [JSONRenderer]


class AnnotatorView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsAnnotator]

    @property
    def annotator(self):
        return self.request.user.annotator


class TokenView(ObtainAuthToken):
    """POST {"username", "password"} -> {"token"}; then send `Authorization: Token <key>`."""

    authentication_classes = []
    parser_classes = [JSONBodyParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(request=s.TokenRequestSerializer, responses={200: s.TokenSerializer}, auth=[])
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class QueueNextView(AnnotatorView):
    @extend_schema(request=None, responses={200: s.AssignmentSerializer,
                                            204: OpenApiResponse(description="nothing left for you")})
    def post(self, request):
        assignment = queue.queue_next(annotator=self.annotator)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.assignment_payload(assignment))


class AssignmentView(AnnotatorView):
    @extend_schema(responses={200: s.AssignmentSerializer})
    def get(self, request, assignment_id):
        assignment = queue.assignment_get(assignment_id=assignment_id, annotator=self.annotator)
        return Response(s.assignment_payload(assignment))


class DraftView(AnnotatorView):
    max_body_bytes = DRAFT_MAX_BYTES

    @extend_schema(request={"application/json": {"type": "object"}}, responses={200: s.DraftSavedSerializer})
    def put(self, request, assignment_id):
        assignment = queue.assignment_draft_save(assignment_id=assignment_id, annotator=self.annotator,
                                                 draft=request.data)
        return Response({"assignment_id": assignment.pk, "draft_saved_at": assignment.draft_saved_at})


class SubmitView(AnnotatorView):
    @extend_schema(request=s.SubmitSerializer, responses={201: s.AnnotationSerializer, 200: s.AnnotationSerializer})
    def post(self, request, assignment_id):
        form = s.SubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = annotation_submit(assignment=assignment_id, annotator=self.annotator, **form.validated_data)
        return Response(s.annotation_payload(result.annotation, assignment_id),
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class QueueSummaryView(ApiView):
    """Admins only: how full the queue is."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={200: {"type": "object"}})
    def get(self, request):
        return Response(queue.queue_summary())


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, for any logged-in user (authenticated like the rest of the API)."""

    authentication_classes = ApiView.authentication_classes
    permission_classes = [permissions.IsAuthenticated]
    # JSON first, so refusals are JSON like everywhere else; ?format=yaml still gives YAML.
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]
