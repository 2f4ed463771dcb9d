"""What an annotator sees of their leases: one random id per lease, and nothing in any answer (API or page)
that tells a QC task from round work or counts anything (task, assignment or annotation pks, lease order)."""
import datetime as dt
import itertools
import json
import re
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from labeling.models import Task
from labeling.services.annotation.queue import leases_expire, qc_turn, queue_next
from tests.api_client import api_as, error_of, lease, leased
from tests.queue_factories import round_make, submission, task_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

RATE = 0.3
ROUND_TASKS = 14
# Keys that would give a task away or count something; none may appear anywhere in an answer.
TELLING = {"task_id", "kind", "priority", "gold", "gold_ratings", "leases_taken", "round", "round_id",
           "annotation_id", "id", "pk", "is_quality_control", "qc", "taken", "overlap"}
CONTENT = {"problem", "steps", "answer_hint"}            # the task's own text differs task to task
TIMES = {"leased_at", "expires_at", "draft_saved_at", "timestamp"}
MEASURES = {"total_time_ms"}                            # the client's figure, clamped to the lease's age
IDS = {"assignment_id", "client_id"}


def mixed_labeler():
    """A labeler whose seeded draw makes 4 to 7 of the first ROUND_TASKS leases QC turns (a QC lease takes no
    round task, so more QC follows while round tasks remain; 8 QC tasks are plenty)."""
    return next(u for u in (uuid.UUID(int=i) for i in itertools.count(1))
                if 4 <= sum(qc_turn(u, n, RATE) for n in range(1, ROUND_TASKS + 1)) <= 7)


def shape(key, value):
    """What may legitimately differ between two leases is reduced to its form; the rest is kept whole."""
    if key in CONTENT:
        return type(value).__name__, value is None
    if key in TIMES or key in MEASURES:
        return type(value).__name__
    if key in IDS:
        return "uuid4" if uuid.UUID(value).version == 4 else value
    return json.dumps(value, sort_keys=True)


def leaves(value, key=None):
    """(key, leaf) for every scalar of an answer; the draft is the client's own data echoed, and skipped."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert k not in TELLING, k
            if k != "draft":
                yield from leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, key)
    else:
        yield key, value


def normalized(page, public_id):
    html = page.content.decode().replace(str(public_id), "PUBLIC-ID")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)


@pytest.fixture
def work(bob, settings):
    """A round of ROUND_TASKS tasks with QC mixed in at RATE, and bob's seeded draw mixing both."""
    settings.STEPWISE_QC_RATE = 0
    rnd = round_make(qc_rate=RATE, show_answer_hint=True)
    for n in range(ROUND_TASKS):
        task_make(round=rnd, priority=float(n))
    for _ in range(8):
        task_make(kind=Task.Kind.QC)
    bob.annotator.labeler = mixed_labeler()
    bob.annotator.screening_passed = True
    bob.annotator.save()
    return bob


def test_nothing_in_any_answer_tells_qc_from_round_work_or_counts(work):
    api, session = api_as(work), Client()
    session.force_login(work)
    seen = {Task.Kind.QC: [], Task.Kind.ROUND: []}
    order, pages = [], set()
    for _ in range(3 * ROUND_TASKS):
        response = api.post("/api/queue/next/")
        if response.status_code == 204:
            break
        served = response.json()
        public_id = served["assignment_id"]
        url = f"/api/assignments/{public_id}/"
        answers = {"next": served, "get": api.get(url).json()}
        page = session.get(f"/label/{public_id}/")
        assert page.status_code == 200
        pages.add(normalized(page, public_id))
        answers["draft"] = api.put(f"{url}draft/", {"ratings": [1]}, format="json").json()
        submitted = api.post(f"{url}submit/", submission(n_steps=len(served["steps"])), format="json")
        assert submitted.status_code == 201, submitted.content
        answers["submit"] = submitted.json()
        answers["after"] = api.get(url).json()
        seen[leased(public_id).task.kind].append(answers)
        order.append(public_id)
    qc, rounds = seen[Task.Kind.QC], seen[Task.Kind.ROUND]
    assert len(rounds) == ROUND_TASKS and len(qc) >= 4

    for name in ("next", "get", "draft", "submit", "after"):
        assert {frozenset(a[name]) for a in qc + rounds} == {frozenset(qc[0][name])}, name  # one key set
        for key in qc[0][name]:
            assert ({shape(key, a[name][key]) for a in qc} == {shape(key, a[name][key]) for a in rounds}), (name, key)
    length = {dt.datetime.fromisoformat(a["next"]["expires_at"]) - dt.datetime.fromisoformat(a["next"]["leased_at"])
              for a in qc + rounds}
    assert len(length) == 1  # a QC lease lasts as long as the round work around it

    for answers in qc + rounds:
        for name, answer in answers.items():
            for key, leaf in leaves(answer):
                assert not isinstance(leaf, int) or isinstance(leaf, bool) or key in MEASURES, (name, key, leaf)
                assert key in CONTENT or not (isinstance(leaf, str) and leaf.isdigit()), (name, key, leaf)
        text = json.dumps(answers)
        assert '"qc"' not in text and "gold" not in text and "screening" not in text
    assert len(set(order)) == len(order) and all(uuid.UUID(i).version == 4 for i in order)
    assert order != sorted(order) and order != sorted(order, reverse=True)  # random, not issued in order
    assert len(pages) == 1  # the page is the same for every lease, QC or not, but for the lease's own id


def test_numeric_ids_answer_404(as_bob, bob, settings):
    settings.STEPWISE_QC_RATE = 0
    task_make()
    row = leased(lease(as_bob))
    session = Client()
    session.force_login(bob)
    for number in (row.pk, row.task_id, 1):
        for response in (as_bob.get(f"/api/assignments/{number}/"),
                         as_bob.put(f"/api/assignments/{number}/draft/", {"a": 1}, format="json"),
                         as_bob.post(f"/api/assignments/{number}/submit/", submission(), format="json")):
            assert response.status_code == 404 and error_of(response)["message"], response.content
        assert session.get(f"/label/{number}/").status_code == 404
    row.refresh_from_db()
    assert (row.status, row.draft) == ("leased", None)
    assert session.get(f"/label/{row.public_id}/").status_code == 200
    assert as_bob.get(f"/api/assignments/{row.public_id}/").status_code == 200


def test_a_screening_task_served_again_comes_under_a_new_id(as_bob, bob):
    task_make(kind=Task.Kind.SCREENING)
    start = timezone.now()
    first = queue_next(annotator=bob.annotator, now=start)
    later = start + dt.timedelta(minutes=31)
    assert leases_expire(now=later) == 1
    again = queue_next(annotator=bob.annotator, now=later)
    assert again.pk == first.pk and again.public_id != first.public_id
    assert as_bob.get(f"/api/assignments/{first.public_id}/").status_code == 404


def test_refusals_name_the_public_id_never_the_pk(as_bob, settings):
    settings.STEPWISE_QC_RATE = 0
    task_make()
    public_id = lease(as_bob)["assignment_id"]
    url = f"/api/assignments/{public_id}/"
    assert as_bob.post(f"{url}submit/", submission(), format="json").status_code == 201
    response = as_bob.put(f"{url}draft/", {"a": 1}, format="json")
    assert response.status_code == 409
    message = error_of(response)["message"]
    assert public_id in message and f"assignment {leased(public_id).pk} " not in message
