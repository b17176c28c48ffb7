"""The task pages read log lines through events' public API, a page at a time."""

import pytest

from events.api import event_emit
from tasks.selectors import execution_log_page, execution_log_tail
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_log_lines_of_one_execution_in_order_across_pages() -> None:
    execution, other = make_execution(), make_execution()
    for i in range(5):
        event_emit(
            type="execution.log",
            task_id=execution.task_id,
            execution_id=execution.pk,
            data={"level": "warning" if i == 3 else "", "message": f"line {i}"},
        )
        event_emit(
            type="execution.log",
            task_id=other.task_id,
            execution_id=other.pk,
            data={"level": "info", "message": "not this one"},
        )
    event_emit(
        type="execution.progress",
        task_id=execution.task_id,
        execution_id=execution.pk,
        data={"done": 1, "total": 2, "percent": 50, "message": "not a line"},
    )

    first = execution_log_page(execution.pk, limit=2)
    second = execution_log_page(execution.pk, after_id=first[-1].id, limit=2)
    third = execution_log_page(execution.pk, after_id=second[-1].id, limit=2)
    assert len(third) == 1
    every = first + second + third
    assert [line.message for line in every] == [f"line {i}" for i in range(5)]
    assert [line.level for line in every] == ["info"] * 3 + ["warning", "info"]
    assert all(a.at <= b.at for a, b in zip(every, every[1:], strict=False))
    assert [line.message for line in execution_log_tail(execution.pk, limit=2)] == [
        "line 3",
        "line 4",
    ]
