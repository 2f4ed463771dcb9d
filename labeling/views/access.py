"""The one permission policy of the admins' surfaces outside the Django admin's own model pages.

Each surface (a page, a button, a download, an API endpoint, an admin form of ours) needs the model
permission the Django admin itself asks for the same thing, so a staff user sees and does here exactly
what the admin lets them see and do there; a superuser passes everything, a non-staff user nothing.
A "view" surface also accepts the model's change permission, as the admin's changelist does.

The export download asks view_export whoever requested the export: the file holds every matching label
with its labeler id, and the admin shows its link only to those who may view exports.

Refusals: an anonymous visitor is sent to log in, a logged-in user without the permission gets 403
(the API answers JSON: DRF's 401/403).
"""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


def _view(model):
    return (f"labeling.view_{model}", f"labeling.change_{model}")


# surface -> the permissions, any one of which lets a staff user through
SURFACES = {
    "dataset_counts": _view("problem"),  # the home page's counts of problems, solutions, annotations
    "dashboard": _view("annotator"),  # annotators' speed, QC scores and agreement
    "rounds": _view("round"),  # the rounds page
    "round_api": _view("round"),  # /api/rounds/<n>/ and its selection
    "queue_summary": _view("task"),  # /api/queue/: how full the queue is
    "round_start": ("labeling.add_round",),  # the admin's "Start a round" form
    "export_download": _view("export"),
    "evaluate": ("labeling.add_job",),  # an evaluation job
    "retrain": ("labeling.add_job",),  # a retraining job (the rounds page's button and the admin's form)
    "make_selector": ("labeling.change_modelversion",),  # the page's button and the admin's actions
    "stop_job": ("labeling.change_job",),  # the jobs admin's action
    "clear_annotator": ("labeling.change_annotator",),  # the annotators admin's action
    "solution_rollouts": _view("solution"),  # the solution admin's rollout Q/A section beside the human labels
    "rollouts": ("labeling.change_solution",),  # the solutions admin's "Estimate step values by rollouts" (a job)
}


def allowed(user, surface: str) -> bool:
    """Whether `user` may use `surface` (a key of SURFACES; an unknown one is a programming error)."""
    needed = SURFACES[surface]
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.is_superuser or any(user.has_perm(permission) for permission in needed)


def admin_links(user) -> list[tuple[str, str, str]]:
    """(label, url name, element id) of the admin pages `user` may open, for the home page: a link is shown
    only where following it would not answer 403."""
    links = [("Exports", "admin:labeling_export_changelist", "exports-link", _view("export")),
             ("Problems", "admin:labeling_problem_changelist", "problems-link", _view("problem")),
             ("Solutions", "admin:labeling_solution_changelist", "solutions-link", _view("solution")),
             ("Quality dashboard", "dashboard", "dashboard-link", SURFACES["dashboard"]),
             ("Rounds and models", "rounds", "rounds-link", SURFACES["rounds"])]
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return []
    return [(label, name, element) for label, name, element, needed in links
            if user.is_superuser or any(user.has_perm(p) for p in needed)]


def check(user, surface: str) -> None:
    """Raise PermissionDenied (403) unless `user` may use `surface`: for views already behind a login."""
    if not allowed(user, surface):
        raise PermissionDenied(f"needs one of {', '.join(SURFACES[surface])}")


def requires(surface: str):
    """A view decorator: anonymous visitors log in first, then `check`."""
    SURFACES[surface]  # noqa: B018 - fail at import on a misspelt surface, not on the first request

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            check(request.user, surface)
            return view(request, *args, **kwargs)
        wrapper.surface = surface
        return wrapper
    return decorate


def api_permission(surface: str) -> type[BasePermission]:
    """The DRF permission class of `surface`, from the same table."""
    SURFACES[surface]  # noqa: B018

    class SurfacePermission(BasePermission):
        message = f"needs one of {', '.join(SURFACES[surface])}"

        def has_permission(self, request, view):
            return allowed(request.user, surface)

    SurfacePermission.surface = surface
    SurfacePermission.__name__ = SurfacePermission.__qualname__ = f"Allowed_{surface}"
    return SurfacePermission
