"""The permission matrix: every admin URL and action, for anonymous, an annotator (bob), staff without
permissions (carol), staff with exactly the surface's permission (granted), staff with every labeling
permission but that one (all_but), and a superuser (alice). The policy is labeling.views.access.

A route, an admin URL or an admin action that no table here names fails the walk tests, so a new admin
surface cannot go in without its permission.
"""
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from labeling.models import Annotator, Assignment, Export, Job, ModelVersion, Round, VerifierScore
from labeling.services.rounds.registry import selector_active
from labeling.views.access import SURFACES
from tests.label_factories import annotation_make
from tests.queue_factories import task_make

# Routes anyone logged in (or anyone) may use; their statuses are in tests/test_every_url.py.
NOT_ADMIN = {"login/", "logout/", "api/auth/token/", "api/auth/logout/", "api/queue/next/",
             "api/assignments/<uuid:assignment_id>/", "api/assignments/<uuid:assignment_id>/draft/",
             "api/assignments/<uuid:assignment_id>/submit/", "api/schema/", "api/", "", "label/",
             "label/<uuid:assignment_id>/"}
# route -> (method, surface, kind); kind says what a refusal and a success look like
ROUTES = {
    "dashboard/": ("get", "dashboard", "page"),
    "rounds/": ("get", "rounds", "page"),
    "exports/<int:export_id>/download/": ("get", "export_download", "page"),
    "rounds/models/<int:version_id>/evaluate/": ("post", "evaluate", "button"),
    "rounds/models/<int:version_id>/make-selector/": ("post", "make_selector", "button"),
    "rounds/retrain/": ("post", "retrain", "button"),
    "api/rounds/<int:number>/": ("get", "round_api", "api"),
    "api/rounds/<int:number>/selection/": ("get", "round_api", "api"),
    "api/queue/": ("get", "queue_summary", "api"),
}
# The Django admin's own views of ours: admin URL name -> surface
ADMIN_VIEWS = {"labeling_job_retrain": "retrain", "labeling_round_start": "round_start"}
# The labeling admins' actions: (model, action) -> surface (delete_selected is Django's, on delete_<model>)
ACTIONS = {("job", "stop_jobs"): "stop_job", ("modelversion", "make_selector"): "make_selector",
           ("modelversion", "make_selector_anyway"): "make_selector",
           ("annotator", "clear_for_round_tasks"): "clear_annotator",
           ("solution", "estimate_step_values"): "rollouts"}
# Sections of a labeling admin's change page that a surface shows: (model, read-only field) -> surface
ADMIN_SECTIONS = {("solution", "rollout_labels"): "solution_rollouts"}
STANDARD_ADMIN = {"changelist", "add", "history", "delete", "change"}
pytestmark = pytest.mark.usefixtures("fast_passwords")
PERSONAS = ["anonymous", "bob", "carol", "all_but", "granted", "alice"]
ALLOWED = {"granted", "alice"}


def routes(patterns=None, prefix=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern) != "admin/":
                yield from routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def labeling_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label == "labeling"]


def surfaces_of(callback):
    """The surfaces a resolved view checks: its `requires` decorator's, or its DRF permission classes'."""
    found = {getattr(callback, "surface", None)}
    found |= {getattr(p, "surface", None) for p in getattr(getattr(callback, "cls", None), "permission_classes", [])}
    return found - {None}


def test_every_route_is_for_everyone_or_behind_its_surface():
    assert set(routes()) == NOT_ADMIN | set(ROUTES)
    for route, (_, surface, _) in ROUTES.items():
        assert surfaces_of(resolve(concrete(route, 1, 1)).func) == {surface}, route
    for route in NOT_ADMIN:
        assert not surfaces_of(resolve(concrete(route, 1, 1)).func), route


def test_every_admin_url_and_action_is_known():
    for model, model_admin in labeling_admins():
        prefix = f"labeling_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            if pattern.name:
                suffix = pattern.name.removeprefix(prefix)
                assert suffix in STANDARD_ADMIN or pattern.name in ADMIN_VIEWS, pattern.name
        for action in model_admin.actions or []:
            assert (model._meta.model_name, action) in ACTIONS, action
            assert getattr(model_admin, action).allowed_permissions, action
    # dataset_counts is a part of the home page (test_the_home_page_links_only_what_each_staff_user_may_open)
    assert set(SURFACES) == ({s for _, s, _ in ROUTES.values()} | set(ADMIN_VIEWS.values()) | set(ACTIONS.values())
                             | set(ADMIN_SECTIONS.values()) | {"dataset_counts"})


