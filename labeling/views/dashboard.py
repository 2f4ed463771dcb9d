"""The admins' quality dashboard: annotator speed, QC and screening, inter-annotator agreement."""
import datetime as dt

from django import forms
from django.conf import settings
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone

from labeling.models import Round
from labeling.queries import quality
from labeling.views.access import requires


class DashboardFilter(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=3650, required=False)
    round = forms.IntegerField(required=False)


@requires("dashboard")
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
        "annotators": quality.annotator_rows(since=since),
        "agreement": quality.overlap_agreement(since=since, round_number=round_number),
        "rollout_agreement": quality.rollout_agreement(since=since, round_number=round_number),
        "screening_pass": settings.STEPWISE_SCREENING_PASS,
    })

