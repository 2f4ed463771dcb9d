"""The admins' quality dashboard: annotator speed, QC and screening, inter-annotator agreement.

Included from annotate/urls.py at /dashboard/; this module is its own URLconf.
"""
import datetime as dt
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from labeling.queries import quality as selectors_quality
from labeling.models import Round


def admin_required(view):
    """Anonymous visitors go to the login page; logged-in annotators get 403 (they are not lost, just not admins)."""
    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)
    return wrapper


class DashboardFilter(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=3650, required=False)
    round = forms.IntegerField(required=False)


@admin_required
def dashboard(request):
    form = DashboardFilter(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(f"bad filter: {form.errors.as_text()}")
    days = form.cleaned_data["days"] or 30
    round_number = form.cleaned_data["round"]
    since = timezone.now() - dt.timedelta(days=days)
    return render(request, "labeling/dashboard.html", {
        "days": days,
        "round_number": round_number,
        "rounds": Round.objects.values_list("number", flat=True),
        "annotators": selectors_quality.annotator_rows(since=since),
        "agreement": selectors_quality.overlap_agreement(since=since, round_number=round_number),
        "screening_pass": settings.STEPWISE_SCREENING_PASS,
    })


urlpatterns = [path("", dashboard, name="dashboard")]
