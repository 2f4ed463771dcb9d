"""Admin-only round endpoints: a round's progress and its selection (view_round, as the rounds page)."""
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from labeling.api.views import ApiView
from labeling.models import Round
from labeling.services.rounds.stages import round_progress, selection_rows
from labeling.views.access import api_permission


class RoundApiView(ApiView):
    permission_classes = [api_permission("round_api")]

    def round(self, number):
        round_ = Round.objects.select_related("selector").filter(number=number).first()
        if round_ is None:
            raise exceptions.NotFound(f"no round {number}")
        return round_


class RoundView(RoundApiView):
    """A round's stage, counts, timings and its current job's progress (what the admin's bar polls)."""

    @extend_schema(responses={200: {"type": "object"}})
    def get(self, request, number):
        round_ = self.round(number)
        return Response({**round_progress(round_=round_), "selector": getattr(round_.selector, "name", None),
                         "parameters": {k: v for k, v in round_.parameters.items() if k != "problem_ids"}})


class RoundSelectionView(RoundApiView):
    """The round's selection, highest score first: solution_id, problem_id, score, is_correct, reason."""

    @extend_schema(responses={200: {"type": "object"}})
    def get(self, request, number):
        round_ = self.round(number)
        rows = list(selection_rows(round_=round_))
        return Response({"round": round_.number, "status": round_.status,
                         "selector": getattr(round_.selector, "name", None), "count": len(rows), "results": rows})
