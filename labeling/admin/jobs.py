"""Admin for jobs: their progress, stopping them, and the form that starts a PRM retrain.

The retrain itself is labeling.services.training.retraining.retrain_start.
"""
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from labeling import models
from labeling.admin.display import progress_html
from labeling.errors import InvalidInput
from labeling.services.jobs.dispatch import in_background
from labeling.services.jobs.rows import job_fail
from labeling.services.rounds.registry import selector_active
from labeling.services.rounds.stages import round_fail
from labeling.services.training.retraining import NEUTRAL, PROMOTE, RetrainParameters, retrain_start
from labeling.views.access import allowed, check


class RetrainForm(forms.Form):
    base = forms.CharField(required=False, help_text="model spec to start from (empty: STEPWISE_RETRAIN_BASE)")
    learning_rate = forms.FloatField(initial=2e-5)
    epochs = forms.IntegerField(initial=1, min_value=1)
    batch_size = forms.IntegerField(initial=4, min_value=1)
    grad_accum = forms.IntegerField(initial=1, min_value=1, help_text="micro-batches per optimizer step")
    max_length = forms.IntegerField(initial=lambda: settings.STEPWISE_MAX_LENGTH, min_value=16,
                                    help_text="tokens per labeled solution (STEPWISE_MAX_LENGTH: scoring uses the same)")
    seed = forms.IntegerField(initial=0, min_value=0)
    neutral = forms.ChoiceField(choices=[(n, n) for n in NEUTRAL], initial="class",
                                help_text="what a 0 rating trains as: its own class (PRM800K), +1, -1, or drop "
                                          "the solutions that have one")
    rounds = forms.CharField(required=False, help_text="only these rounds' labels, e.g. 1,2 (empty: all labels)")
    promote = forms.ChoiceField(choices=[(p, p) for p in PROMOTE],
                                help_text="manual: an admin switches the selector; if_better: an evaluation may")

    def clean_rounds(self):
        raw = self.cleaned_data["rounds"].strip()
        if not raw:
            return None
        try:
            return tuple(int(n) for n in raw.split(",") if n.strip())
        except ValueError:
            raise forms.ValidationError("round numbers separated by commas") from None

    def parameters(self) -> RetrainParameters:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        return RetrainParameters(**data)


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress_bar", "round", "model_version", "message", "short_error",
                    "created", "finished")
    list_filter = ("status", "kind")
    change_list_template = "admin/labeling/job/retrain_change_list.html"
    readonly_fields = [f.name for f in models.Job._meta.fields]
    actions = ["stop_jobs"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="progress")
    def progress_bar(self, obj):
        return progress_html(obj.progress, obj.status, f"{obj.done}/{obj.total}")

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:80]

    def has_stop_job_permission(self, request):
        return allowed(request.user, "stop_job")

    @admin.action(description="Stop the selected jobs (mark failed; their rounds fail)", permissions=["stop_job"])
    def stop_jobs(self, request, queryset):
        stopped = 0
        for job in queryset:
            if job_fail(job_id=job.pk, error=f"stopped by {request.user.username}"):
                stopped += 1
                if job.round_id:
                    round_fail(round_id=job.round_id, error=f"job {job.pk} stopped by {request.user.username}")
        messages.info(request, f"{stopped} job(s) stopped")

    def get_urls(self):
        return [path("retrain/", self.admin_site.admin_view(self.retrain_view), name="labeling_job_retrain")] + \
            super().get_urls()

    def retrain_view(self, request):
        check(request.user, "retrain")  # as the rounds page's "Retrain now"
        form = RetrainForm(request.POST or None, initial={"promote": settings.STEPWISE_AUTO_PROMOTE})
        if request.method == "POST" and form.is_valid():
            try:
                with in_background():  # the embedded mode trains in a thread, not in this request
                    job = retrain_start(params=form.parameters(), user=request.user)
            except InvalidInput as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                what = "is already under way (one at a time)" if getattr(job, "already_running", False) else "started"
                messages.info(request, f"Retrain job {job.pk} {what}; this list shows its progress.")
                return redirect(reverse("admin:labeling_job_changelist") + f"?kind__exact={models.Job.Kind.RETRAIN}")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Retrain the PRM",
                   "opts": self.model._meta, "labels": models.Annotation.objects.count(), "selector": selector_active()}
        return TemplateResponse(request, "admin/labeling/job/retrain.html", context)
