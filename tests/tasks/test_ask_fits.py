"""Questions that fit: ask(prompt, choices=..., multiline=..., default=...) stores its spec
on the execution; every answer (dashboard, inbox, admin, `manage.py answer`) is checked
against it on the server; who answered and when are stored; execution.answered {answer, by}
tells every viewer."""

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event
from tasks.human_input import answer_check, input_spec_build, input_spec_read
from tasks.models import Execution
from tasks.services import execution_answer
from tasks.states import Status, TaskInputError, TransitionNotAllowed
from tests.factories import make_task
from tests.tasks.engine import run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

APPROVAL = {
    "steps": 0,
    "ask": "Deploy?",
    "choices": ["Approve", "Reject"],
    "default": "Approve",
}


def waiting(kwargs: dict | None = None, **task) -> Execution:
    created = make_task(kwargs=kwargs or APPROVAL, **task)
    run_runnable()
    execution = Execution.objects.get(pk=created.latest_execution_id)
    assert execution.status == Status.WAITING_FOR_INPUT
    return execution


def test_the_spec_is_stored_and_a_choice_answered_by_someone_is_recorded(user) -> None:
    execution = waiting(created_by=user)
    assert execution.input_spec == {"choices": ["Approve", "Reject"], "default": "Approve"}
    execution_answer(execution=execution, answer="Reject", by=user)
    execution.refresh_from_db()
    assert (execution.answer, execution.answered_by) == ("Reject", user)
    assert execution.answered_at is not None
    answered = Event.objects.get(type="execution.answered")
    assert (answered.task_id, answered.execution_id) == (execution.task_id, execution.pk)
    assert answered.data == {"answer": "Reject", "by": "alice"}
    assert run_runnable() == [(execution.pk, Status.SUCCEEDED)]
    assert Execution.objects.get(pk=execution.pk).result == {"steps": 0, "answer": "Reject"}


def test_an_answer_that_is_not_a_choice_is_refused_and_changes_nothing(user) -> None:
    execution = waiting()
    before = Event.objects.count()
    with pytest.raises(TaskInputError, match="the answer must be one of Approve, Reject"):
        execution_answer(execution=execution, answer="Maybe", by=user)
    execution.refresh_from_db()
    assert (execution.answer, execution.answered_by, execution.answers) == ("", None, [])
    assert Event.objects.count() == before


def test_a_second_person_is_told_who_answered(user, django_user_model) -> None:
    bob = django_user_model.objects.create_user("bob")
    execution = waiting()
    execution_answer(execution=execution, answer="Approve", by=user)
    with pytest.raises(TransitionNotAllowed, match="already been answered by alice"):
        execution_answer(execution=execution, answer="Reject", by=bob)
    assert Execution.objects.get(pk=execution.pk).answer == "Approve"


def test_command_line_answers_are_checked_the_same_and_by_nobody() -> None:
    execution = waiting()
    with pytest.raises(CommandError, match="the answer must be one of Approve, Reject"):
        call_command("answer", str(execution.pk), "approve")
    call_command("answer", str(execution.pk), "Approve")
    execution.refresh_from_db()
    assert (execution.answer, execution.answered_by) == ("Approve", None)
    assert Event.objects.get(type="execution.answered").data == {"answer": "Approve", "by": ""}


def test_the_admin_offers_the_choices_and_checks_them(client, staff_user) -> None:
    client.force_login(staff_user)
    execution = waiting()
    url = reverse("admin:tasks_execution_changelist")
    data = {"action": "answer_execution", "_selected_action": [str(execution.pk)]}
    form = client.post(url, data)
    assert form.status_code == 200
    html = form.content.decode()
    assert 'type="radio" name="answer" value="Approve"' in html
    assert 'value="Reject"' in html
    bad = client.post(url, {**data, "answer": "Maybe"}, follow=True)
    assert "Select a valid choice" in bad.content.decode()
    assert Execution.objects.get(pk=execution.pk).answer == ""
    good = client.post(url, {**data, "answer": "Reject"}, follow=True)
    assert [str(m) for m in get_messages(good.wsgi_request)] == [
        "execution answered; it resumes shortly"
    ]
    execution.refresh_from_db()
    assert (execution.answer, execution.answered_by) == ("Reject", staff_user)


