"""Cancel, retry and answer as Django admin actions, with messages."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks.models import Execution
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _action(client, model: str, action: str, pks: list[int], **extra):
    url = reverse(f"admin:tasks_{model}_changelist")
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], **extra}
    return client.post(url, data, follow=True)


def test_cancel_action_cancels_what_it_may_and_says_why_not_for_the_rest(
    client, staff_user
) -> None:
    client.force_login(staff_user)
    pending = make_execution(Status.PENDING)
    done = make_execution(Status.SUCCEEDED)
    response = _action(client, "execution", "cancel_executions", [pending.pk, done.pk])
    assert response.status_code == 200
    assert sorted(_messages(response)) == sorted(
        [
            f"execution {done.pk} is succeeded; it cannot be cancelled",
            "1 execution(s) cancelled or asked to stop",
        ]
    )
    assert Execution.objects.get(pk=pending.pk).status == Status.CANCELLED
    assert Execution.objects.get(pk=done.pk).status == Status.SUCCEEDED


def test_retry_action(client, staff_user) -> None:
    client.force_login(staff_user)
    failed = make_execution(Status.FAILED)
    running = make_execution(Status.RUNNING)
    response = _action(client, "task", "retry_tasks", [failed.task_id, running.task_id])
    assert sorted(_messages(response)) == sorted(
        [
            f"task {running.task_id} is running; only a failed or cancelled task can be retried",
            "1 task(s) retried",
        ]
    )
    assert list(failed.task.executions.values_list("number", "status")) == [
        (1, "failed"),
        (2, "pending"),
    ]
    assert running.task.executions.count() == 1


def test_answer_action_asks_for_the_answer_then_stores_it(client, staff_user) -> None:
    client.force_login(staff_user)
    waiting = make_execution(Status.WAITING_FOR_INPUT)
    form = _action(client, "execution", "answer_execution", [waiting.pk])
    assert form.status_code == 200
    assert "q?" in form.content.decode()  # the prompt is shown above the answer field
    assert 'name="answer"' in form.content.decode()

    empty = _action(client, "execution", "answer_execution", [waiting.pk], answer="   ")
    assert _messages(empty) == ["the answer must not be empty"]
    assert Execution.objects.get(pk=waiting.pk).answer == ""

    response = _action(client, "execution", "answer_execution", [waiting.pk], answer="green")
    assert _messages(response) == ["execution answered; it resumes shortly"]
    assert Execution.objects.get(pk=waiting.pk).answer == "green"

    again = _action(client, "execution", "answer_execution", [waiting.pk], answer="red")
    assert _messages(again) == [
        f"execution {waiting.pk} has already been answered by root; it resumes shortly"
    ]


def test_answer_action_refuses_other_states_and_several_executions(client, staff_user) -> None:
    client.force_login(staff_user)
    running = make_execution(Status.RUNNING)
    other = make_execution(Status.WAITING_FOR_INPUT)
    response = _action(client, "execution", "answer_execution", [running.pk])
    assert _messages(response) == [
        f"execution {running.pk} is running; only an execution waiting for input can be answered"
    ]
    response = _action(client, "execution", "answer_execution", [running.pk, other.pk])
    assert _messages(response) == ["select exactly one execution to answer"]
