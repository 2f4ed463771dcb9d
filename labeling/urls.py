from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.label, name="label"),
    path("label/<int:assignment_id>/", views.label, name="label-assignment"),
    path("exports/<int:export_id>/download/", views.export_download, name="export-download"),
]
