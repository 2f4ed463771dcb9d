"""Request shapes (strict JSON types, unknown keys refused) and the payloads the API renders.

The serializers check types only; the rules (steps in order, nothing after a -1, a finish_reason
that fits the ratings) are the submission service's, so they hold for every caller.
"""
import uuid

from rest_framework import serializers

from labeling.core.agreement import NO_ERROR
from labeling.models import Assignment, FinishReason
from labeling.queries.rollouts import solution_rollouts


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
    step = StrictInteger(min_value=0, help_text="step index, 0 for the first step")
    rating = StrictInteger(min_value=-1, max_value=1, help_text="-1, 0 or 1")
    flagged = StrictBoolean(required=False, allow_null=True, default=None)


class AlternativeRatingSerializer(StrictSerializer):
    index = StrictInteger(min_value=0, help_text="index into the alternatives offered at the -1 step")
    rating = StrictInteger(min_value=-1, max_value=1, help_text="-1, 0 or 1")
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


class CredentialsSerializer(serializers.Serializer):
    """What POST /api/auth/token/ takes, checked before rest_framework.authtoken's AuthTokenSerializer tries the
    password: a username no login can have is refused before django-axes stores it (its column holds 255)."""

    username = serializers.CharField(max_length=150, help_text="as Django's User.username: at most 150 characters")
    password = serializers.CharField(trim_whitespace=False)


class QueueSummarySerializer(serializers.Serializer):
    """Documents labeling.services.annotation.queue.queue_summary."""

    tasks = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                  help_text="{kind: {tasks, open, slots_taken, submitted}}")
    assignments = serializers.DictField(child=serializers.IntegerField(),
                                        help_text="{live, overdue, submitted, expired}: counts of assignments")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class DraftSavedSerializer(serializers.Serializer):
    assignment_id = serializers.UUIDField(help_text="the assignment's public id")
    draft_saved_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(help_text="the lease's new expiry: saving a draft renews the lease, "
                                                     "up to STEPWISE_LEASE_MAX_HOURS after it began")


# --- payloads (plain dicts: the hot path; the serializers below document them) -------------------

def assignment_payload(assignment: Assignment) -> dict:
    """What an annotator sees of a task. Never the task's kind, gold, or any id that counts (task or
    assignment pk): QC looks like any task, and the one id is the lease's random public id."""
    task = assignment.task
    solution = task.solution
    rnd = assignment.round if assignment.round_id else task.round  # a QC task shows its host round's rules
    return {
        "assignment_id": assignment.public_id,
        "status": assignment.status,
        "problem": solution.problem.text,
        "steps": solution.steps,
        "answer_hint": solution.problem.answer if (rnd.show_answer_hint if rnd else True) else None,
        "rollout_hint": rollout_hint(solution) if rnd and rnd.rollout_hints else None,
        "alternatives": task.alternatives or {},
        "allow_human_completion": bool(rnd and rnd.allow_human_completion),
        "leased_at": assignment.leased_at,
        "expires_at": assignment.expires_at,
        "draft": assignment.draft,
        "draft_saved_at": assignment.draft_saved_at,
    }


def rollout_hint(solution):
    """The rollouts' estimated first error as the annotator's hint (rounds with rollout_hints on only: it
    anchors): {"first_error": 1-based step, or None when the rollouts found no error}; None when there
    are no estimates or they decide nothing."""
    rollouts = solution_rollouts(solution)
    found = rollouts and rollouts.first_error(len(solution.steps))
    if found is None:
        return None
    return {"first_error": None if found == NO_ERROR else found + 1}


def annotation_payload(annotation, assignment_id) -> dict:
    """`assignment_id` is the public id the request named; the annotation's pk (a count) is not shown."""
    return {
        "assignment_id": assignment_id,
        "client_id": str(annotation.client_id),
        "finish_reason": annotation.finish_reason,
        "total_time_ms": annotation.total_time_ms,
        "timestamp": annotation.timestamp,
    }


class RolloutHintSerializer(serializers.Serializer):
    first_error = serializers.IntegerField(allow_null=True, help_text="1-based step; null: the rollouts found no "
                                                                      "error")


class AssignmentSerializer(serializers.Serializer):
    assignment_id = serializers.UUIDField(help_text="the assignment's public id: random per lease")
    status = serializers.ChoiceField(choices=Assignment.Status.choices)
    problem = serializers.CharField()
    steps = serializers.ListField(child=serializers.CharField())
    answer_hint = serializers.CharField(allow_null=True, help_text="the reference answer where the round shows it")
    rollout_hint = RolloutHintSerializer(allow_null=True, help_text="rounds with rollout hints on: the rollouts' "
                                         "estimated first error; null when off or undecided")
    alternatives = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                         help_text="{step index: [alternative texts]} offered once that step is -1")
    allow_human_completion = serializers.BooleanField()
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    draft = serializers.JSONField(help_text="the draft last saved (a JSON object), null before the first")
    draft_saved_at = serializers.DateTimeField(allow_null=True)


class AnnotationSerializer(serializers.Serializer):
    assignment_id = serializers.UUIDField(help_text="the assignment's public id")
    client_id = serializers.UUIDField()
    finish_reason = serializers.ChoiceField(choices=FinishReason.choices)
    total_time_ms = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
