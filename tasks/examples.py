"""Built-in task functions: the demo and test workload (`pipeline`) and `shell`.

Both are ordinary Django `@task` functions taking the execution context
(tasks/engine/context.py): steps, progress, log lines, ask() and cancellation checkpoints.
"""

import os
import signal
import subprocess
from typing import Any

from django.tasks import task

from tasks.engine.context import ExecutionContext


# The arg-type ignores: the engine passes its ExecutionContext, a TaskContext with more;
# django-stubs types a context parameter as TaskContext exactly.
@task(takes_context=True)  # type: ignore[arg-type]
def pipeline(
    context: ExecutionContext,
    steps: int = 3,
    delay: float = 1.0,
    fail_at: int | None = None,
    ask: str | None = None,
    choices: list[str] | None = None,
    multiline: bool = False,
    default: str | None = None,
) -> dict[str, Any]:
    """The demo workload (contract): `steps` steps of `delay` seconds each, reporting progress
    and log lines per step; `fail_at` (a step index, 0 for the first) makes that step raise;
    `ask` waits for a person's answer, then finishes. The question takes `choices` (one
    button each), `multiline` (a longer text) and a `default`, as context.ask() does."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a whole number of at least 0, got {steps!r}")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
        raise ValueError(f"delay must be a number of seconds of at least 0, got {delay!r}")
    if fail_at is not None and (
        isinstance(fail_at, bool) or not isinstance(fail_at, int) or not 0 <= fail_at < steps
    ):
        raise ValueError(f"fail_at must be a step index from 0 to {steps - 1}, got {fail_at!r}")
    if not context.resumed:
        context.progress(0, steps, "starting")
    for index in range(steps):
        name = f"step {index + 1} of {steps}"
        with context.step(name) as step:
            if step.done:  # done before the execution waited for an answer
                continue
            context.log(f"{name}: working for {delay:g}s")
            context.sleep(delay)
            if index == fail_at:
                raise RuntimeError(f"{name} failed (fail_at={fail_at})")
            context.log(f"{name}: done")
            context.progress(index + 1, steps, f"{name} done")
    if ask:
        answer = context.ask(ask, choices=choices, multiline=multiline, default=default)
        context.log(f"answer: {answer}")
        return {"steps": steps, "answer": answer}
    return {"steps": steps}


@task(takes_context=True)  # type: ignore[arg-type]
def shell(context: ExecutionContext, command: str) -> dict[str, int]:
    """Run `command` with /bin/sh, streaming its output lines as log lines; a non-zero exit
    fails the execution. Staff and the command line only (TASK_FUNCTIONS_STAFF_ONLY)."""
    if not isinstance(command, str) or not command.strip():
        raise ValueError("command must not be empty")
    with context.step("run command"):
        context.log(f"$ {command}")
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                context.log(line.rstrip("\n"))  # also a cancellation checkpoint
            code = process.wait()
        finally:
            if process.poll() is None:  # cancelled or failed mid-way: stop the whole group
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if code != 0:
            raise RuntimeError(f"command exited with status {code}")
    return {"exit_code": code}
