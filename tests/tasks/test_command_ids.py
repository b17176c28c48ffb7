"""Every command parses ids one way: a bad id is a one-line CommandError, never a crash."""

import pytest
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from tasks.management.ids import by_id
from tasks.models import Task
from tests.factories import make_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ids = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=0, max_value=10**30).map(lambda n: f"  {n}\n"),
)


@given(raw=ids)
def test_any_text_is_a_row_or_one_line_error(raw) -> None:
    try:
        found = by_id(Task.objects.all(), raw, "task")
    except CommandError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("task ")
    else:
        assert str(found.pk) == raw.strip()


def test_an_id_with_spaces_finds_its_row() -> None:
    task = make_task()
    assert by_id(Task.objects.all(), f" {task.pk} ", "task") == task