def concrete(route, export_id, version_id):
    return "/" + (route.replace("<uuid:assignment_id>", "00000000-0000-4000-8000-000000000000")
                  .replace("<int:export_id>", str(export_id))
                  .replace("<int:number>", "1").replace("<int:version_id>", str(version_id)))


@pytest.fixture
def world(db, bob, tmp_path, settings):
    """A row of every model the labeling admins show; an evaluated PRM that is not the selector."""
    settings.EXPORT_DIR = tmp_path
    (tmp_path / "export-1.jsonl").write_text("{}\n")
    version = ModelVersion.objects.create(name="evaluated", kind="prm", path="/nonexistent",
                                          config={"architecture": "step_head"},
                                          metrics={"evaluation": {"processbench_f1": 0.5}})
    round_ = Round.objects.create(number=1)
    task = task_make(round=round_)
    annotation = annotation_make(annotator=bob.annotator, solution=task.solution, ratings=[1, 1, 1, -1], round=round_)
    Assignment.objects.create(task=task, annotator=bob.annotator, annotation=annotation, round=round_,
                              status=Assignment.Status.SUBMITTED, leased_at=annotation.timestamp,
                              expires_at=annotation.timestamp)
    VerifierScore.objects.create(solution=task.solution, model_version=version, score=0.5)
    job = Job.objects.create(kind=Job.Kind.EVALUATE, status=Job.Status.RUNNING, model_version=version)
    export = Export.objects.create(status=Export.Status.DONE, file="export-1.jsonl")
    for model, _ in labeling_admins():
        assert model.objects.exists(), model
    return {"version": version, "job": job, "export": export, "solution": task.solution}


def staff_with(permissions, name):
    user, created = get_user_model().objects.get_or_create(username=name, defaults={"is_staff": True})
    if not created:
        return user
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="labeling",
                                                         codename=codename.split(".")[1]))
    return user


def log_in(client, who, surface, bob, carol, alice):
    """Log `who` in for `surface`; granted holds exactly its first permission, all_but every other one."""
    needed = SURFACES[surface]
    users = {"bob": bob, "carol": carol, "alice": alice}
    if who == "granted":
        users[who] = staff_with(needed[:1], name=f"granted-{surface}")
    elif who == "all_but":
        every = Permission.objects.filter(content_type__app_label="labeling")
        users[who] = staff_with([f"labeling.{p.codename}" for p in every if f"labeling.{p.codename}" not in needed],
                                name=f"all-but-{surface}")
    if who != "anonymous":
        client.force_login(users[who])


@pytest.mark.parametrize("who", PERSONAS)
def test_our_admin_surfaces(client, who, world, bob, carol, alice):
    for route, (method, surface, kind) in ROUTES.items():
        client.logout()
        log_in(client, who, surface, bob, carol, alice)
        url = concrete(route, world["export"].id, world["version"].id)
        response = getattr(client, method)(url)
        where = f"{who} {method.upper()} {url}: {response.status_code}"
        if who == "anonymous":
            if kind == "api":
                assert response.status_code == 401, where
            else:
                assert response.status_code == 302 and response.url.startswith("/login/"), where
        elif who not in ALLOWED:
            assert response.status_code == 403, where
            if kind == "api":
                assert "needs one of" in response.json()["error"]["message"], where
        elif kind == "button":
            assert response.status_code == 302 and response.url == "/rounds/", where
        else:
            assert response.status_code == 200, where
    # the one button whose effect shows at once: only a persona allowed to switched the selector
    assert (selector_active() == world["version"]) is (who in ALLOWED)


def admin_urls(world):
    """(url, model admin, standard name or None) of every labeling admin URL, objects filled in."""
    for model, model_admin in labeling_admins():
        name = model._meta.model_name
        pk = model.objects.order_by("pk").first().pk
        for pattern in model_admin.get_urls():
            if pattern.name is None:
                continue  # <object_id>/: a redirect to the change page
            suffix = pattern.name.removeprefix(f"labeling_{name}_")
            args = [pk] if suffix in ("history", "delete", "change") else []
            yield reverse(f"admin:{pattern.name}", args=args), model_admin, suffix


