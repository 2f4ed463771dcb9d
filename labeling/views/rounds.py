"""The rounds page: rounds, the PRM trained after each, its evaluation; buttons to evaluate, promote, retrain.

Each button starts its work inside dispatch.in_background(), so in the embedded mode a click does not
wait for a model to load; with workers it only queues a message either way.
"""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling.queries import rounds as selectors_rounds
from labeling.views.dashboard import admin_required
from labeling.models import ModelVersion
from labeling.services.jobs.dispatch import in_background
from labeling.services.training.evaluation import evaluation_start, version_promote
from labeling.errors import EvaluationError
from labeling.errors import QueueError
from labeling.errors import RegistryError


@admin_required
def rounds(request):
    return render(request, "labeling/rounds.html", selectors_rounds.rounds_page())


def _prm(version_id):
    return get_object_or_404(ModelVersion, pk=version_id, kind=ModelVersion.Kind.PRM)


@require_POST
@admin_required
def version_evaluate(request, version_id):
    version = _prm(version_id)
    try:
        with in_background():
            job = evaluation_start(version=version, user=request.user)
    except EvaluationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"evaluation job {job.pk} of {version.name} started")
    return redirect("rounds")


@require_POST
@admin_required
def version_make_selector(request, version_id):
    version = _prm(version_id)
    try:
        with in_background():
            version_promote(version=version, user=request.user)
    except RegistryError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{version.name} is now the selector; rounds started from now on use it")
    return redirect("rounds")


@require_POST
@admin_required
def retrain_now(request):
    if not selectors_rounds.retraining_available():
        raise Http404("retraining is not installed here")
    from labeling.services.training.retraining import RetrainParameters, retrain_start

    try:
        with in_background():
            job = retrain_start(params=RetrainParameters(), user=request.user)
    except (ValueError, QueueError) as exc:
        messages.error(request, f"retraining not started: {exc}")
    else:
        messages.success(request, f"retraining job {job.pk} started")
    return redirect("rounds")
