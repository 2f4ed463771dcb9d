"""The JSON API as a client meets it: a token client for a login, a lease, the error body of a refusal."""
import json

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def api_as(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def lease(client):
    response = client.post("/api/queue/next/")
    assert response.status_code == 200, response.content
    return response.json()


def leased(payload):
    """The Assignment row behind an API payload (or its public `assignment_id`): what the test may look up and
    the annotator never sees (task, kind, pk)."""
    from labeling.models import Assignment
    public_id = payload["assignment_id"] if isinstance(payload, dict) else payload
    return Assignment.objects.select_related("task").get(public_id=public_id)


def error_of(response):
    assert response["Content-Type"].split(";")[0] in ("application/json", "application/vnd.oai.openapi+json"), (
        response["Content-Type"], response.content[:200])
    return json.loads(response.content)["error"]
