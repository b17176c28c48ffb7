"""The operations pages through Django's test client: access, bad input, what they show.

alice creates; bob sees nothing of hers; vera holds tasks.view_all_tasks (sees, may not act);
root is a superuser."""

import pytest
from django.contrib.auth.models import Group, Permission
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event
from tasks.models import Execution, Task, Worker
from tasks.states import Status
from tests.factories import make_execution, make_task
from tests.tasks.engine import run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="x")


@pytest.fixture
def vera(django_user_model):
    viewer = django_user_model.objects.create_user("vera", password="x")
    viewer.user_permissions.add(Permission.objects.get(codename="view_all_tasks"))
    return django_user_model.objects.get(pk=viewer.pk)


def waiting_for(user, **kwargs) -> Execution:
    task = make_task(
        kwargs={"steps": 0, "ask": "Ship?", "choices": ["Yes", "No"], **kwargs}, created_by=user
    )
    run_runnable()
    return Execution.objects.get(pk=task.latest_execution_id)


# --- the header on every page -----------------------------------------------------------


def test_every_page_has_the_inbox_count_banner_and_one_stream(client, user):
    client.force_login(user)
    waiting_for(user)
    make_task(created_by=user)  # pending, and no worker alive: the banner
    task = Task.objects.first()
    for url in ["/", f"/tasks/{task.pk}/", "/tasks/new/", "/inbox/", f"/tasks/{task.pk}/events/"]:
        html = client.get(url).content.decode()
        assert '<span id="inbox-count" class="pill pill-waiting">1</span>' in html, url
        assert "No worker is running:</strong> 1 task waits." in html, url
        assert "python manage.py worker" in html
        assert html.count("sse-connect=") == 1, url
    Worker.objects.create(
        worker_id="w", host="h", pid=1, concurrency=1, expires_at="2999-01-01T00:00:00Z"
    )
    assert "No worker is running" not in client.get("/").content.decode()


def test_anonymous_streams_are_401(client):
    for url in ["/workers/stream/", "/inbox/stream/", "/header/stream/", "/tasks/1/events/stream/"]:
        assert client.get(url).status_code == 401, url


