"""The task page and its actions: cancel, retry, answer, log download; CSRF; escaping."""

import pytest
from django.test import Client

from events.api import event_emit
from tasks.models import Execution, Step, Task
from tasks.states import Status
from tests.factories import make_execution, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

XSS = "<img src=x onerror=alert(1)>"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def streamed(response) -> str:
    """The body of a streaming response (the log download is an async iterator)."""
    from asgiref.sync import async_to_sync

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(read)().decode()


def test_anonymous_task_page_redirects_and_stream_is_401(client):
    task = make_task("t")
    assert client.get(f"/tasks/{task.pk}/").status_code == 302
    assert client.get(f"/tasks/{task.pk}/stream/").status_code == 401
    assert client.post(f"/tasks/{task.pk}/cancel/").status_code == 302
    assert Task.objects.get(pk=task.pk).status == Status.PENDING


def test_unknown_task_is_404(logged_in):
    assert logged_in.get("/tasks/999999/").status_code == 404
    assert logged_in.get("/tasks/999999/stream/").status_code == 404
    assert logged_in.post("/tasks/999999/retry/").status_code == 404


def test_task_page_shows_steps_progress_error_and_stream(logged_in):
    execution = make_execution("running", title="pipeline run")
    Step.objects.create(execution=execution, index=0, name="fetch", status="succeeded")
    step = Step.objects.create(execution=execution, index=1, name="parse", status="pending")
    step.transition("running")
    step.transition("failed", error="ValueError: bad row 7")
    execution.transition(Status.FAILED, error="ValueError: bad row 7")
    response = logged_in.get(f"/tasks/{execution.task_id}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "fetch" in html and "parse" in html
    assert "Failed at step “parse”" in html and "ValueError: bad row 7" in html
    assert f'sse-connect="/tasks/{execution.task_id}/stream/?last_event_id=' in html
    assert 'id="retry-button"' in html and 'id="cancel-button"' not in html


def test_log_tail_and_download(logged_in):
    execution = make_execution("running", title="logs")
    for i in range(3):
        event_emit(
            type="execution.log",
            task_id=execution.task_id,
            execution_id=execution.pk,
            data={"level": "info", "message": f"line {i} {XSS}"},
        )
    html = logged_in.get(f"/tasks/{execution.task_id}/").content.decode()
    assert "line 2 &lt;img src=x onerror=alert(1)&gt;" in html and XSS not in html
    response = logged_in.get(f"/tasks/{execution.task_id}/log.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "attachment" in response["Content-Disposition"]
    text = streamed(response)
    assert text.count("\n") == 3 and f"INFO line 0 {XSS}" in text
    assert logged_in.get(f"/tasks/{execution.task_id}/attempts/9/log.txt").status_code == 404


def test_cancel_a_pending_execution(logged_in):
    task = make_task("to cancel")
    response = logged_in.post(f"/tasks/{task.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"
    assert Task.objects.get(pk=task.pk).status == Status.CANCELLED
    page = logged_in.get(response["Location"]).content.decode()
    assert "Cancelled attempt 1." in page


def test_cancel_refused_shows_the_reason_and_changes_nothing(logged_in):
    execution = make_execution("succeeded", title="done")
    response = logged_in.post(f"/tasks/{execution.task_id}/cancel/", follow=True)
    assert "it cannot be cancelled" in response.content.decode()
    assert Execution.objects.get(pk=execution.pk).status == Status.SUCCEEDED


def test_cancel_with_htmx_returns_regions_out_of_band(logged_in):
    task = make_task("htmx cancel")
    response = logged_in.post(f"/tasks/{task.pk}/cancel/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="task-head" class="task-head" aria-label="Task" hx-swap-oob="true"' in html
    assert 'id="messages"' in html and "Cancelled attempt 1." in html


def test_retry_a_failed_task_and_refuse_a_pending_one(logged_in):
    execution = make_execution("failed", title="flaky")
    logged_in.post(f"/tasks/{execution.task_id}/retry/")
    task = Task.objects.get(pk=execution.task_id)
    assert task.attempts == 2 and task.status == Status.PENDING
    response = logged_in.post(f"/tasks/{task.pk}/retry/", follow=True)
    assert "only a failed or cancelled task can be retried" in response.content.decode()
    assert Task.objects.get(pk=task.pk).attempts == 2


def test_answer_a_waiting_execution(logged_in):
    execution = make_execution("waiting_for_input", title="ask")
    url = f"/tasks/{execution.task_id}/attempts/1/answer/"
    response = logged_in.post(url, {"answer": "yes, ship it"})
    assert response.status_code == 302
    assert Execution.objects.get(pk=execution.pk).answer == "yes, ship it"


def test_empty_answer_is_shown_next_to_the_field(logged_in):
    execution = make_execution("waiting_for_input", title="ask")
    url = f"/tasks/{execution.task_id}/attempts/1/answer/"
    response = logged_in.post(url, {"answer": "   "})
    html = response.content.decode()
    assert response.status_code == 422
    assert 'id="id_answer-error">the answer must not be empty' in html
    assert Execution.objects.get(pk=execution.pk).answer == ""
    htmx = logged_in.post(url, {"answer": ""}, **HTMX).content.decode()
    assert 'id="task-prompt"' in htmx and "the answer must not be empty" in htmx


def test_answer_refused_when_not_waiting(logged_in):
    execution = make_execution("running", title="busy")
    url = f"/tasks/{execution.task_id}/attempts/1/answer/"
    response = logged_in.post(url, {"answer": "x"}, follow=True)
    assert "only an execution waiting for input can be answered" in response.content.decode()


def test_csrf_is_required_on_every_form(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    task = make_task("csrf")
    for url in (f"/tasks/{task.pk}/cancel/", f"/tasks/{task.pk}/retry/", "/tasks/new/"):
        assert client.post(url, {"title": "x"}).status_code == 403
    assert Task.objects.count() == 1
    assert Task.objects.get(pk=task.pk).status == Status.PENDING
    # The pages carry the token: in forms and in the header htmx sends.
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in html and "X-CSRFToken" in html


def test_task_page_escapes_everything_a_user_typed(logged_in):
    task = make_task(XSS, description=XSS, kwargs={"steps": 1, "ask": XSS})
    html = logged_in.get(f"/tasks/{task.pk}/").content.decode()
    assert XSS not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") >= 3


def test_get_on_actions_is_refused(logged_in):
    task = make_task("t")
    assert logged_in.get(f"/tasks/{task.pk}/cancel/").status_code == 405
