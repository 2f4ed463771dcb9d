"""The rounds page: rounds, the PRM trained after each, its evaluation; buttons to evaluate, promote, retrain.

Each button starts its work inside dispatch.in_background(), so in the embedded mode a click does not
wait for a model to load; with workers it only queues a message either way.
"""
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling.errors import EvaluationError, QueueError, RegistryError
from labeling.models import ModelVersion
from labeling.queries import rounds as round_queries
from labeling.services.jobs.dispatch import in_background
from labeling.services.rounds.registry import selector_activate
from labeling.services.training.evaluation import evaluation_start
from labeling.services.training.retraining import RetrainParameters, retrain_start
from labeling.views.access import requires


@requires("rounds")
def rounds(request):
    return render(request, "labeling/rounds.html", round_queries.rounds_page())


def _prm(version_id):
    return get_object_or_404(ModelVersion, pk=version_id, kind=ModelVersion.Kind.PRM)


def _button(request, start, *, refused, success, failure="{}"):
    """Run a button's `start()`, then back to the rounds page with what came of it."""
    try:
        with in_background():
            started = start()
    except refused as exc:
        messages.error(request, failure.format(exc))
    else:
        messages.success(request, success(started))
    return redirect("rounds")


def _version_button(surface, start, *, refused, success):
    """The view of a button on one PRM version: `start(version, request)`, then `success(version, result)`."""
    @require_POST
    @requires(surface)
    def view(request, version_id):
        version = _prm(version_id)
        return _button(request, lambda: start(version, request), refused=refused,
                       success=lambda started: success(version, started))
    return view


version_evaluate = _version_button(
    "evaluate", lambda version, request: evaluation_start(version=version, user=request.user),
    refused=EvaluationError, success=lambda version, job: f"evaluation job {job.pk} of {version.name} started")
# A version without an evaluation or a validation that beats chance is refused unless the admin ticks
# "Make selector anyway" (POST force); the click is recorded on the version (activated_by, activation_note).
version_make_selector = _version_button(
    "make_selector",
    lambda version, request: selector_activate(version=version, user=request.user,
                                               force=request.POST.get("force") in ("1", "on", "true")),
    refused=RegistryError,
    success=lambda version, active: f"{version.name} is now the selector ({active.activation_note}); "
                                    "rounds started from now on use it")


@require_POST
@requires("retrain")
def retrain_now(request):
    return _button(request, lambda: retrain_start(params=RetrainParameters(), user=request.user),
                   refused=(ValueError, QueueError), success=lambda job: f"retraining job {job.pk} " + ("is already under way (one at a time)"
                                                                        if getattr(job, "already_running", False)
                                                                        else "started"),
                   failure="retraining not started: {}")
