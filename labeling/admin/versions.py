"""Admin for model versions (and the switch of the active selector) and the verifier scores they gave."""
from django.contrib import admin, messages

from labeling import models
from labeling.errors import RegistryError
from labeling.services.rounds.registry import selector_activate


@admin.register(models.ModelVersion)
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


@admin.register(models.VerifierScore)
class VerifierScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "solution_id", "model_version", "score", "created")
    list_filter = ("model_version",)
    raw_id_fields = ("solution",)
