"""Django admin for every model: the columns, searches and filters a person running rounds needs."""
import dataclasses
import uuid

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from labeling import models
from labeling.formats.training import NEUTRAL, PROBLEM_SCOPES
from labeling.services.data.exports import FORMATS, OPTIONS, export_create, export_options


def short(text, n=80):
    return Truncator(text or "").chars(n)


@admin.register(models.Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ("id", "source_id", "short_text", "answer", "subject", "level", "split", "solution_count")
    list_filter = ("split", "subject", "level")
    search_fields = ("text", "source_id", "answer")
    readonly_fields = ("text_hash", "created")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_solutions=Count("solutions"))

    @admin.display(description="problem")
    def short_text(self, obj):
        return short(obj.text)

    @admin.display(description="solutions", ordering="n_solutions")
    def solution_count(self, obj):
        return obj.n_solutions


class VerifierScoreInline(admin.TabularInline):
    model = models.VerifierScore
    extra = 0
    fields = ("model_version", "score", "created")
    readonly_fields = ("model_version", "score", "created")


@admin.register(models.Solution)
class SolutionAdmin(admin.ModelAdmin):
    list_display = ("id", "problem_short", "final_answer", "is_correct", "step_count", "generator", "created")
    list_filter = ("is_correct", "generator", "graded_mode", "problem__split")
    search_fields = ("problem__text", "problem__source_id", "final_answer")
    raw_id_fields = ("problem",)
    readonly_fields = ("steps_hash", "created")
    inlines = [VerifierScoreInline]
    list_select_related = ("problem",)

    @admin.display(description="problem")
    def problem_short(self, obj):
        return short(obj.problem.text, 60)

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps or ())


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "base_model", "path", "is_active_selector", "created")
    list_filter = ("kind", "is_active_selector")
    search_fields = ("name", "path", "base_model")


@admin.register(models.VerifierScore)
class VerifierScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "solution_id", "model_version", "score", "created")
    list_filter = ("model_version",)
    raw_id_fields = ("solution",)


