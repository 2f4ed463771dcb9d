"""Admin for active-learning rounds: start a round and watch its progress (its jobs: labeling.admin.jobs)."""
from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from labeling import models
from labeling.admin.display import progress_html
from labeling.admin.round_facts import facts_table, parameter_rows, selector_rows, stats_rows
from labeling.errors import InvalidInput
from labeling.services.jobs.dispatch import in_background
from labeling.core.selection import SELECTION_RULES
from labeling.services.rounds.stages import RoundParameters, round_start
from labeling.views.access import check


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
    selection_rule = forms.ChoiceField(choices=[(r, r) for r in SELECTION_RULES], initial="prm800k",
                                       help_text="prm800k: convincing wrong answers by selector score; disagreement: "
                                                 "first the solutions whose rollouts contradict the selector")
    rollout_hints = forms.BooleanField(required=False, help_text="show annotators the rollouts' estimated first "
                                                                 "error (off by default: it anchors)")
    name = forms.CharField(required=False)


@admin.register(models.Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("number", "name", "status", "progress_bar", "selector", "selected", "annotation_count",
                    "started", "finished")
    list_filter = ("status",)
    search_fields = ("name",)
    change_list_template = "admin/labeling/round/change_list.html"
    change_form_template = "admin/labeling/round/change_form.html"
    readonly_fields = ("status", "error", "selector", "started", "finished", "created", "stats_table",
                       "selector_table", "parameters_table")
    fieldsets = ((None, {"fields": ("status", "error", "selector", "started", "finished", "created")}),
                 ("What the round did", {"fields": ("stats_table", "selector_table")}),
                 ("Parameters", {"fields": ("parameters_table",)}))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("selector").annotate(n_annotations=Count("annotations"))

    @admin.display(description="annotations", ordering="n_annotations")
    def annotation_count(self, obj):
        return obj.n_annotations

    @admin.display(description="selected")
    def selected(self, obj):
        picked = (obj.stats or {}).get("selected") or {}
        return ", ".join(f"{k} {v}" for k, v in sorted(picked.items())) or "-"

    @admin.display(description="counts and timings")
    def stats_table(self, obj):
        return facts_table(stats_rows(obj.stats), "round-stats", empty="none yet: the round is under way")

    @admin.display(description="selector")
    def selector_table(self, obj):
        return facts_table(selector_rows((obj.stats or {}).get("selector")), "round-selector",
                           empty="the active selector when the round started (no training, no validation here)")

    @admin.display(description="as started")
    def parameters_table(self, obj):
        return facts_table(parameter_rows(obj.parameters), "round-parameters", empty="none recorded")

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
        check(request.user, "round_start")
        form = StartRoundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            params = RoundParameters(problems=data["problems"], per_problem=data["per_problem"],
                                     wrong_fraction=data["wrong_fraction"], candidates=data["candidates"],
                                     overlap=data["overlap"], label_target=data["label_target"],
                                     selection_rule=data["selection_rule"], rollout_hints=data["rollout_hints"])
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
