"""Admin for active learning: start a round, watch its jobs' progress, switch the active selector."""
from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from labeling import models
from labeling.services.jobs.dispatch import in_background
from labeling.errors import InvalidInput
from labeling.services.rounds.registry import selector_activate
from labeling.errors import RegistryError
from labeling.services.rounds.stages import RoundParameters, round_start


def progress_html(value, status, label=""):
    return format_html('<progress max="1" value="{}" data-status="{}"></progress> {}% {}', value, status,
                       round(value * 100), label)


class StartRoundForm(forms.Form):
    problems = forms.IntegerField(required=False, min_value=1, help_text="how many problems (empty: all eligible)")
    per_problem = forms.IntegerField(initial=4, min_value=1, help_text="K solutions selected per problem")
    wrong_fraction = forms.FloatField(initial=0.8, min_value=0, max_value=1,
                                      help_text="share of K that are convincing wrong-answer solutions")
    candidates = forms.IntegerField(required=False, min_value=1,
                                    help_text="M candidates per problem; missing ones are generated (empty: use what exists)")
    overlap = forms.IntegerField(initial=1, min_value=1, max_value=32767, help_text="annotators per task")
    label_target = forms.IntegerField(required=False, min_value=1,
                                      help_text="retrain the PRM once this many of the round's labels are in "
                                                "(empty: never automatically)")
    name = forms.CharField(required=False)


@admin.register(models.Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("number", "name", "status", "progress_bar", "selector", "selected", "annotation_count",
                    "started", "finished")
    list_filter = ("status",)
    search_fields = ("name",)
    change_list_template = "admin/labeling/round/change_list.html"
    change_form_template = "admin/labeling/round/change_form.html"
    readonly_fields = ("status", "error", "stats", "parameters", "selector", "started", "finished", "created")

    def get_queryset(self, request):
        from django.db.models import Count
        return super().get_queryset(request).select_related("selector").annotate(n_annotations=Count("annotations"))

    @admin.display(description="annotations", ordering="n_annotations")
    def annotation_count(self, obj):
        return obj.n_annotations

    @admin.display(description="selected")
    def selected(self, obj):
        picked = (obj.stats or {}).get("selected") or {}
        return ", ".join(f"{k} {v}" for k, v in sorted(picked.items())) or "-"

    @admin.display(description="progress")
    def progress_bar(self, obj):
        if obj.status in (models.Round.Status.DONE, models.Round.Status.FAILED):
            return progress_html(1.0 if obj.status == models.Round.Status.DONE else 0.0, obj.status, obj.error[:80])
        job = obj.jobs.order_by("-id").first()
        if job is None:
            return progress_html(0.0, "pending", obj.status)
        return progress_html(job.progress, "running", f"{obj.status}: {job.done}/{job.total}")

    def get_urls(self):
        return [path("start/", self.admin_site.admin_view(self.start_view), name="labeling_round_start")] + \
            super().get_urls()

    def has_add_permission(self, request):
        return False  # rounds are started (below), not typed in

    def start_view(self, request):
        if not request.user.is_superuser and not request.user.has_perm("labeling.change_round"):
            messages.error(request, "only admins can start rounds")
            return redirect("admin:labeling_round_changelist")
        form = StartRoundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            params = RoundParameters(problems=data["problems"], per_problem=data["per_problem"],
                                     wrong_fraction=data["wrong_fraction"], candidates=data["candidates"],
                                     overlap=data["overlap"], label_target=data["label_target"])
            try:
                with in_background():
                    round_ = round_start(params=params, user=request.user, name=data["name"])
            except InvalidInput as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                messages.info(request, f"Round {round_.number} started; this page shows its progress.")
                return redirect(reverse("admin:labeling_round_change", args=[round_.pk]))
        context = {**self.admin_site.each_context(request), "form": form, "title": "Start a round",
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/labeling/round/start.html", context)


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "progress_bar", "round", "model_version", "message", "short_error",
                    "created", "finished")
    list_filter = ("status", "kind")
    change_list_template = "admin/labeling/job/change_list.html"
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

    @admin.action(description="Stop the selected jobs (mark failed; their rounds fail)")
    def stop_jobs(self, request, queryset):
        from labeling.services.jobs.rows import job_fail
        from labeling.services.rounds.stages import round_fail

        stopped = 0
        for job in queryset:
            if job_fail(job_id=job.pk, error=f"stopped by {request.user.username}"):
                stopped += 1
                if job.round_id:
                    round_fail(round_id=job.round_id, error=f"job {job.pk} stopped by {request.user.username}")
        messages.info(request, f"{stopped} job(s) stopped")


class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "architecture", "base_model", "path", "is_active_selector", "activated",
                    "created")
    list_filter = ("kind", "is_active_selector")
    search_fields = ("name", "path", "base_model")
    readonly_fields = ("is_active_selector", "activated", "created")
    actions = ["make_selector"]

    @admin.display(description="architecture")
    def architecture(self, obj):
        return (obj.config or {}).get("architecture", "-")

    @admin.action(description="Make the active selector")
    def make_selector(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "choose exactly one model version")
            return
        try:
            version = selector_activate(version=queryset.get())
        except RegistryError as exc:
            messages.error(request, str(exc))
            return
        messages.info(request, f"{version.name} is now the active selector")


admin.site.unregister(models.ModelVersion)
admin.site.register(models.ModelVersion, ModelVersionAdmin)

from labeling.admin import retrain as admin_retrain  # noqa: E402,F401  the retrain form on the Job admin
