"""The event types this app emits (contract), registered with events in TasksConfig.ready."""

TASK_CREATED = "task.created"
TASK_STATUS = "task.status"
EXECUTION_CREATED = "execution.created"
EXECUTION_STATUS = "execution.status"
EXECUTION_PROGRESS = "execution.progress"
EXECUTION_LOG = "execution.log"
EXECUTION_ANSWERED = "execution.answered"
STEP_STARTED = "step.started"
STEP_COMPLETED = "step.completed"
STEP_FAILED = "step.failed"
WORKER_STARTED = "worker.started"
WORKER_STOPPED = "worker.stopped"
WORKER_LOST = "worker.lost"

ALL = (
    TASK_CREATED,
    TASK_STATUS,
    EXECUTION_CREATED,
    EXECUTION_STATUS,
    EXECUTION_PROGRESS,
    EXECUTION_LOG,
    EXECUTION_ANSWERED,
    STEP_STARTED,
    STEP_COMPLETED,
    STEP_FAILED,
    WORKER_STARTED,
    WORKER_STOPPED,
    WORKER_LOST,
)
