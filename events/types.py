"""Event type names (contract)."""

TASK_CREATED = "task.created"
TASK_STATUS = "task.status"
EXECUTION_CREATED = "execution.created"
EXECUTION_STATUS = "execution.status"
EXECUTION_PROGRESS = "execution.progress"
EXECUTION_LOG = "execution.log"
STEP_STARTED = "step.started"
STEP_COMPLETED = "step.completed"
STEP_FAILED = "step.failed"

DOMAIN_TYPES = (
    TASK_CREATED,
    TASK_STATUS,
    EXECUTION_CREATED,
    EXECUTION_STATUS,
    EXECUTION_PROGRESS,
    EXECUTION_LOG,
    STEP_STARTED,
    STEP_COMPLETED,
    STEP_FAILED,
)

# Stream control events: never stored, only framed into a stream.
END = "end"
RESET = "reset"
