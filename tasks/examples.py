"""Built-in task functions: the demo and test workload."""

from django.tasks import task


@task(takes_context=True)
def pipeline(
    context, steps: int = 3, delay: float = 1.0, fail_at: int | None = None, ask: str | None = None
):
    """The demo workload (contract): `steps` steps of `delay` seconds each; `fail_at` makes
    that step raise; `ask` waits for a person's answer, then finishes."""
    # Runs on the worker (execution engine issue); until then it is only enqueued.
    raise NotImplementedError("the execution engine runs this")
