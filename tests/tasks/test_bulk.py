"""POST /tasks/bulk/ and tasks_bulk_act: cancel or retry many tasks, in pages, each checked
on its own; refusals counted by reason; bad input a one-line 400 that changes nothing."""

import time

import pytest
from django.contrib.auth.models import Permission
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event
from tasks import access
from tasks.bulk import BULK_PAGE, tasks_bulk_act
from tasks.models import Execution, Task
from tasks.registry import DEFAULT_FUNCTION
from tasks.states import Status
from tasks.web.ops_views import BULK_IDS_MAX
from tests.factories import make_execution, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def post(client, **data):
    return client.post("/tasks/bulk/", data)


def run_to_the_end(client, first) -> list:
    """Follow the `op` of a bulk response until it is done; every response."""
    responses = [first]
    while responses[-1].context["stage"] == "progress":
        context = responses[-1].context
        responses.append(post(client, action=context["action"], op=context["op"]))
        assert len(responses) < 1000
    return responses


def statuses(*tasks: Task) -> list[str]:
    return [Task.objects.get(pk=t.pk).status for t in tasks]


def test_confirmation_says_how_many_and_changes_nothing(logged_in, user):
    tasks = [make_task(created_by=user) for _ in range(3)]
    response = post(logged_in, action="cancel", ids=[t.pk for t in tasks])
    assert response.status_code == 200
    assert response.context["stage"] == "confirm" and response.context["count"] == 3
    assert "Cancel 3 tasks?" in response.content.decode()
    assert statuses(*tasks) == ["pending"] * 3


def test_cancel_selected_rows_with_refusals_and_their_reasons(logged_in, user, django_user_model):
    user.user_permissions.clear()  # alice without view_all/manage_all: her own tasks only
    pending = make_task(created_by=user)
    done = make_execution(Status.SUCCEEDED, created_by=user)
    running = make_execution(Status.RUNNING, created_by=user)
    theirs = make_task(created_by=django_user_model.objects.create_user("bob"))
    before = Event.objects.filter(type="execution.status").count()
    ids = [pending.pk, done.task_id, running.task_id, theirs.pk, 999_999]
    response = post(logged_in, action="cancel", ids=ids, confirm="1")
    assert response.context["stage"] == "done"
    assert (response.context["changed"], response.context["total"]) == (2, 3)
    assert dict(response.context["refused"]) == {"already succeeded": 1, "not found": 2}
    html = response.content.decode()
    assert (
        "Cancelled 2 of 3 tasks." in html and "3 refused: 2 not found; 1 already succeeded." in html
    )
    assert Task.objects.get(pk=pending.pk).status == "cancelled"
    assert Execution.objects.get(pk=running.pk).cancel_requested_at is not None
    assert Task.objects.get(pk=theirs.pk).status == "pending"  # bob's: untouched, not shown
    # One event per changed execution: the pending one's status; the running one's request.
    assert Event.objects.filter(type="execution.status").count() == before + 1
    assert Execution.objects.get(pk=pending.latest_execution_id).cancelled_by == user


def test_seeing_is_not_acting(client, user, django_user_model):
    vera = django_user_model.objects.create_user("vera")
    vera.user_permissions.add(Permission.objects.get(codename="view_all_tasks"))
    task = make_task(created_by=user)
    client.force_login(django_user_model.objects.get(pk=vera.pk))
    response = post(client, action="cancel", ids=[task.pk], confirm="1")
    assert dict(response.context["refused"]) == {"not yours to act on": 1}
    assert statuses(task) == ["pending"]


def test_retry_all_matching_a_filter_and_staff_only_functions(logged_in, user, staff_user):
    failed = [make_execution(Status.FAILED, title=f"f{i}", created_by=user) for i in range(3)]
    shell = make_execution(
        Status.FAILED,
        title="f shell",
        function="tasks.examples.shell",
        kwargs={"command": "false"},
        created_by=staff_user,
    )
    Task.objects.filter(pk=shell.task_id).update(created_by=user)
    make_execution(Status.FAILED, title="other")
    response = post(logged_in, action="retry", all="1", status="failed", q="f", confirm="1")
    assert response.context["changed"] == 3 and response.context["total"] == 4
    assert dict(response.context["refused"]) == {"staff-only (tasks.examples.shell)": 1}
    for execution in failed:
        task = Task.objects.get(pk=execution.task_id)
        assert task.attempts == 2 and task.latest_execution.created_by == user
    assert Task.objects.get(pk=shell.task_id).attempts == 1


def test_all_matching_takes_no_task_created_after_it_started(logged_in, user):
    first = make_task(created_by=user)
    response = post(logged_in, action="cancel", all="1", confirm="1")
    assert response.context["total"] == 1 and statuses(first) == ["cancelled"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "action must be one of cancel, retry, got ''"),
        ({"action": "delete", "ids": "1"}, "action must be one of cancel, retry, got 'delete'"),
        ({"action": "cancel"}, "select at least one task, or all=1 with the list's filters"),
        (
            {"action": "cancel", "ids": "x"},
            "ids must be task ids (positive whole numbers), got 'x'",
        ),
        (
            {"action": "cancel", "ids": "0"},
            "ids must be task ids (positive whole numbers), got '0'",
        ),
        ({"action": "cancel", "all": "yes"}, "all must be 1 or 0, got 'yes'"),
        (
            {"action": "cancel", "all": "1", "status": "bogus"},
            "Ignored status='bogus': Select a valid choice. bogus is not one of the available "
            "choices.",
        ),
        ({"action": "cancel", "all": "1", "colour": "red"}, "unknown filter parameter 'colour'"),
        ({"action": "cancel", "op": "nope"}, "unknown or finished bulk operation"),
    ],
)
def test_bad_input_is_a_one_line_400_that_changes_nothing(logged_in, user, data, reason):
    task = make_task(created_by=user)
    before = Event.objects.count()
    response = post(logged_in, **data, confirm="1")
    assert response.status_code == 400
    assert response.content.decode() == reason + "\n"
    assert statuses(task) == ["pending"] and Event.objects.count() == before


