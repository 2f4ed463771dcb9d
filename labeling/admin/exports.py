"""Admin for label exports: the export form (filters and format options), progress, and the download link.

The file itself is served by labeling.views.exports.export_download (the "export-download" URL).
"""
import dataclasses

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from labeling import models
from labeling.formats.math_shepherd import LABEL_KINDS
from labeling.formats.training import LABEL_SOURCES, NEUTRAL, PROBLEM_SCOPES
from labeling.services.data.exports import FORMATS, OPTIONS, export_create, export_options


class ExportForm(forms.ModelForm):
    generation = forms.IntegerField(required=False, help_text="only this round (PRM800K generation)")
    labeler = forms.UUIDField(required=False, help_text="only this labeler")
    exclude_qc = forms.BooleanField(required=False, label="Exclude quality-control questions")
    since = forms.DateTimeField(required=False, help_text="only labels at or after this time (UTC)")
    include_test = forms.BooleanField(required=False, label="Include test-split problems",
                                      help_text="trl, preference, hf: the held-out test split is left out of "
                                                "training exports unless this is ticked")
    # Format options: each format reads its own, blank means the format's default.
    neutral = forms.ChoiceField(choices=[("", "---------")] + [(n, n) for n in NEUTRAL], required=False,
                                help_text="trl, hf: label of a 0 rating (default positive; drop leaves such "
                                          "annotations out)")
    pairs_per_problem = forms.IntegerField(min_value=1, required=False,
                                           help_text="preference: most pairs per problem (default 4)")
    problems = forms.ChoiceField(choices=[("", "---------")] + [(p, p) for p in PROBLEM_SCOPES], required=False,
                                 help_text="preference: all problems (default), or only those the filtered labels "
                                           "cover")
    source = forms.ChoiceField(choices=[("", "---------")] + [(s, s) for s in LABEL_SOURCES], required=False,
                               help_text="trl, hf, math_shepherd: human labels (default), rollout labels, or "
                                         "consensus (human annotations whose first error the rollouts confirm)")
    labels = forms.ChoiceField(choices=[("", "---------")] + [(k, k) for k in LABEL_KINDS], required=False,
                               help_text="math_shepherd: hard +/- labels (default) or soft (share of rollouts "
                                         "correct)")
    prover = forms.CharField(required=False, help_text="trl, hf, math_shepherd: only this prover's rollouts "
                                                       "(default: any)")

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
    list_display = ("id", "format", "label_source", "status", "progress_bar", "record_count", "step_count",
                    "short_sha", "download", "requested_by", "created", "finished")
    list_filter = ("status", "format")
    change_list_template = "admin/labeling/export/change_list.html"
    readonly_fields = ("status", "progress", "record_count", "step_count", "sha256", "file", "error",
                       "celery_task_id", "requested_by", "created", "started", "finished", "filters", "download",
                       "label_source", "provenance")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ExportForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("format", "generation", "labeler", "exclude_qc", "since", "include_test", "neutral", "pairs_per_problem",
                    "problems", "source", "labels", "prover")
        return ("format", "filters") + tuple(f for f in self.readonly_fields if f != "filters")

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # The service creates the row and enqueues the job after commit; the admin only reads the form.
        created = export_create(fmt=form.cleaned_data["format"], filters=form.export_filters(),
                                options=form.export_options(), user=request.user,
                                include_test=form.cleaned_data["include_test"])
        obj.pk = created.pk
        messages.info(request, f"Export {created.pk} queued; this page shows its progress.")

    @admin.display(description="progress")
    def progress_bar(self, obj):
        return format_html('<progress max="1" value="{}" data-status="{}"></progress> {}%', obj.progress,
                           obj.status, round(obj.progress * 100))

    @admin.display(description="label source")
    def label_source(self, obj):
        """human, rollout or consensus; a consensus export says how much of the human labels it kept."""
        source = (obj.filters.get("options") or {}).get("source", "human")
        out = (obj.provenance or {}).get("output") or {}
        if source == "consensus" and "consensus_candidates" in out:
            share = out.get("consensus_kept_share")
            return (f"consensus: kept {out['consensus_kept']} of {out['consensus_candidates']}"
                    + (f" ({share:.0%})" if share is not None else ""))
        return source

    @admin.display(description="sha256")
    def short_sha(self, obj):
        return obj.sha256[:12]

    @admin.display(description="file")
    def download(self, obj):
        if obj.status != models.Export.Status.DONE:
            return obj.error[:80] if obj.error else "-"
        return format_html('<a href="{}">download</a>', reverse("export-download", args=[obj.id]))

