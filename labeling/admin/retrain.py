"""Admin: a form on the Job list that starts a PRM retrain (labeling.services.training.retraining)."""
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from labeling import models
from labeling.admin.rounds import JobAdmin
from labeling.services.jobs.dispatch import in_background
from labeling.errors import InvalidInput
from labeling.services.rounds.registry import selector_active
from labeling.services.training.retraining import NEUTRAL, PROMOTE, RetrainParameters, retrain_start


class RetrainForm(forms.Form):
    base = forms.CharField(required=False, help_text="model spec to start from (empty: STEPWISE_RETRAIN_BASE)")
    learning_rate = forms.FloatField(initial=2e-5)
    epochs = forms.IntegerField(initial=1, min_value=1)
    batch_size = forms.IntegerField(initial=4, min_value=1)
    grad_accum = forms.IntegerField(initial=1, min_value=1, help_text="micro-batches per optimizer step")
    max_length = forms.IntegerField(initial=512, min_value=16, help_text="tokens per labeled solution")
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


class RetrainJobAdmin(JobAdmin):
    change_list_template = "admin/labeling/job/retrain_change_list.html"

    def get_urls(self):
        return [path("retrain/", self.admin_site.admin_view(self.retrain_view), name="labeling_job_retrain")] + \
            super().get_urls()

    def retrain_view(self, request):
        if not request.user.is_superuser:
            messages.error(request, "only admins can retrain the PRM")
            return redirect("admin:labeling_job_changelist")
        form = RetrainForm(request.POST or None, initial={"promote": settings.STEPWISE_AUTO_PROMOTE})
        if request.method == "POST" and form.is_valid():
            try:
                with in_background():  # the embedded mode trains in a thread, not in this request
                    job = retrain_start(params=form.parameters(), user=request.user)
            except InvalidInput as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.info(request, f"Retrain job {job.pk} started; this list shows its progress.")
                return redirect(reverse("admin:labeling_job_changelist") + f"?kind__exact={models.Job.Kind.RETRAIN}")
        context = {**self.admin_site.each_context(request), "form": form, "title": "Retrain the PRM",
                   "opts": self.model._meta, "labels": models.Annotation.objects.count(), "selector": selector_active()}
        return TemplateResponse(request, "admin/labeling/job/retrain.html", context)


admin.site.unregister(models.Job)
admin.site.register(models.Job, RetrainJobAdmin)
