"""Admin-only round endpoints: a round's progress and its selection (view_round, as the rounds page)."""
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from labeling.api.schema_docs import CALLER, documented, path_integer
from labeling.api.views import ApiView
from labeling.models import Job, Round, RoundSelection
from labeling.services.rounds.stages import round_progress, selection_rows
from labeling.views.access import api_permission


class RoundApiView(ApiView):
    permission_classes = [api_permission("round_api")]

    def round(self, number):
        round_ = Round.objects.select_related("selector").filter(number=number).first()
        if round_ is None:
            raise exceptions.NotFound(f"no round {number}")
        return round_


# --- what the two render (documentation only: the payloads are plain dicts) ---------------------------

class RoundJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Job.Kind.choices)
    status = serializers.ChoiceField(choices=Job.Status.choices)
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    progress = serializers.FloatField(min_value=0, max_value=1)
    message = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    chunks = serializers.IntegerField()
    chunks_done = serializers.IntegerField()


class RoundProgressSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Round.Status.choices)
    error = serializers.CharField(allow_blank=True)
    stats = serializers.DictField(help_text="counts and timings by stage; `selector`: how the selector was chosen")
    job = RoundJobSerializer(allow_null=True, help_text="the round's current job (its latest that did not fail)")
    selector = serializers.CharField(allow_null=True, help_text="the selector PRM's name")
    parameters = serializers.DictField(help_text="what the round was started with")


class SelectionRowSerializer(serializers.Serializer):
    solution_id = serializers.IntegerField()
    problem_id = serializers.IntegerField()
    score = serializers.FloatField()
    is_correct = serializers.BooleanField(allow_null=True)
    reason = serializers.ChoiceField(choices=RoundSelection.Reason.choices)


class RoundSelectionSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Round.Status.choices)
    selector = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()
    results = SelectionRowSerializer(many=True, help_text="in serving order")


ROUND = [path_integer("number", "the round's number", example=1)]
NO_ROUND = {"404": "No round with this number."}


class RoundView(RoundApiView):
    """A round's stage, counts, timings and its current job's progress (what the admin's bar polls)."""

    @documented(ok={200: RoundProgressSerializer}, refusals=(*CALLER, 404), why=NO_ROUND, parameters=ROUND)
    def get(self, request, number):
        round_ = self.round(number)
        return Response({**round_progress(round_=round_), "selector": getattr(round_.selector, "name", None),
                         "parameters": {k: v for k, v in round_.parameters.items() if k != "problem_ids"}})


class RoundSelectionView(RoundApiView):
    """The round's selection, highest score first: solution_id, problem_id, score, is_correct, reason."""

    @documented(ok={200: RoundSelectionSerializer}, refusals=(*CALLER, 404), why=NO_ROUND, parameters=ROUND)
    def get(self, request, number):
        round_ = self.round(number)
        rows = list(selection_rows(round_=round_))
        return Response({"round": round_.number, "status": round_.status,
                         "selector": getattr(round_.selector, "name", None), "count": len(rows), "results": rows})