def test_the_task_page_shows_buttons_a_textarea_or_a_line(client, user) -> None:
    client.force_login(user)
    choices = waiting(created_by=user)
    html = client.get(f"/tasks/{choices.task_id}/").content.decode()
    assert 'name="answer" value="Approve" class="choice button-primary"' in html
    assert 'name="answer" value="Reject" class="choice"' in html
    assert "<textarea" not in html.split('id="task-prompt"')[1].split("</section>")[0]
    notes = waiting({"steps": 0, "ask": "Notes?", "multiline": True, "default": "- a"})
    html = client.get(f"/tasks/{notes.task_id}/").content.decode()
    assert (
        '<textarea id="id_answer" name="answer" rows="5" maxlength="10000">- a</textarea>' in html
    )
    line = waiting({"steps": 0, "ask": "Name?", "default": "Otter"})
    html = client.get(f"/tasks/{line.task_id}/").content.decode()
    assert 'id="id_answer" type="text" name="answer"' in html and 'value="Otter"' in html


def test_the_page_refuses_a_bad_choice_beside_the_buttons(client, user) -> None:
    client.force_login(user)
    execution = waiting(created_by=user)
    url = f"/tasks/{execution.task_id}/attempts/1/answer/"
    response = client.post(url, {"answer": "Maybe"})
    assert response.status_code == 422
    assert "the answer must be one of Approve, Reject" in response.content.decode()
    assert Execution.objects.get(pk=execution.pk).answer == ""
    client.post(url, {"answer": "Approve"})
    execution.refresh_from_db()
    assert (execution.answer, execution.answered_by) == ("Approve", user)
    page = client.get(f"/tasks/{execution.task_id}/").content.decode()
    assert 'Answered by <strong class="answered-name">alice</strong>' in page


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"choices": []}, "choices must not be empty"),
        ({"choices": "yes"}, "choices must be a list of strings"),
        ({"choices": ["a", "a"]}, "choices must be different from each other"),
        ({"choices": ["a", ""]}, "each choice must be a non-empty string"),
        ({"choices": ["a", 3]}, "each choice must be a non-empty string"),
        ({"choices": ["a", "b"], "default": "c"}, "default 'c' is not one of the choices"),
        ({"choices": ["a", "b"], "multiline": True}, "choices or a multiline answer, not both"),
        ({"default": "two\nlines"}, "the default of a one-line question must be one line"),
        ({"default": "  "}, "default must be a non-empty string"),
    ],
)
def test_malformed_questions_fail_the_task_with_one_line(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        input_spec_build(**spec)
    created = make_task(kwargs={"steps": 0, "ask": "Q?", **spec})
    run_runnable()
    execution = Execution.objects.get(pk=created.latest_execution_id)
    assert execution.status == Status.FAILED
    assert message in execution.error and "\n" not in execution.error


choice = st.text(min_size=1, max_size=30).map(str.strip).filter(lambda c: c and "\n" not in c)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choices=st.lists(choice, min_size=1, max_size=6, unique=True), answer=st.text(max_size=40))
def test_only_a_choice_is_ever_accepted(choices, answer) -> None:
    spec = input_spec_read(input_spec_build(choices=choices))
    if answer in choices:
        assert answer_check(spec, answer) == answer
    else:
        with pytest.raises(TaskInputError, match="the answer must be one of"):
            answer_check(spec, answer)


junk = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))


@settings(max_examples=60, deadline=None)
@given(
    raw=st.one_of(
        junk,
        st.fixed_dictionaries(
            {},
            optional={
                "choices": st.one_of(junk, st.lists(st.one_of(junk, choice), max_size=3)),
                "multiline": junk,
                "default": junk,
            },
        ),
    )
)
def test_a_stored_spec_is_read_safely_whatever_the_row_holds(raw) -> None:
    spec = input_spec_read(raw)
    assert set(spec) <= {"choices", "multiline", "default"}
    if "choices" in spec:
        assert spec["choices"] and all(isinstance(c, str) for c in spec["choices"])
    assert spec.get("multiline", True) is True
    if "default" in spec:
        assert isinstance(spec["default"], str) and spec["default"]
