from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("exports/<int:export_id>/download/", views.export_download, name="export-download"),
]
