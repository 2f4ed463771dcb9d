"""Admin for model versions (and the switch of the active selector) and the verifier scores they gave."""
from django.contrib import admin, messages

from labeling import models
from labeling.errors import RegistryError
from labeling.services.rounds.registry import selector_activate, selector_validated, validation_text
from labeling.views.access import allowed


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "architecture", "validation", "base_model", "path", "is_active_selector",
                    "is_active_generator", "activated", "activation_note", "created")
    list_filter = ("kind", "is_active_selector", "is_active_generator")
    search_fields = ("name", "path", "base_model")
    readonly_fields = ("is_active_selector", "is_active_generator", "activated", "activated_by", "activation_note", "created")
    actions = ["make_selector", "make_selector_anyway"]

    @admin.display(description="architecture")
    def architecture(self, obj):
        return (obj.config or {}).get("architecture", "-")

    @admin.display(description="validation")
    def validation(self, obj):
        if not (obj.metrics or {}).get("validation"):
            return "-"
        return f"{validation_text(obj)}{'' if selector_validated(obj) else ', does not beat chance'}"

    @admin.action(description="Make the active selector (recorded with your name)", permissions=["make_selector"])
    def make_selector(self, request, queryset):
        self._activate(request, queryset, force=False)

    @admin.action(description="Make the active selector anyway: no evaluation or a failed validation (forced, "
                              "recorded with your name)", permissions=["make_selector"])
    def make_selector_anyway(self, request, queryset):
        self._activate(request, queryset, force=True)

    def has_make_selector_permission(self, request):
        return allowed(request.user, "make_selector")  # as the rounds page's button

    def _activate(self, request, queryset, *, force):
        if queryset.count() != 1:
            messages.error(request, "choose exactly one model version")
            return
        try:
            version = selector_activate(version=queryset.get(), user=request.user, force=force)
        except RegistryError as exc:
            messages.error(request, str(exc))
            return
        messages.info(request, f"{version.name} is now the active selector ({version.activation_note})")


@admin.register(models.VerifierScore)
class VerifierScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "solution_id", "model_version", "score", "created")
    list_filter = ("model_version",)
    raw_id_fields = ("solution",)
