"""Every URL the project routes (outside the Django admin, covered in test_permissions), for anonymous,
annotator and admin. A new route without an entry here fails the first test."""
import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from labeling.models import Export, Round

# route -> (method, anonymous, annotator, admin) expected status codes; 302 means "sent to log in"
# for anonymous. Ids point at rows the fixture makes or at nothing (404 is fine where nothing exists).
EXPECTED = {
    "login/": ("get", {200}, {200}, {200}),
    "logout/": ("post", {302}, {302}, {302}),
    "api/auth/token/": ("post", {400}, {400}, {400}),  # open by design: it is how a client logs in
    "api/auth/logout/": ("post", {401, 403}, {204}, {204}),  # ends the session too: logged in again below
    "api/queue/": ("get", {401, 403}, {403}, {200}),
    "api/queue/next/": ("post", {401, 403}, {204}, {403}),  # an admin without an annotator profile labels nothing
    # Nobody reaches an assignment that is not theirs; an empty submit body may be refused first (400).
    "api/assignments/<uuid:assignment_id>/": ("get", {401, 403}, {404}, {403, 404}),
    "api/assignments/<uuid:assignment_id>/draft/": ("put", {401, 403}, {400, 404}, {400, 403, 404}),
    "api/assignments/<uuid:assignment_id>/submit/": ("post", {401, 403}, {400, 404}, {400, 403, 404}),
    "api/schema/": ("get", {401, 403}, {200}, {200}),
    "api/rounds/<int:number>/": ("get", {401, 403}, {403}, {200}),  # round 1, made by the fixture
    "api/rounds/<int:number>/selection/": ("get", {401, 403}, {403}, {200}),
    "api/": ("get", {401, 403, 404}, {404}, {404}),
    "dashboard/": ("get", {302}, {403}, {200}),
    "": ("get", {302}, {200}, {200}),
    "label/": ("get", {302}, {200}, {200}),
    "label/<uuid:assignment_id>/": ("get", {302}, {404}, {404}),
    "exports/<int:export_id>/download/": ("get", {302}, {403}, {200}),
    "rounds/": ("get", {302}, {403}, {200}),
    # version 999999 does not exist; retraining answers 404 where its module is not installed
    "rounds/models/<int:version_id>/evaluate/": ("post", {302}, {403}, {404}),
    "rounds/models/<int:version_id>/make-selector/": ("post", {302}, {403}, {404}),
    "rounds/retrain/": ("post", {302}, {403}, {302, 404}),
}


def routes(patterns=None, prefix=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern) == "admin/":
                continue
            yield from routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def concrete(route, export_id):
    return "/" + (route.replace("<uuid:assignment_id>", "00000000-0000-4000-8000-000000000000")
                  .replace("<int:export_id>", str(export_id))
                  .replace("<int:number>", "1").replace("<int:version_id>", "999999"))


def test_every_route_has_expectations():
    assert set(routes()) == set(EXPECTED)


@pytest.fixture
def export(db, tmp_path, settings):
    settings.EXPORT_DIR = tmp_path
    (tmp_path / "export-1.jsonl").write_text("{}\n")
    Round.objects.create(number=1)
    return Export.objects.create(status=Export.Status.DONE, file="export-1.jsonl")


@pytest.mark.parametrize("who", ["anonymous", "annotator", "admin"])
@pytest.mark.django_db
def test_every_route_for_every_role(client, who, alice, bob, export):
    if who != "anonymous":
        client.force_login(bob if who == "annotator" else alice)
    column = {"anonymous": 1, "annotator": 2, "admin": 3}[who]
    for route, spec in EXPECTED.items():
        method = spec[0]
        url = concrete(route, export.id)
        kwargs = {"content_type": "application/json", "data": "{}"} if method in ("post", "put") else {}
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code in spec[column], f"{who} {method.upper()} {url}: {response.status_code}"
        if who == "anonymous" and response.status_code == 302:
            assert "/login/" in response.url, url
        if who != "anonymous" and route in ("logout/", "api/auth/logout/"):
            client.force_login(bob if who == "annotator" else alice)