@pytest.mark.parametrize("who", ["anonymous", "bob", "carol", "alice"])
def test_every_labeling_admin_page(client, who, world, bob, carol, alice):
    if who != "anonymous":
        client.force_login({"bob": bob, "carol": carol, "alice": alice}[who])
    refused = client.get("/admin/labeling/")
    assert refused.status_code == {"anonymous": 302, "bob": 302, "carol": 404, "alice": 200}[who]
    for url, model_admin, suffix in admin_urls(world):
        response = client.get(url)
        where = f"{who} GET {url}: {response.status_code}"
        if who in ("anonymous", "bob"):
            assert response.status_code == 302 and response.url.startswith("/admin/login/"), where
        elif who == "carol":
            assert response.status_code == 403, where
        elif suffix == "add" and not model_admin.has_add_permission(response.wsgi_request):
            assert response.status_code == 403, where  # rounds and jobs are started, not typed in
        else:
            assert response.status_code == 200, where


@pytest.mark.parametrize("surface", sorted(set(ADMIN_VIEWS.values())))
@pytest.mark.parametrize("who", ["carol", "all_but", "granted", "alice"])
def test_our_views_in_the_admin(client, who, surface, world, bob, carol, alice):
    log_in(client, who, surface, bob, carol, alice)
    name = next(n for n, s in ADMIN_VIEWS.items() if s == surface)
    assert client.get(reverse(f"admin:{name}")).status_code == (200 if who in ALLOWED else 403)
    assert client.post(reverse(f"admin:{name}"), {}).status_code == (200 if who in ALLOWED else 403)  # form errors


@pytest.mark.parametrize("model, field", sorted(ADMIN_SECTIONS))
@pytest.mark.parametrize("who", ["carol", "all_but", "granted", "alice"])
def test_admin_sections(client, who, model, field, world, bob, carol, alice):
    """The section shows exactly to those allowed its surface (the page itself needs the model's view)."""
    log_in(client, who, ADMIN_SECTIONS[(model, field)], bob, carol, alice)
    pk = next(m for m, _ in labeling_admins() if m._meta.model_name == model).objects.order_by("pk").first().pk
    response = client.get(reverse(f"admin:labeling_{model}_change", args=[pk]))
    if who in ALLOWED:
        assert response.status_code == 200 and f"field-{field}" in response.content.decode()
    else:
        assert response.status_code == 403 or f"field-{field}" not in response.content.decode()


def action_done(world, model, action):
    if model == "job":
        return Job.objects.get(pk=world["job"].pk).status == Job.Status.FAILED
    if model == "modelversion":
        return selector_active() == world["version"]
    if model == "solution":
        return Job.objects.filter(kind=Job.Kind.ROLLOUTS).exists()
    return Annotator.objects.filter(cleared_by_admin=True).exists()


@pytest.mark.parametrize("model, action", sorted(ACTIONS))
@pytest.mark.parametrize("who", ["carol", "viewer", "all_but", "granted", "alice"])
def test_every_admin_action(client, who, model, action, world, bob, carol, alice):
    """viewer holds only view_<model>: the list shows, the action does not run."""
    surface = ACTIONS[(model, action)]
    if who == "viewer":
        client.force_login(staff_with([f"labeling.view_{model}"], name=f"viewer-{model}"))
    else:
        log_in(client, who, surface, bob, carol, alice)
    target = {"job": world["job"], "modelversion": world["version"], "annotator": bob.annotator,
              "solution": world["solution"]}[model]
    response = client.post(reverse(f"admin:labeling_{model}_changelist"),
                           {"action": action, "_selected_action": [target.pk]})
    # carol sees no list at all; viewer and all_but see it (view_<model>) but are not offered the action
    assert response.status_code == 403 if who == "carol" else response.status_code in (200, 302), who
    assert action_done(world, model, action) is (who in ALLOWED), who


def test_the_home_page_links_only_what_each_staff_user_may_open(client, world, bob, carol, alice):
    """A link on the home page never leads to a 403, and counts show only to who may view problems."""
    client.force_login(carol)
    page = client.get("/").content.decode()
    assert 'id="no-admin-pages"' in page and 'id="count-problems"' not in page and "rounds-link" not in page
    rounds_only = staff_with(SURFACES["rounds"][:1], name="rounds-only")
    client.force_login(rounds_only)
    page = client.get("/").content.decode()
    assert 'id="rounds-link"' in page and "exports-link" not in page and "dashboard-link" not in page
    assert client.get("/rounds/").status_code == 200
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'id="count-problems"' in page
    for element in ("exports-link", "problems-link", "solutions-link", "dashboard-link", "rounds-link"):
        assert f'id="{element}"' in page
    import re
    for href in re.findall(r'<a id="[a-z-]+-link" href="([^"]+)"', page):
        assert client.get(href).status_code == 200, href
