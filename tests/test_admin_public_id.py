import pytest
from labeling.services.annotation.queue import queue_next
from tests.queue_factories import annotator_make, task_make


@pytest.mark.django_db
def test_an_assignment_is_found_in_the_admin_by_the_id_its_annotator_sees(client, alice):
    task_make()
    lease = queue_next(annotator=annotator_make())
    task_make()  # a second lease, which the search must leave out
    queue_next(annotator=annotator_make())
    client.force_login(alice)
    page = client.get("/admin/labeling/assignment/", {"q": str(lease.public_id)[:8]}).content.decode()
    assert str(lease.public_id) in page and "1 result" in page