def test_too_many_ids_is_refused(logged_in):
    response = post(logged_in, action="cancel", ids=[str(i) for i in range(1, 502)])
    assert response.status_code == 400
    assert "at most 500 ids at once" in response.content.decode()


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    action=st.one_of(st.sampled_from(["cancel", "retry"]), text),
    ids=st.lists(st.one_of(text, st.integers(-5, 2**64).map(str)), max_size=4),
    all_=st.one_of(st.none(), st.sampled_from(["0", "1"]), text),
    extra=st.dictionaries(
        st.sampled_from(["status", "q", "function", "created_from", "created_to", "page", "x"]),
        text,
        max_size=3,
    ),
)
def test_any_input_is_a_page_or_a_one_line_400_never_a_5xx(
    logged_in, user, action, ids, all_, extra
):
    task = Task.objects.filter(title="keep").first() or make_task("keep", created_by=user)
    data = {"action": action, "ids": ids, **extra}
    if all_ is not None:
        data["all"] = all_
    response = logged_in.post("/tasks/bulk/", data)  # no confirm: nothing may change
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        body = response.content.decode()
        assert body.endswith("\n") and body.count("\n") == 1
    assert statuses(task) == ["pending"]


def _pending_tasks(user, n: int) -> list[Task]:
    """n pending tasks with their first execution, written in bulk (no events: fast)."""
    tasks = Task.objects.bulk_create(
        [Task(title=f"t{i}", function=DEFAULT_FUNCTION, created_by=user) for i in range(n)]
    )
    executions = Execution.objects.bulk_create([Execution(task=t, number=1) for t in tasks])
    for task, execution in zip(tasks, executions, strict=True):
        task.latest_execution = execution
    Task.objects.bulk_update(tasks, ["latest_execution"], batch_size=1000)
    return tasks


def test_ten_thousand_matching_tasks_never_hold_one_request(logged_in, user, capsys):
    """10,000 pending tasks, cancelled "all matching": each request acts on one page at most
    (BULK_PAGE tasks, or BULK_SECONDS of work) and hands back where to go on."""
    _pending_tasks(user, 10_000)
    t0 = time.monotonic()
    confirm = post(logged_in, action="cancel", all="1", status="pending")
    confirm_seconds = time.monotonic() - t0
    assert confirm.context["count"] == 10_000
    assert "Cancel 10000 tasks?" in confirm.content.decode()
    timings = []
    responses = []
    for _ in range(3):
        t0 = time.monotonic()
        if not responses:
            responses.append(
                post(logged_in, action="cancel", all="1", status="pending", confirm="1")
            )
        else:
            op = responses[-1].context["op"]
            responses.append(post(logged_in, action="cancel", op=op))
        timings.append(time.monotonic() - t0)
        context = responses[-1].context
        assert context["stage"] == "progress" and context["total"] == 10_000
        assert context["seen"] <= BULK_PAGE * len(responses)
    assert responses[-1].context["changed"] == responses[-1].context["seen"] > 0
    assert "of 10000 tasks so far" in responses[-1].content.decode()
    changed = responses[-1].context["changed"]
    assert Task.objects.filter(status="cancelled").count() == changed
    assert Event.objects.filter(type="execution.status", data__to="cancelled").count() == changed
    with capsys.disabled():
        print(
            f"\n10,000 matching: confirmation {confirm_seconds:.2f}s; pages of "
            f"{', '.join(str(r.context['seen']) for r in responses[:1])} tasks, "
            f"{' / '.join(f'{t:.2f}s' for t in timings)} per request"
        )


def test_an_operation_of_several_pages_runs_to_the_end(logged_in, user):
    n = BULK_PAGE * 2 + 50
    assert n <= BULK_IDS_MAX
    tasks = _pending_tasks(user, n)
    first = post(logged_in, action="cancel", ids=[t.pk for t in tasks], confirm="1")
    responses = run_to_the_end(logged_in, first)
    final = responses[-1].context
    assert len(responses) == 3 and final["stage"] == "done"
    assert (final["changed"], final["total"]) == (n, n)
    assert f"Cancelled {n} of {n} tasks." in responses[-1].content.decode()
    assert Task.objects.filter(status="cancelled").count() == n
    # The operation is gone once done.
    again = post(logged_in, action="cancel", op=responses[-2].context["op"])
    assert again.status_code == 400


def test_the_service_stops_a_page_at_its_limit(user):
    tasks = [make_task(created_by=user) for _ in range(5)]
    qs = access.tasks_visible(user)
    page = tasks_bulk_act(user=user, action="cancel", tasks=qs, limit=2)
    assert (page.changed, page.seen, page.last_id, page.done) == (2, 2, tasks[1].pk, False)
    page = tasks_bulk_act(user=user, action="cancel", tasks=qs, after_id=page.last_id, limit=10)
    assert (page.changed, page.done) == (3, True)
    with pytest.raises(ValueError, match="action must be one of cancel, retry"):
        tasks_bulk_act(user=user, action="delete", tasks=qs)  # type: ignore[arg-type]
