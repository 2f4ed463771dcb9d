"""The annotators' pages: home (what there is to do) and the label page (which runs on the JSON API)."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from labeling.models import Assignment, Task
from labeling.queries import counts
from labeling.services.annotation import queue
from labeling.views.access import admin_links, allowed


def _live_assignment(user):
    annotator = getattr(user, "annotator", None)
    return queue.assignment_live(annotator_id=annotator.pk) if annotator else None


def _has_work(user):
    """A hint for the home page only; the queue service decides what is really served."""
    if _live_assignment(user):
        return True
    return (Task.objects.filter(taken__lt=F("overlap"))
            .exclude(assignments__annotator__user=user).exists())


@login_required
def home(request):
    is_admin = request.user.is_staff
    return render(request, "labeling/home.html", {
        "counts": counts.dataset_counts() if allowed(request.user, "dataset_counts") else None,
        "links": [(label, reverse(name), element) for label, name, element in admin_links(request.user)],
        "is_admin": is_admin,
        "has_work": not is_admin and _has_work(request.user),
    })


@login_required
@ensure_csrf_cookie
def label(request, assignment_id=None):
    """The labeling page. Its data come from the JSON API; the URL names the assignment (by its public id,
    the only one an annotator sees) so a reload resumes it."""
    if assignment_id is None:
        assignment = _live_assignment(request.user)
    else:
        assignment = get_object_or_404(Assignment, public_id=assignment_id, annotator__user=request.user)
        if assignment.status != Assignment.Status.LEASED:
            return redirect("label")
    config = {
        "assignmentId": str(assignment.public_id) if assignment else None,
        "api": "/api/",
        "labelUrl": reverse("label"),
        "loginUrl": f"{settings.LOGIN_URL}?next={reverse('label')}",
    }
    return render(request, "labeling/label.html", {"config": config})
