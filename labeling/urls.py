from django.urls import path

from labeling.views import annotate as views
from labeling.views import rounds as views_rounds

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.label, name="label"),
    path("label/<int:assignment_id>/", views.label, name="label-assignment"),
    path("exports/<int:export_id>/download/", views.export_download, name="export-download"),
    path("rounds/", views_rounds.rounds, name="rounds"),
    path("rounds/models/<int:version_id>/evaluate/", views_rounds.version_evaluate, name="rounds-evaluate"),
    path("rounds/models/<int:version_id>/make-selector/", views_rounds.version_make_selector,
         name="rounds-make-selector"),
    path("rounds/retrain/", views_rounds.retrain_now, name="rounds-retrain"),
]
