"""A service's error lands next to the field it names, whatever its message says."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasks.states import TaskInputError
from tasks.web.forms import AnswerForm, TaskCreateForm

pytestmark = pytest.mark.django_db

messages = st.text(min_size=1, max_size=80).filter(lambda m: m.strip())


@given(message=messages, field=st.sampled_from(["title", "function", "kwargs", "description"]))
def test_a_create_error_goes_to_its_field_however_it_is_worded(message, field) -> None:
    form = TaskCreateForm({})
    form.is_valid()
    form.errors.clear()
    form.add_service_error(TaskInputError(message, field=field))
    assert form.errors == {field: [message]}
    assert form.fields[field].widget.attrs["aria-invalid"] == "true"


@given(message=messages, field=st.sampled_from([None, "max_attempts", "answer", "done"]))
def test_an_error_of_no_field_of_the_form_goes_above_it(message, field) -> None:
    form = TaskCreateForm({})
    form.is_valid()
    form.errors.clear()
    form.add_service_error(TaskInputError(message, field=field))
    assert form.non_field_errors() == [message]


def test_the_answer_form_takes_the_answer_service_errors() -> None:
    form = AnswerForm({"answer": "  "})
    form.is_valid()
    form.add_service_error(TaskInputError("title must not be empty", field="answer"))
    assert form.errors == {"answer": ["title must not be empty"]}