def test_anonymous_pages_go_to_login(client):
    for url in ["/workers/", "/inbox/", "/tasks/1/events/", "/tasks/1/rerun/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.post("/tasks/bulk/", {"action": "cancel", "ids": "1"}).status_code == 302


# --- workers --------------------------------------------------------------------------


def test_workers_page_for_staff_and_view_all_only(client, user, vera, staff_user):
    user.user_permissions.clear()  # alice without view_all: not hers
    client.force_login(user)
    assert client.get("/workers/").status_code == 403
    assert client.get("/workers/stream/").status_code == 403
    assert 'href="/workers/"' not in client.get("/").content.decode()
    for who in (vera, staff_user):
        client.force_login(who)
        response = client.get("/workers/")
        assert response.status_code == 200
        assert 'sse-connect="/workers/stream/?last_event_id=' in response.content.decode()


def test_workers_page_shows_workers_queue_and_charts(client, staff_user):
    client.force_login(staff_user)
    Worker.objects.create(
        worker_id="box:42:abc", host="box", pid=42, concurrency=3, expires_at="2999-01-01T00:00Z"
    )
    running = make_execution(Status.RUNNING)
    Execution.objects.filter(pk=running.pk).update(worker_id="box:42:abc")
    make_task()
    make_execution(Status.SUCCEEDED)
    make_execution(Status.FAILED)
    html = client.get("/workers/").content.decode()
    assert "box:42:abc" in html and "1 / 3" in html and f"#{running.task_id}" in html
    assert '<td class="num queue-pending">1</td>' in html
    assert 'data-succeeded="1" data-failed="1"' in html
    assert "<svg" in html and "style=" not in html.split("<svg", 1)[1]


# --- the inbox ------------------------------------------------------------------------


def test_inbox_lists_only_what_the_user_may_answer(client, user, bob, vera, staff_user):
    mine = waiting_for(user)
    group = Group.objects.create(name="ops")
    bob.groups.add(group)
    shared = waiting_for(user)
    Task.objects.filter(pk=shared.task_id).update(group=group)
    expected = {user: {mine.pk, shared.pk}, bob: {shared.pk}, vera: set(), staff_user: None}
    for who, ids in expected.items():
        client.force_login(who)
        response = client.get("/inbox/")
        shown = {item.execution.pk for item in response.context["items"]}
        assert shown == (ids if ids is not None else {mine.pk, shared.pk}), who


def test_inbox_answer_checks_access_and_input(client, user, bob, vera):
    execution = waiting_for(user)
    url = f"/inbox/{execution.pk}/answer/"
    client.force_login(bob)
    assert client.post(url, {"answer": "Yes"}).status_code == 404  # invisible
    client.force_login(vera)
    assert client.post(url, {"answer": "Yes"}).status_code == 403  # sees, may not act
    client.force_login(user)
    bad = client.post(url, {"answer": "Perhaps"})
    assert bad.status_code == 422
    assert "the answer must be one of Yes, No" in bad.content.decode()
    assert Execution.objects.get(pk=execution.pk).answer == ""
    ok = client.post(url, {"answer": "No"}, headers={"HX-Request": "true"})
    assert ok.status_code == 200
    html = ok.content.decode()
    assert 'id="inbox-items" class="inbox"' in html and 'hx-swap-oob="true"' in html
    assert "Answered by <strong" in html  # answered, resuming: it says who
    again = client.post(url, {"answer": "Yes"})
    assert again.status_code == 409
    assert "already been answered by alice" in again.content.decode()
    assert client.post("/inbox/999999/answer/", {"answer": "Yes"}).status_code == 404


# --- history --------------------------------------------------------------------------


def test_history_is_the_tasks_events_in_order_with_who(client, user, bob):
    execution = waiting_for(user)
    client.force_login(user)
    client.post(f"/tasks/{execution.task_id}/attempts/1/answer/", {"answer": "Yes"})
    client.post(f"/tasks/{execution.task_id}/cancel/")
    response = client.get(f"/tasks/{execution.task_id}/events/")
    assert response.status_code == 200
    rows = response.context["rows"]
    stored = list(
        Event.objects.filter(task_id=execution.task_id).order_by("id").values_list("id", flat=True)
    )
    assert [r["id"] for r in rows] == stored
    who = {r["type"]: r["who"] for r in rows}
    assert who["task.created"] == "alice" and who["execution.answered"] == "alice"
    cancelled = [r for r in rows if r["type"] == "execution.status" and "cancelled" in r["summary"]]
    assert cancelled and cancelled[-1]["who"] == "alice"
    html = response.content.decode()
    assert f'href="/events/?task={execution.task_id}&amp;last_event_id={stored[-1]}"' in html
    client.force_login(bob)
    assert client.get(f"/tasks/{execution.task_id}/events/").status_code == 404
    assert client.get(f"/tasks/{execution.task_id}/events/stream/").status_code == 404


def test_history_pages_and_bad_ids(client, user, settings):
    from tasks import ops

    task = make_task(created_by=user)
    client.force_login(user)
    for i in range(7):
        Event.objects.create(type="execution.log", task_id=task.pk, data={"message": str(i)})
    ids = list(Event.objects.filter(task_id=task.pk).order_by("id").values_list("id", flat=True))
    page = ops.task_history(task, size=4)
    assert [e["id"] for e in page.events] == ids[-4:] and page.tail and page.earlier == ids[-4]
    earlier = ops.task_history(task, before=page.earlier, size=4)
    assert [e["id"] for e in earlier.events] == ids[-8:-4] and not earlier.tail
    later = ops.task_history(task, after=ids[0], size=4)
    assert [e["id"] for e in later.events] == ids[1:5] and later.later == ids[4]
    for query in ["before=x", "after=-1", "before=1&after=2", "after=99999999999999999999"]:
        response = client.get(f"/tasks/{task.pk}/events/?{query}")
        assert response.status_code == 400, query
        assert response.content.decode().count("\n") == 1
    older = client.get(f"/tasks/{task.pk}/events/?before={ids[-1]}").content.decode()
    assert 'sse-connect="/header/stream/' in older  # an older page: only the header is live


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(before=st.text(max_size=25), after=st.text(max_size=25))
def test_history_parameters_never_5xx(client, user, before, after):
    task = Task.objects.first() or make_task(created_by=user)
    client.force_login(user)
    response = client.get(f"/tasks/{task.pk}/events/", {"before": before, "after": after})
    assert response.status_code in (200, 400)


# --- run again with changes -----------------------------------------------------------


def test_rerun_form_is_filled_from_the_task_and_links_back(client, user):
    source = make_task(
        title="Monthly", kwargs={"steps": 2, "delay": 0}, description="d", created_by=user
    )
    client.force_login(user)
    form = client.get(f"/tasks/{source.pk}/rerun/").context["create_form"]
    assert form.initial["title"] == "Monthly" and form.initial["description"] == "d"
    assert form.initial["function"] == "tasks.examples.pipeline"
    assert '"steps": 2' in form.initial["kwargs"]
    data = {"function": "tasks.examples.pipeline", "title": "Monthly 2", "kwargs": "{}"}
    response = client.post(f"/tasks/{source.pk}/rerun/", data)
    rerun = Task.objects.get(title="Monthly 2")
    assert response.status_code == 302 and response["Location"] == f"/tasks/{rerun.pk}/"
    assert rerun.rerun_of == source and rerun.created_by == user
    assert (
        f'id="rerun-of" href="/tasks/{source.pk}/"'
        in client.get(f"/tasks/{rerun.pk}/").content.decode()
    )


def test_rerun_refuses_bad_input_and_the_wrong_people(client, user, bob, vera):
    source = make_task(created_by=user)
    url = f"/tasks/{source.pk}/rerun/"
    client.force_login(user)
    bad = client.post(url, {"function": "tasks.examples.pipeline", "title": "", "kwargs": "[]"})
    assert bad.status_code == 422
    assert "title must not be empty" in bad.content.decode()
    assert Task.objects.count() == 1
    client.force_login(bob)
    assert client.get(url).status_code == 404
    client.force_login(vera)
    assert client.get(url).status_code == 403
    assert client.get("/tasks/999999/rerun/").status_code == 404


def test_rerun_of_a_staff_only_function_needs_staff(client, user, staff_user):
    source = make_task(
        function="tasks.examples.shell", kwargs={"command": "true"}, created_by=staff_user
    )
    Task.objects.filter(pk=source.pk).update(created_by=user)  # alice's, but not hers to run
    client.force_login(user)
    assert client.get(f"/tasks/{source.pk}/rerun/").status_code == 403
    data = {"function": "tasks.examples.shell", "title": "again", "kwargs": '{"command": "true"}'}
    assert client.post(f"/tasks/{source.pk}/rerun/", data).status_code == 403
    client.force_login(staff_user)
    assert client.post(f"/tasks/{source.pk}/rerun/", data).status_code == 302
    assert Task.objects.get(title="again").rerun_of_id == source.pk


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(answer=st.text(max_size=30))
def test_any_inbox_answer_is_taken_only_when_it_is_a_choice(client, user, answer):
    execution = Execution.objects.filter(
        status=Status.WAITING_FOR_INPUT, answer=""
    ).first() or waiting_for(user)
    client.force_login(user)
    before = Event.objects.count()
    response = client.post(f"/inbox/{execution.pk}/answer/", {"answer": answer})
    execution.refresh_from_db()
    if answer in ("Yes", "No"):
        assert response.status_code == 302 and execution.answer == answer
        Execution.objects.filter(pk=execution.pk).update(answer="", answered_by=None)
    else:
        assert response.status_code == 422
        assert execution.answer == "" and Event.objects.count() == before
