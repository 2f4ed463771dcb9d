"""Request shapes (strict JSON types, unknown keys refused) and the payloads the API renders.

The serializers check types only; the rules (steps in order, nothing after a -1, a finish_reason
that fits the ratings) are the submission service's, so they hold for every caller.
"""
import uuid

from rest_framework import serializers

from labeling.models import Assignment, FinishReason


def _strict(kind, names):
    def check(field, data):
        if not isinstance(data, kind) or (kind is not bool and isinstance(data, bool)):
            raise serializers.ValidationError(f"must be {names}, got {type(data).__name__}")
    return check


class StrictInteger(serializers.IntegerField):
    def to_internal_value(self, data):
        _strict(int, "an integer")(self, data)
        return data


class StrictBoolean(serializers.BooleanField):
    def to_internal_value(self, data):
        _strict(bool, "true or false")(self, data)
        return data


class StrictText(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        _strict(str, "a string")(self, data)
        return super().to_internal_value(data)


class StrictUUID(serializers.UUIDField):
    def to_internal_value(self, data):
        _strict(str, "a UUID string")(self, data)
        try:
            return uuid.UUID(data)
        except ValueError:
            raise serializers.ValidationError(f"not a UUID: {data[:40]!r}") from None


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know: a misspelt field is an error, not silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({str(unknown[0])[:40]: ["unknown field"]})
        return super().to_internal_value(data)


class StepRatingSerializer(StrictSerializer):
    step = StrictInteger(help_text="step index, 0 for the first step")
    rating = StrictInteger(help_text="-1, 0 or 1")
    flagged = StrictBoolean(required=False, allow_null=True, default=None)


class AlternativeRatingSerializer(StrictSerializer):
    index = StrictInteger(help_text="index into the alternatives offered at the -1 step")
    rating = StrictInteger(help_text="-1, 0 or 1")
    flagged = StrictBoolean(required=False, allow_null=True, default=None)


class SubmitSerializer(StrictSerializer):
    client_id = StrictUUID(help_text="a UUID the client makes once per submission; a retry sends the same one")
    ratings = StepRatingSerializer(many=True, allow_empty=True, max_length=1000,
                                   help_text="steps 0..k-1 in order; labeling stops at the first -1")
    finish_reason = serializers.ChoiceField(choices=FinishReason.choices)
    total_time_ms = StrictInteger(help_text="clamped to the time since the lease began")
    alternative_ratings = AlternativeRatingSerializer(many=True, required=False, max_length=100)
    human_completion = StrictText(required=False, allow_null=True, allow_blank=True, max_length=20000)
    reason = StrictText(required=False, allow_null=True, allow_blank=True, max_length=5000,
                        help_text="required with bad_problem and give_up")


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class DraftSavedSerializer(serializers.Serializer):
    assignment_id = serializers.IntegerField()
    draft_saved_at = serializers.DateTimeField()


# --- payloads (plain dicts: the hot path; the serializers below document them) -------------------

def assignment_payload(assignment: Assignment) -> dict:
    """What an annotator sees of a task. Never the task's kind or gold: QC looks like any task."""
    task = assignment.task
    solution = task.solution
    rnd = assignment.round if assignment.round_id else task.round  # a QC task shows its host round's rules
    return {
        "assignment_id": assignment.pk,
        "task_id": task.pk,
        "status": assignment.status,
        "problem": solution.problem.text,
        "steps": solution.steps,
        "answer_hint": solution.problem.answer if (rnd.show_answer_hint if rnd else True) else None,
        "alternatives": task.alternatives or {},
        "allow_human_completion": bool(rnd and rnd.allow_human_completion),
        "leased_at": assignment.leased_at,
        "expires_at": assignment.expires_at,
        "draft": assignment.draft,
        "draft_saved_at": assignment.draft_saved_at,
    }


def annotation_payload(annotation, assignment_id) -> dict:
    return {
        "annotation_id": annotation.pk,
        "assignment_id": assignment_id,
        "client_id": str(annotation.client_id),
        "finish_reason": annotation.finish_reason,
        "total_time_ms": annotation.total_time_ms,
        "timestamp": annotation.timestamp,
    }


class AssignmentSerializer(serializers.Serializer):
    assignment_id = serializers.IntegerField()
    task_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Assignment.Status.choices)
    problem = serializers.CharField()
    steps = serializers.ListField(child=serializers.CharField())
    answer_hint = serializers.CharField(allow_null=True, help_text="the reference answer where the round shows it")
    alternatives = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                         help_text="{step index: [alternative texts]} offered once that step is -1")
    allow_human_completion = serializers.BooleanField()
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    draft = serializers.JSONField(allow_null=True)
    draft_saved_at = serializers.DateTimeField(allow_null=True)


class AnnotationSerializer(serializers.Serializer):
    annotation_id = serializers.IntegerField()
    assignment_id = serializers.IntegerField()
    client_id = serializers.UUIDField()
    finish_reason = serializers.ChoiceField(choices=FinishReason.choices)
    total_time_ms = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
