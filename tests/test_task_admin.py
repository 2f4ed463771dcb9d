"""The Task admin: overlap may not drop below the slots taken."""
import pytest

from labeling.models import Task
from labeling.services.annotation.queue import queue_next
from tests.queue_factories import annotator_make, task_make

pytestmark = pytest.mark.django_db


def form_of(task, **changes):
    return {"solution": task.solution_id, "kind": task.kind, "round": "", "priority": task.priority,
            "overlap": task.overlap, "gold_ratings": "null", "alternatives": "{}", **changes}


def test_it_refuses_an_overlap_below_the_slots_taken(client, alice, settings):
    settings.STEPWISE_QC_RATE = 0
    task = task_make(overlap=3)
    queue_next(annotator=annotator_make())
    queue_next(annotator=annotator_make())
    client.force_login(alice)
    response = client.post(f"/admin/labeling/task/{task.pk}/change/", form_of(task, overlap=1))
    assert response.status_code == 200
    assert b"overlap may not be below the 2 slots already taken" in response.content
    assert Task.objects.values_list("overlap", "taken").get(pk=task.pk) == (3, 2)
    response = client.post(f"/admin/labeling/task/{task.pk}/change/", form_of(task, overlap=2))
    assert response.status_code == 302 and Task.objects.values_list("overlap", "taken").get(pk=task.pk) == (2, 2)

