"""Every URL, for anonymous, annotator, staff without permissions and admin."""
import pytest
from django.urls import reverse

from labeling.models import Export


@pytest.fixture
def done_export(db, tmp_path, settings):
    settings.EXPORT_DIR = tmp_path
    (tmp_path / "export-x.jsonl").write_text("{}\n")
    return Export.objects.create(status=Export.Status.DONE, file="export-x.jsonl")


def admin_urls():
    return ["/admin/", "/admin/labeling/problem/", "/admin/labeling/solution/", "/admin/labeling/annotation/",
            "/admin/labeling/export/", "/admin/labeling/export/add/", "/admin/labeling/round/",
            "/admin/labeling/modelversion/", "/admin/labeling/annotator/", "/admin/labeling/verifierscore/",
            "/admin/labeling/steplabel/", "/admin/labeling/completion/"]


@pytest.mark.django_db
def test_anonymous_is_sent_to_log_in_everywhere(client, done_export):
    assert client.get("/").status_code == 302 and client.get("/").url.startswith("/login/")
    download = reverse("export-download", args=[done_export.id])
    for url in admin_urls() + [download]:
        response = client.get(url)
        assert response.status_code == 302 and "login" in response.url, url
    assert client.get("/login/").status_code == 200


@pytest.mark.django_db
def test_annotator_sees_no_admin_and_no_exports(client, bob, done_export):
    client.force_login(bob)
    home = client.get("/")
    assert home.status_code == 200 and b"No labeling tasks" in home.content and b"Exports" not in home.content
    for url in admin_urls():
        response = client.get(url)
        assert response.status_code == 302 and "login" in response.url, url
    assert client.get(reverse("export-download", args=[done_export.id])).status_code == 403


@pytest.mark.django_db
def test_staff_without_permissions_gets_nothing(client, carol, done_export):
    """Every admin surface asks the Django admin's model permission (the full matrix: test_permission_matrix)."""
    client.force_login(carol)
    for url in admin_urls()[1:] + [reverse("export-download", args=[done_export.id]), "/dashboard/", "/rounds/"]:
        assert client.get(url).status_code == 403, url
    assert client.get("/admin/").status_code == 200  # she may log in to the admin, where she sees nothing


@pytest.mark.django_db
def test_admin_reaches_every_page(client, alice, done_export):
    client.force_login(alice)
    assert b"Annotations" in client.get("/").content
    for url in admin_urls():
        assert client.get(url).status_code == 200, url
    response = client.get(reverse("export-download", args=[done_export.id]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"{}\n"


@pytest.mark.django_db
def test_login_and_logout(client, bob):
    response = client.post("/login/", {"username": "bob", "password": "bob-pw-long-enough"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302
    assert b"Wrong username" in client.post("/login/", {"username": "bob", "password": "nope"}).content
