"""Admin for annotators: who they are, their quality-control scores, and clearing them for round tasks."""
from django.contrib import admin, messages

from labeling import models
from labeling.services.quality.gold import annotators_clear
from labeling.views.access import allowed


@admin.register(models.Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ("__str__", "labeler", "screening_passed", "cleared_by_admin", "screening_score", "qc_count",
                    "qc_step_agreement", "qc_first_error_agreement", "qc_score", "created")
    list_filter = ("screening_passed", "cleared_by_admin")
    search_fields = ("user__username", "labeler")
    raw_id_fields = ("user",)
    readonly_fields = ("labeler", "screening_score", "qc_count", "qc_step_agreement", "qc_first_error_agreement",
                       "qc_score")
    actions = ["clear_for_round_tasks"]

    def has_clear_annotator_permission(self, request):
        return allowed(request.user, "clear_annotator")

    @admin.action(description="Clear for round tasks (overrides a failed screening)", permissions=["clear_annotator"])
    def clear_for_round_tasks(self, request, queryset):
        cleared = annotators_clear(annotators=queryset)
        messages.success(request, f"{cleared} annotator(s) cleared for round tasks.")
