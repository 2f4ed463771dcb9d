"""The annotator's hot path keeps its number of SQL statements: next (a new lease, a resumed one) and submit.

Every statement is a round trip and an ORM compile: together they are most of a request's CPU (bench/RESULTS.md,
"request path"). A change that adds one fails here with the statements listed; if it is worth it, raise the count.
Transaction control (BEGIN, SAVEPOINT, COMMIT, ...) is not counted: it differs between the two databases.
"""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import Annotator
from tests.api_client import api_as, lease
from tests.queue_factories import round_make, submission, task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

NEXT_NEW = 7      # token with user and annotator; annotator lock reading the live lease and any overdue one;
#                   the best open task; its slot; the lease count; the assignment; the payload read
NEXT_RESUME = 3   # token with user and annotator; annotator lock finding the live lease; the payload read
SUBMIT = 8        # token with user and annotator; assignment lock with task and rounds; the round's selection
#                   score; annotation; step labels; completions; assignment closed; task count (no quality
#                   control query for a task without gold)


def statements(captured):
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(control)]


def listing(sqls):
    return "\n".join(f"  {sql[:300]}" for sql in sqls)


@pytest.fixture
def annotator_client(bob, settings):
    settings.STEPWISE_QC_RATE = 0
    Annotator.objects.filter(user=bob).update(screening_passed=True)  # past screening: the common case
    task_make(round=round_make(), alternatives={"1": ["An alternative second step."]})
    return api_as(bob)


def test_it_leases_in_a_fixed_number_of_statements(annotator_client):
    with CaptureQueriesContext(connection) as captured:
        lease(annotator_client)
    sqls = statements(captured)
    assert len(sqls) == NEXT_NEW, f"next took {len(sqls)} statements, not {NEXT_NEW}:\n{listing(sqls)}"


def test_it_resumes_a_lease_in_a_fixed_number_of_statements(annotator_client):
    first = lease(annotator_client)
    with CaptureQueriesContext(connection) as captured:
        again = lease(annotator_client)
    assert again["assignment_id"] == first["assignment_id"]
    sqls = statements(captured)
    assert len(sqls) == NEXT_RESUME, f"resuming took {len(sqls)} statements, not {NEXT_RESUME}:\n{listing(sqls)}"


def test_it_submits_in_a_fixed_number_of_statements(annotator_client):
    payload = lease(annotator_client)
    body = submission(n_steps=len(payload["steps"]))
    with CaptureQueriesContext(connection) as captured:
        response = annotator_client.post(f"/api/assignments/{payload['assignment_id']}/submit/", body, format="json")
    assert response.status_code == 201, response.content
    sqls = statements(captured)
    assert len(sqls) == SUBMIT, f"submit took {len(sqls)} statements, not {SUBMIT}:\n{listing(sqls)}"
