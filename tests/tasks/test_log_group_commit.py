"""Log lines in batches (group commit): each line still its own execution.log event, in
order, committed before it is published, with the task's audience; the cap exact; nothing
lost when the function ends; refused once the execution is no longer active."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from events import publish as publishing
from events.models import Event
from tasks.access import task_audience_by_id
from tasks.engine.context import CancelRequested, ExecutionContext, LeaseLost, RunState
from tasks.models import Execution
from tasks.services import execution_cancel, execution_log_many, executions_claim
from tasks.states import Status, TaskInputError
from tests.conftest import PASSWORD
from tests.events.sse_client import Stream
from tests.factories import make_execution, make_task
from tests.servers import login_cookies, process_env
from tests.tasks.engine import events_of, run_runnable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

CHATTY = "tests.tasks.engine.chatty"
LINES = 120


def chatty_expected(lines: int, *, fail: bool = False) -> list[tuple[str, str]]:
    """(type, what) of every event of a chatty run, in the order the function made them."""
    expected = [
        ("execution.status", "pending->running"),
        ("execution.log", "before the step"),
        ("step.started", "burst"),
        *[("execution.log", f"in {i}") for i in range(lines)],
        ("step.completed", "burst"),
        ("execution.progress", "half"),
        *[("execution.log", f"after {i}") for i in range(lines)],
    ]
    if fail:
        expected.append(("execution.log", "Traceback"))  # the worker's error line
        expected.append(("execution.status", "running->failed"))
    else:
        expected.append(("execution.log", "last line"))
        expected.append(("execution.status", "running->succeeded"))
    return expected


def described(event: dict) -> tuple[str, str]:
    data = event["data"]
    if event["type"] == "execution.status":
        return (event["type"], f"{data['from']}->{data['to']}")
    if event["type"] == "execution.log":
        message = data["message"]
        return (event["type"], "Traceback" if message.startswith("Traceback") else message)
    if event["type"].startswith("step."):
        return (event["type"], data["name"])
    return (event["type"], data["message"])


def what_chatty_made(event: dict) -> bool:
    return event["type"] != "execution.created" and not event["type"].startswith("task.")


def of_execution(execution_id: int) -> list[dict]:
    return [e for e in (e.as_dict() for e in events_of(execution_id)) if what_chatty_made(e)]


def running(**task_kwargs) -> tuple[Execution, ExecutionContext]:
    """A claimed execution and the context its worker would give the function."""
    execution = make_task(**task_kwargs).latest_execution
    assert execution.pk in executions_claim(worker_id="w1", limit=100, lease_seconds=60)
    execution = Execution.objects.get(pk=execution.pk)
    state = RunState(execution=execution, worker_id="w1", answers=[], stopping=threading.Event())
    return execution, ExecutionContext(task_result=None, state=state)


@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
def test_lines_keep_their_order_among_steps_progress_and_the_end(fail) -> None:
    execution = make_task(function=CHATTY, kwargs={"lines": LINES, "fail": fail}).latest_execution
    [(_, outcome)] = run_runnable()
    assert outcome == (Status.FAILED if fail else Status.SUCCEEDED)
    events = of_execution(execution.pk)
    assert [described(e) for e in events] == chatty_expected(LINES, fail=fail)
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))  # each its own id, increasing in the function's order
    execution.refresh_from_db()
    assert execution.log_lines == 2 * LINES + (1 if fail else 2)


def test_a_burst_is_written_in_batches_not_one_transaction_each() -> None:
    execution, context = running()
    for i in range(2000):
        context.log(f"line {i}")
    context.log_flush()
    messages = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    assert messages == [f"line {i}" for i in range(2000)]
    assert Execution.objects.get(pk=execution.pk).log_lines == 2000
    # Lines gather while a batch commits: far fewer transactions than lines.
    assert context.state.log_buffer.batches < 1000


def test_the_cap_and_the_dropped_count_stay_exact(settings) -> None:
    settings.TASK_LOG_LINES_MAX = 50
    execution = make_task(function=CHATTY, kwargs={"lines": LINES}).latest_execution
    run_runnable()
    lines = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    total = 2 * LINES + 2
    assert lines[:50] == ["before the step", *[f"in {i}" for i in range(49)]]
    assert lines[50:] == [
        f"{total - 50} log lines dropped: the most kept per attempt is 50 (TASK_LOG_LINES_MAX)"
    ]
    assert Execution.objects.get(pk=execution.pk).log_lines == total


def test_a_batch_across_the_cap_keeps_only_what_fits(settings) -> None:
    settings.TASK_LOG_LINES_MAX = 20
    execution = make_execution(Status.RUNNING)
    execution_log_many(execution=execution, lines=[("info", f"a{i}") for i in range(15)])
    execution_log_many(execution=execution, lines=[("info", f"b{i}") for i in range(30)])
    messages = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    assert messages == [f"a{i}" for i in range(15)] + [f"b{i}" for i in range(5)]
    assert Execution.objects.get(pk=execution.pk).log_lines == 45


def test_lines_carry_the_tasks_audience(django_user_model) -> None:
    owner = django_user_model.objects.create_user("owner", password="x")
    group = Group.objects.create(name="team")
    owner.groups.add(group)
    execution = make_execution(Status.RUNNING, created_by=owner, group=group)
    execution_log_many(execution=execution, lines=[("info", "one"), ("error", "two")])
    audiences = {e.audience for e in events_of(execution.pk, "execution.log")}
    assert audiences == {task_audience_by_id(execution.task_id)} == {f" g:{group.pk} u:{owner.pk} "}


def test_lines_are_published_after_their_commit_in_id_order_and_never_on_rollback() -> None:
    execution = make_execution(Status.RUNNING)
    published: list[dict] = []

    def listener(event) -> None:
        if event["type"] == "execution.log":
            published.append(event)

    publishing.add_local_listener(listener)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            execution_log_many(execution=execution, lines=[("info", "rolled back")])
            raise RuntimeError("roll back")
        assert published == [] and events_of(execution.pk, "execution.log") == []

        with transaction.atomic():
            execution_log_many(execution=execution, lines=[("info", f"l{i}") for i in range(5)])
            assert published == []  # not before the commit
        rows = events_of(execution.pk, "execution.log")
        assert [e["id"] for e in published] == [e.pk for e in rows]
        assert [e["data"]["message"] for e in published] == [f"l{i}" for i in range(5)]
        assert {e["audience"] for e in published} == {rows[0].audience}
    finally:
        publishing.remove_local_listener(listener)


def test_queries_per_batch_do_not_grow_with_the_lines() -> None:
    execution = make_execution(Status.RUNNING)
    counts = []
    for size in (3, 300):
        with CaptureQueriesContext(connection) as queries:
            execution_log_many(execution=execution, lines=[("info", "x")] * size)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert Execution.objects.get(pk=execution.pk).log_lines == 303


def test_a_bad_level_is_refused_before_anything_is_written() -> None:
    execution = make_execution(Status.RUNNING)
    with pytest.raises(TaskInputError, match="level must be one of"):
        execution_log_many(execution=execution, lines=[("info", "ok"), ("loud", "no")])
    assert events_of(execution.pk, "execution.log") == []
    _, context = running()
    with pytest.raises(TaskInputError, match="level must be one of"):
        context.log("no", level="loud")


def test_a_cancel_seen_by_a_batch_stops_the_function_at_its_next_log() -> None:
    execution, context = running()
    context.log("one")
    context.state.log_buffer.flush()
    execution_cancel(execution=execution)  # running: asks it to stop at a checkpoint
    context.log("two")  # still running: written; its batch sees the cancel request
    context.state.log_buffer.flush()
    with pytest.raises(CancelRequested):
        context.log("three")
    context.log_flush()
    messages = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    assert messages == ["one", "cancel requested", "two"]


def test_lines_after_the_execution_stopped_are_refused() -> None:
    execution, context = running()
    context.log("kept")
    context.state.log_buffer.flush()
    Execution.objects.get(pk=execution.pk).transition(Status.FAILED, error="reaped")
    context.log("too late")  # buffered; its batch is refused
    context.state.log_buffer.flush()
    assert context.state.log_buffer.refused == 1
    with pytest.raises(LeaseLost):
        context.log("later still")
    context.log_flush()
    assert [e.data["message"] for e in events_of(execution.pk, "execution.log")] == ["kept"]
    assert Event.objects.filter(data__message="too late").count() == 0


def test_a_real_sse_client_sees_every_line_in_order(start_server, user) -> None:
    # The embedded default: server and worker in one process, the in-memory layer.
    server = start_server("serve", env=process_env(WORKER_POLL_SECONDS="0.05"))
    stream = Stream(server.url, "/events/", cookies=login_cookies(server.url, "alice", PASSWORD))
    try:
        assert stream.wait_status() == 200
        execution = make_task(function=CHATTY, kwargs={"lines": LINES}).latest_execution

        def finished(s: Stream) -> bool:
            return any(
                e["type"] == "execution.status"
                and e["execution_id"] == execution.pk
                and e["data"]["to"] == Status.SUCCEEDED
                for e in s.events()
            )

        stream.wait(finished)
        seen = [
            e for e in stream.events() if e["execution_id"] == execution.pk and what_chatty_made(e)
        ]
        assert [described(e) for e in seen] == chatty_expected(LINES)
        assert [e["id"] for e in seen] == [e["id"] for e in of_execution(execution.pk)]
    finally:
        stream.close()


def test_lines_logged_in_the_functions_own_transaction_commit_or_roll_back_with_it() -> None:
    execution, context = running()
    context.log("before")
    with pytest.raises(RuntimeError), transaction.atomic():
        context.log("rolled back with the function's work")
        raise RuntimeError("the function's work failed")
    with transaction.atomic():
        context.log("committed with the function's work")
    context.log("after")
    context.log_flush()
    messages = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    assert messages == ["before", "committed with the function's work", "after"]
    assert Execution.objects.get(pk=execution.pk).log_lines == 3


def test_lines_a_rolled_back_savepoint_took_are_written_again_in_order() -> None:
    execution, context = running()
    context.log("before")
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            context.log("inner, rolled back")
            raise RuntimeError("the inner work failed")
        context.log("outer")
    context.log("after")
    context.log_flush()
    messages = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    assert messages == ["before", "outer", "after"]
