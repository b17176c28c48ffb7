import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution, Task

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_create_task_prints_id_and_enqueues_first_execution(capsys) -> None:
    call_command(
        "create_task",
        "Import invoices",
        "--kwargs",
        '{"steps": 2, "delay": 0}',
        "--description",
        "monthly",
    )
    out = capsys.readouterr().out
    task = Task.objects.get()
    assert out == f"{task.pk}\n"
    assert task.title == "Import invoices"
    assert task.function == "tasks.examples.pipeline"
    assert task.kwargs == {"steps": 2, "delay": 0}
    assert task.description == "monthly"
    execution = Execution.objects.get(task=task)
    assert (execution.number, execution.status) == (1, "pending")
    assert task.latest_execution == execution
    assert list(Event.objects.values_list("type", flat=True)) == [
        "task.created",
        "execution.created",
    ]


BAD_INPUTS = [
    (["   "], "title must not be empty"),
    (["x" * 201], "title is 201 characters long; the most is 200"),
    (["t", "--function", "nosuchmodule.fn"], "unknown function 'nosuchmodule.fn'"),
    (["t", "--function", "pipeline"], "function must be a dotted path"),
    (["t", "--function", "os.path.join"], "'os.path.join' is not a task function"),
    # Not listed: refused before anything is imported.
    (["t", "--function", "antigravity.fly"], "function antigravity.fly is not in TASK_FUNCTIONS"),
    (["t", "--kwargs", "[1, 2]"], "kwargs must be a JSON object, got list"),
    (["t", "--kwargs", "{steps: 1}"], "kwargs is not valid JSON"),
    (["t", "--kwargs", '{"colour": "red"}'], "unexpected keyword argument 'colour'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS)
def test_bad_input_is_refused_and_creates_nothing(argv, message, settings) -> None:
    # Listed, so that the resolver's own refusals are what is tested.
    settings.TASK_FUNCTIONS = [*settings.TASK_FUNCTIONS, "nosuchmodule.fn", "os.path.join"]
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("(", r"\(")):
        call_command("create_task", *argv)
    assert not Task.objects.exists()
    assert not Execution.objects.exists()
    assert not Event.objects.exists()


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _manage(*argv: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_command_line_exit_codes_and_one_line_errors() -> None:
    url = _test_database_url()
    ok = _manage(
        "create_task", "From the shell", "--kwargs", json.dumps({"steps": 1}), DATABASE_URL=url
    )
    assert ok.returncode == 0, ok.stderr
    task_id = int(ok.stdout.strip())
    assert Task.objects.get(pk=task_id).title == "From the shell"

    bad = _manage("create_task", "x", "--kwargs", "[]", DATABASE_URL=url)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "CommandError: kwargs must be a JSON object, got list"
    ]
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("EVENTS_HEARTBEAT_SECONDS", "soon", "EVENTS_HEARTBEAT_SECONDS must be a number"),
        ("EVENTS_SUBSCRIBER_BUFFER", "0", "EVENTS_SUBSCRIBER_BUFFER must be at least 1"),
        ("EVENTS_REPLAY_LIMIT", "1.5", "EVENTS_REPLAY_LIMIT must be a whole number"),
        ("DEBUG", "maybe", "DEBUG must be one of"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must start with sqlite:// or postgres://"),
        ("REDIS_URL", "http://x", "REDIS_URL must start with redis://"),
    ],
)
def test_bad_setting_fails_at_start_up_with_one_line(name, value, reason, tmp_path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", name: value}
    result = _manage("check", **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {reason}")


def test_missing_secret_key_without_debug_is_refused(tmp_path) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path}/db.sqlite3"
    environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    environ["VAR_DIR"] = str(tmp_path)  # no key generated by `make run` there either
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "error: SECRET_KEY must be set when DEBUG is off"
