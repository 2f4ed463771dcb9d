from django.urls import path

from labeling.views import dashboard, exports, label, rounds

urlpatterns = [
    path("", label.home, name="home"),
    path("label/", label.label, name="label"),
    path("label/<uuid:assignment_id>/", label.label, name="label-assignment"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("exports/<int:export_id>/download/", exports.export_download, name="export-download"),
    path("rounds/", rounds.rounds, name="rounds"),
    path("rounds/models/<int:version_id>/evaluate/", rounds.version_evaluate, name="rounds-evaluate"),
    path("rounds/models/<int:version_id>/make-selector/", rounds.version_make_selector,
         name="rounds-make-selector"),
    path("rounds/retrain/", rounds.retrain_now, name="rounds-retrain"),
]
