import pytest

from events.models import Event
from tests.factories import make_execution, make_step

pytestmark = pytest.mark.django_db


def test_task_admin_shows_executions_inline(admin_client) -> None:
    execution = make_execution("running", title="Nightly <b>import</b>")
    page = admin_client.get(f"/admin/tasks/task/{execution.task_id}/change/")
    assert page.status_code == 200
    assert b"Nightly &lt;b&gt;import&lt;/b&gt;" in page.content
    assert b"Executions" in page.content


def test_execution_admin_shows_steps_inline(admin_client) -> None:
    execution = make_execution("running")
    make_step(execution, index=0, name="download")
    page = admin_client.get(f"/admin/tasks/execution/{execution.pk}/change/")
    assert page.status_code == 200
    assert b"download" in page.content


def test_event_admin_is_read_only_and_filterable(admin_client) -> None:
    execution = make_execution("running")
    listing = admin_client.get("/admin/events/event/", {"type": "execution.status"})
    assert listing.status_code == 200
    assert b"execution.status" in listing.content
    by_topic = admin_client.get("/admin/events/event/", {"q": str(execution.task_id)})
    assert by_topic.status_code == 200
    event = Event.objects.first()
    assert admin_client.get("/admin/events/event/add/").status_code == 403
    change = admin_client.get(f"/admin/events/event/{event.pk}/change/")
    assert b'name="_save"' not in change.content  # a view page, nothing to save
    assert admin_client.post(f"/admin/events/event/{event.pk}/delete/").status_code == 403