@admin.register(models.Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ("__str__", "labeler", "screening_passed", "cleared_by_admin", "qc_score", "created")
    list_filter = ("screening_passed", "cleared_by_admin")
    search_fields = ("user__username", "labeler")
    raw_id_fields = ("user",)
    readonly_fields = ("labeler",)


class StepLabelInline(admin.TabularInline):
    model = models.StepLabel
    extra = 0
    fields = ("index", "chosen_completion", "completions_null", "human_text", "human_rating")
    readonly_fields = fields
    can_delete = False


class CompletionInline(admin.TabularInline):
    model = models.Completion
    extra = 0
    fields = ("step_index", "index", "text", "rating", "flagged")
    readonly_fields = fields
    can_delete = False


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("id", "annotator", "generation_number", "phase", "problem_short", "finish_reason",
                    "total_time_ms", "is_quality_control", "is_screening", "timestamp")
    list_filter = ("phase", "finish_reason", "is_quality_control", "is_screening", "round")
    search_fields = ("problem__text", "annotator__user__username")
    date_hierarchy = "timestamp"
    raw_id_fields = ("annotator", "solution", "problem", "round")
    readonly_fields = ("source_hash", "created")
    list_select_related = ("annotator__user", "round", "problem")
    inlines = [StepLabelInline, CompletionInline]

    def get_search_fields(self, request):
        # An exact labeler lookup needs a UUID; any other term must not reach the UUID column.
        try:
            uuid.UUID(request.GET.get("q", "").strip())
        except ValueError:
            return ("problem__text", "annotator__user__username")
        return ("=annotator__labeler",)

    @admin.display(description="generation", ordering="round__number")
    def generation_number(self, obj):
        return obj.generation

    @admin.display(description="problem")
    def problem_short(self, obj):
        return short(obj.problem.text, 50)


class ExportForm(forms.ModelForm):
    generation = forms.IntegerField(required=False, help_text="only this round (PRM800K generation)")
    labeler = forms.UUIDField(required=False, help_text="only this labeler")
    exclude_qc = forms.BooleanField(required=False, label="Exclude quality-control questions")
    since = forms.DateTimeField(required=False, help_text="only labels at or after this time (UTC)")
    # Format options: each format reads its own, blank means the format's default.
    neutral = forms.ChoiceField(choices=[("", "---------")] + [(n, n) for n in NEUTRAL], required=False,
                                help_text="trl, hf: label of a 0 rating (default positive; drop leaves such "
                                          "annotations out)")
    pairs_per_problem = forms.IntegerField(min_value=1, required=False,
                                           help_text="preference: most pairs per problem (default 4)")
    problems = forms.ChoiceField(choices=[("", "---------")] + [(p, p) for p in PROBLEM_SCOPES], required=False,
                                 help_text="preference: all problems (default), or only those the filtered labels "
                                           "cover")

    class Meta:
        model = models.Export
        fields = ("format",)
        widgets = {"format": forms.Select(choices=[(f, f) for f in sorted(FORMATS)])}

    def clean(self):
        data = super().clean()
        if data.get("format") in FORMATS:
            try:
                export_options(data["format"], self.export_options())
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return data

    def export_options(self):
        """The chosen format's options that were filled in (the form shows every format's)."""
        kind = OPTIONS.get(self.cleaned_data.get("format"))
        names = [f.name for f in dataclasses.fields(kind)] if kind else []
        return {name: self.cleaned_data[name] for name in names if self.cleaned_data.get(name) not in (None, "")}

    def export_filters(self):
        data = self.cleaned_data
        return {"generation": data["generation"], "labeler": str(data["labeler"]) if data["labeler"] else None,
                "exclude_qc": data["exclude_qc"], "since": data["since"].isoformat() if data["since"] else None}


@admin.register(models.Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ("id", "format", "status", "progress_bar", "record_count", "step_count", "short_sha",
                    "download", "requested_by", "created", "finished")
    list_filter = ("status", "format")
    change_list_template = "admin/labeling/export/change_list.html"
    readonly_fields = ("status", "progress", "record_count", "step_count", "sha256", "file", "error",
                       "celery_task_id", "requested_by", "created", "started", "finished", "filters", "download",
                       "provenance")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ExportForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("format", "generation", "labeler", "exclude_qc", "since", "neutral", "pairs_per_problem",
                    "problems")
        return ("format", "filters") + tuple(f for f in self.readonly_fields if f != "filters")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # The service creates the row and enqueues the job after commit; the admin only reads the form.
        created = export_create(fmt=form.cleaned_data["format"], filters=form.export_filters(),
                                options=form.export_options(), user=request.user)
        obj.pk = created.pk
        messages.info(request, f"Export {created.pk} queued; this page shows its progress.")

    @admin.display(description="progress")
    def progress_bar(self, obj):
        return format_html('<progress max="1" value="{}" data-status="{}"></progress> {}%', obj.progress,
                           obj.status, round(obj.progress * 100))

    @admin.display(description="sha256")
    def short_sha(self, obj):
        return obj.sha256[:12]

    @admin.display(description="file")
    def download(self, obj):
        if obj.status != models.Export.Status.DONE:
            return obj.error[:80] if obj.error else "-"
        return format_html('<a href="{}">download</a>', reverse("export-download", args=[obj.id]))


@admin.register(models.StepLabel)
class StepLabelAdmin(admin.ModelAdmin):
    list_display = ("id", "annotation_id", "index", "chosen_completion", "completions_null", "human_rating")
    raw_id_fields = ("annotation",)
    list_filter = ("completions_null",)


@admin.register(models.Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ("id", "annotation_id", "step_index", "index", "short_text", "rating", "flagged")
    list_filter = ("rating", "flagged")
    search_fields = ("text",)
    raw_id_fields = ("annotation",)

    @admin.display(description="text")
    def short_text(self, obj):
        return short(obj.text, 80)


# --- Quality control --------------------------------------------------------------------------------
# Appended rather than edited above, so parallel work on this file merges cleanly: the annotator
# admin is extended by subclassing and registered again.

class AnnotatorQualityAdmin(AnnotatorAdmin):
    list_display = ("__str__", "labeler", "screening_passed", "cleared_by_admin", "screening_score", "qc_count",
                    "qc_step_agreement", "qc_first_error_agreement", "qc_score", "created")
    readonly_fields = ("labeler", "screening_score", "qc_count", "qc_step_agreement", "qc_first_error_agreement",
                       "qc_score")
    actions = ["clear_for_round_tasks"]

    @admin.action(description="Clear for round tasks (overrides a failed screening)")
    def clear_for_round_tasks(self, request, queryset):
        from labeling.services.quality.gold import annotators_clear

        cleared = annotators_clear(annotators=queryset)
        messages.success(request, f"{cleared} annotator(s) cleared for round tasks.")


admin.site.unregister(models.Annotator)
admin.site.register(models.Annotator, AnnotatorQualityAdmin)


class TaskForm(forms.ModelForm):
    class Meta:
        model = models.Task
        fields = "__all__"

    def clean(self):
        from labeling.errors import DataError
        from labeling.services.quality.gold import GOLD_KINDS, gold_validate

        data = super().clean()
        solution, gold = data.get("solution"), data.get("gold_ratings")
        if solution is not None and (data.get("kind") in GOLD_KINDS or gold is not None):
            try:
                gold_validate(gold, len(solution.steps))
            except DataError as exc:
                raise forms.ValidationError({"gold_ratings": f"{exc.field}: {exc.message}"}) from None
        return data


class TaskAdmin(admin.ModelAdmin):
    form = TaskForm
    list_display = ("id", "kind", "round", "solution_id", "priority", "overlap", "taken", "submitted", "gold_ratings",
                    "created")
    list_filter = ("kind", "round")
    raw_id_fields = ("solution",)
    readonly_fields = ("taken", "submitted", "created")
    list_select_related = ("round",)


class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "annotator", "status", "leased_at", "expires_at", "submitted_at", "annotation_id")
    list_filter = ("status", "task__kind")
    search_fields = ("annotator__user__username",)
    raw_id_fields = ("task", "annotator", "annotation")
    readonly_fields = ("draft", "draft_saved_at")
    list_select_related = ("task", "annotator__user")


# The queue work may register these as well: where its registration comes first, it is kept.
for model, model_admin in ((models.Task, TaskAdmin), (models.Assignment, AssignmentAdmin)):
    if not admin.site.is_registered(model):
        admin.site.register(model, model_admin)


from labeling.admin import rounds as admin_rounds  # noqa: E402,F401  rounds, jobs and the selector switch
