"""Admin for the data: problems, solutions, annotations with their steps, tasks and assignments."""
import uuid

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from labeling import models
from labeling.admin.display import short
from labeling.admin.solution_rollouts import rollout_section
from labeling.errors import DataError
from labeling.formats.qc import GOLD_KINDS, gold_validate
from labeling.services.jobs.dispatch import in_background
from labeling.services.rollouts.labeling_job import rollouts_start
from labeling.views.access import allowed


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent as they were stored: nothing to add, edit or delete."""
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


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


class VerifierScoreInline(ReadOnlyInline):
    model = models.VerifierScore
    fields = ("model_version", "score", "created")
    can_delete = True


@admin.register(models.Solution)
class SolutionAdmin(admin.ModelAdmin):
    list_display = ("id", "problem_short", "final_answer", "is_correct", "step_count", "generator", "created")
    list_filter = ("is_correct", "generator", "graded_mode", "problem__split")
    search_fields = ("problem__text", "problem__source_id", "final_answer")
    raw_id_fields = ("problem",)
    readonly_fields = ("steps_hash", "created")
    inlines = [VerifierScoreInline]
    list_select_related = ("problem",)
    actions = ["estimate_step_values"]

    def has_rollouts_permission(self, request):
        return allowed(request.user, "rollouts")

    @admin.action(description="Estimate step values by rollouts (8 per prefix, every prefix, the default prover)",
                  permissions=["rollouts"])
    def estimate_step_values(self, request, queryset):
        with in_background():  # the embedded mode rolls out in a thread, not in this request
            job = rollouts_start(solution_ids=list(queryset.order_by("id").values_list("id", flat=True)),
                                 user=request.user)
        skipped = job.parameters["skipped_no_answer"]
        messages.success(request, f"Rollouts job {job.pk} queued for {job.total} solution(s) with "
                                  f"{job.parameters['prover']}" + (f"; {skipped} left out (no reference answer)"
                                                                   if skipped else "") + ".")

    @admin.display(description="problem")
    def problem_short(self, obj):
        return short(obj.problem.text, 60)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and allowed(request.user, "solution_rollouts"):
            fields = (*fields, "rollout_labels")
        return fields

    def get_fieldsets(self, request, obj=None):
        fields = [f for f in self.get_fields(request, obj) if f != "rollout_labels"]
        if "rollout_labels" not in self.get_readonly_fields(request, obj):
            return [(None, {"fields": fields})]
        return [(None, {"fields": fields}), ("Rollout labels beside human labels", {"fields": ["rollout_labels"]})]

    @admin.display(description="per step")
    def rollout_labels(self, obj):
        return rollout_section(obj)

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps or ())


class StepLabelInline(ReadOnlyInline):
    model = models.StepLabel
    fields = ("index", "chosen_completion", "completions_null", "human_text", "human_rating")


class CompletionInline(ReadOnlyInline):
    model = models.Completion
    fields = ("step_index", "index", "text", "rating", "flagged")


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


class TaskForm(forms.ModelForm):
    class Meta:
        model = models.Task
        fields = "__all__"

    def clean_overlap(self):
        overlap = self.cleaned_data["overlap"]
        if self.instance.pk is not None:
            # Read now, not when the page was drawn: leases keep being taken while the admin edits.
            taken = models.Task.objects.filter(pk=self.instance.pk).values_list("taken", flat=True).first() or 0
            if overlap < taken:
                raise forms.ValidationError(
                    f"overlap may not be below the {taken} slots already taken (live leases plus submissions); "
                    f"set it to {taken} or more to close the task")
        return overlap

    def clean(self):
        data = super().clean()
        solution, gold = data.get("solution"), data.get("gold_ratings")
        if solution is not None and (data.get("kind") in GOLD_KINDS or gold is not None):
            try:
                gold_validate(gold, len(solution.steps))
            except DataError as exc:
                raise forms.ValidationError({"gold_ratings": f"{exc.field}: {exc.message}"}) from None
        return data


@admin.register(models.Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskForm
    list_display = ("id", "kind", "round", "solution_id", "priority", "overlap", "taken", "submitted", "gold_ratings",
                    "created")
    list_filter = ("kind", "round")
    raw_id_fields = ("solution",)
    readonly_fields = ("taken", "submitted", "created")
    list_select_related = ("round",)


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "public_id", "task", "annotator", "status", "leased_at", "expires_at", "submitted_at",
                    "annotation_id")
    list_filter = ("status", "task__kind")
    # An annotator reports "Task 422e9e81" (the first characters of the only id they see): searchable here.
    search_fields = ("annotator__user__username", "public_id")
    raw_id_fields = ("task", "annotator", "annotation")
    readonly_fields = ("draft", "draft_saved_at")
    list_select_related = ("task", "annotator__user")
