from django.urls import path, re_path

from labeling.api import rounds, views
from labeling.api.errors import not_found

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="api-logout"),
    path("queue/", views.QueueSummaryView.as_view(), name="api-queue"),
    path("queue/next/", views.QueueNextView.as_view(), name="api-queue-next"),
    path("assignments/<uuid:assignment_id>/", views.AssignmentView.as_view(), name="api-assignment"),
    path("assignments/<uuid:assignment_id>/draft/", views.DraftView.as_view(), name="api-assignment-draft"),
    path("assignments/<uuid:assignment_id>/submit/", views.SubmitView.as_view(), name="api-assignment-submit"),
    path("rounds/<int:number>/", rounds.RoundView.as_view(), name="api-round"),
    path("rounds/<int:number>/selection/", rounds.RoundSelectionView.as_view(), name="api-round-selection"),
    path("schema/", views.SchemaView.as_view(), name="api-schema"),
    re_path(r"", not_found),  # anything else under /api/: a JSON 404
]
