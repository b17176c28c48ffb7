"""The JSON API under /api/ (contract: Programs), with its OpenAPI 3 document at
/api/openapi.json and Swagger UI at /api/docs (served from our own static files).

Thin typed views: access through tasks.access (404 invisible, 403 visible but not
actionable), writes through tasks.services and tasks.external, and every error the
contract's `{"detail": "<one line>"}`: 400 bad input, 401, 403, 404, 409 transition not
allowed, 429 over the rate limit.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Annotated, Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.datastructures import MultiValueDict
from ninja import Body, NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.parser import Parser
from ninja.throttling import SimpleRateThrottle
from pydantic import Discriminator, Tag

from config.env import RATE_PERIODS
from events.api import events_after, last_event_id
from events.filters import EventFilter, FilterError
from tasks import access, selectors, services
from tasks.api import schemas
from tasks.api.auth import SessionAuth, TokenAuth, bearer_secret
from tasks.api.tokens import token_authenticate
from tasks.external import (
    ReportOutcome,
    external_ask,
    external_heartbeat,
    external_log,
    external_progress,
    external_status,
    external_step,
)
from tasks.models import Execution, Step, Task
from tasks.registry import EXTERNAL
from tasks.selectors import TaskFilters
from tasks.states import TaskInputError, TransitionNotAllowed

logger = logging.getLogger(__name__)

# -- input hygiene: what JSON and query strings may carry ---------------------------------


def _clean_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise ValueError(f"{where} must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where} must not contain lone surrogates (\\ud800-\\udfff)") from None


def _clean_json(value: Any, where: str = "the body") -> None:
    """Refuse what the databases cannot store or JSON cannot carry: NUL, lone surrogates."""
    if isinstance(value, str):
        _clean_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _clean_text(key, where)
            _clean_json(item, where)
    elif isinstance(value, list):
        for item in value:
            _clean_json(item, where)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class JsonParser(Parser):
    """Strict JSON: no NaN or Infinity, no NUL, no lone surrogates."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = json.loads(request.body, parse_constant=_no_constant)
        _clean_json(data)
        return data  # type: ignore[no-any-return]

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        for key, values in data.lists():
            for value in values:
                try:
                    _clean_text(key, "a query parameter")
                    _clean_text(value, f"the query parameter {key}")
                except ValueError as exc:
                    raise HttpError(400, str(exc)) from None
        return super().parse_querydict(data, list_fields, request)


# -- rate limit -------------------------------------------------------------------------


class UserRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per user, per server process (Django's cache)."""

    def __init__(self) -> None:
        pass  # the rate is read per request, so a settings change applies at once

    def allow_request(self, request: HttpRequest) -> bool:
        count, _, period = settings.API_RATE_LIMIT.partition("/")
        self.rate = settings.API_RATE_LIMIT
        self.num_requests, self.duration = int(count), RATE_PERIODS[period]
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str | None:
        user = getattr(request, "auth", None)
        return None if user is None else f"api_throttle_user_{user.pk}"


# -- the document and docs: for signed-in people and token holders -------------------------


def _docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        secret = bearer_secret(request)
        if secret is not None:
            if token_authenticate(secret) is None:
                return JsonResponse({"detail": "invalid or revoked API token"}, status=401)
        elif not request.user.is_authenticated:
            if request.path.endswith("/docs"):
                return redirect_to_login(request.get_full_path())
            return JsonResponse(
                {"detail": "authentication required: a session or Authorization: Bearer"},
                status=401,
            )
        return view(request, *args, **kwargs)

    return wrapped


api = NinjaAPI(
    title="taskstream API",
    version="1",
    description=(
        "Create, follow, answer, cancel and retry tasks, and run external executions. "
        "Authenticate with the session (send X-CSRFToken on unsafe methods) or "
        "`Authorization: Bearer <token>` (make one at /tokens/). Errors are "
        '`{"detail": "<one line>"}`. Live events: the SSE stream at /events/.'
    ),
    urls_namespace="api",
    auth=[TokenAuth(), SessionAuth()],
    throttle=[UserRateThrottle()],
    parser=JsonParser(),
    docs_decorator=_docs_access,
)


def _errors(*codes: int) -> dict[int, type[schemas.Error]]:
    return dict.fromkeys((400, 401, 429, *codes), schemas.Error)


# -- errors: always {"detail": "<one line>"} ---------------------------------------------------


def _detail(request: HttpRequest, message: str, status: int) -> HttpResponse:
    line = " ".join(str(message).split()) or "error"
    return api.create_response(request, {"detail": line}, status=status)


def _where(loc: list[Any] | tuple[Any, ...], params: set[str]) -> str:
    parts: list[str] = []
    for item in loc:
        if item in ("body", "query", "path") or item in params:
            continue
        text = str(item)
        if not parts or parts[-1] != text:  # a union's tag repeats its key
            parts.append(text)
    return ".".join(parts)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    where = _where(first.get("loc", ()), {"body", "report", "filters", "payload", "params"})
    message = str(first.get("msg", "invalid input"))
    message = message.removeprefix("Value error, ")
    suffix = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
    return _detail(request, f"{where}: {message}{suffix}" if where else message + suffix, 400)


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = f"; retry in {math.ceil(exc.wait)}s" if exc.wait else ""
    return _detail(
        request, f"too many requests: at most {settings.API_RATE_LIMIT} per user{wait}", 429
    )


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _detail(
        request, "authentication required: a session or Authorization: Bearer <token>", 401
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    cause = exc.__cause__
    if exc.status_code == 400 and cause is not None and message.startswith("Cannot parse"):
        message = f"the body is not a JSON object we can read: {cause}"
    return _detail(request, message, exc.status_code)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _detail(request, str(exc) or "not found", 404)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _detail(request, str(exc) or "not allowed", 403)


@api.exception_handler(TaskInputError)
def _bad_input(request: HttpRequest, exc: TaskInputError) -> HttpResponse:
    return _detail(request, str(exc), 400)


@api.exception_handler(TransitionNotAllowed)
def _conflict(request: HttpRequest, exc: TransitionNotAllowed) -> HttpResponse:
    return _detail(request, str(exc), 409)


@api.exception_handler(SuspiciousOperation)
def _suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    return _detail(request, f"bad request: {exc}", 400)


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Never expected (the fuzz test holds us to it); still a JSON line, never a traceback.
    logger.exception("API error on %s %s", request.method, request.path)
    return _detail(request, "internal error; it has been logged", 500)


# -- shapes ------------------------------------------------------------------------------


def _step_out(step: Step) -> dict[str, Any]:
    return {
        "id": step.pk,
        "index": step.index,
        "name": step.name,
        "status": step.status,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_ms": step.duration_ms,
        "error": step.error,
    }


def _execution_out(execution: Execution, steps: list[Step] | None = None) -> dict[str, Any]:
    if steps is None:
        steps = list(execution.steps.order_by("index"))
    return {
        "id": execution.pk,
        "task_id": execution.task_id,
        "number": execution.number,
        "status": execution.status,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "error": execution.error,
        "prompt": execution.prompt,
        "answer": execution.answer,
        "progress": {
            "done": execution.progress_done,
            "total": execution.progress_total,
            "percent": execution.percent,
            "message": execution.progress_message,
        },
        "result": execution.result,
        "cancel_requested": execution.cancel_requested_at is not None,
        "steps": [_step_out(s) for s in steps],
    }


def _task_out(task: Task) -> dict[str, Any]:
    latest = task.latest_execution
    return {
        "id": task.pk,
        "title": task.title,
        "description": task.description,
        "function": task.function,
        "kwargs": task.kwargs if isinstance(task.kwargs, dict) else {},
        "status": task.status,
        "group": task.group_id,
        "created_by": task.created_by.get_username() if task.created_by else None,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "latest_execution": _execution_out(latest, list(latest.steps.all())) if latest else None,
    }


def _task_detail_out(task_id: int) -> dict[str, Any]:
    # The id first: whatever happens while we read arrives on /events/ after it.
    since = last_event_id()
    task = (
        Task.objects.select_related("latest_execution", "created_by")
        .prefetch_related("latest_execution__steps")
        .get(pk=task_id)
    )
    executions = list(task.executions.prefetch_related("steps").order_by("number"))
    return {
        **_task_out(task),
        "executions": [_execution_out(e, list(e.steps.all())) for e in executions],
        "last_event_id": since,
    }


def _report_out(outcome: ReportOutcome) -> dict[str, Any]:
    execution = outcome.execution
    return {
        "execution_id": execution.pk,
        "task_id": execution.task_id,
        "status": execution.status,
        "cancel_requested": execution.cancel_requested_at is not None,
        "prompt": execution.prompt,
        "answer": execution.answer,
        "lease_expires_at": execution.lease_expires_at,
        "lease_seconds": settings.WORKER_LEASE_SECONDS,
        "last_event_id": outcome.last_event_id,
    }


def _caller(request: HttpRequest) -> Any:
    """The user the auth class authenticated (token or session)."""
    return getattr(request, "auth", None)


# -- tasks -------------------------------------------------------------------------------


@api.get(
    "/tasks/",
    response={200: schemas.TaskPageOut, **_errors(400)},
    summary="The tasks you may see, newest first, with the dashboard list's filters",
)
def tasks_list(request: HttpRequest, filters: Query[schemas.TaskFiltersIn]) -> Any:
    wanted = TaskFilters(
        status=filters.status or "",
        q=(filters.q or "").strip(),
        function=(filters.function or "").strip(),
        created_from=filters.created_from,
        created_to=filters.created_to,
        page=filters.page,
    )
    qs = selectors.task_filtered(wanted, visible=access.tasks_visible(_caller(request)))
    count, capped = selectors.count_bounded(qs)
    per_page = filters.per_page
    pages = max(1, math.ceil(count / per_page))
    offset = (filters.page - 1) * per_page
    rows = (
        qs.select_related("latest_execution", "created_by")
        .prefetch_related("latest_execution__steps")
        .order_by("-created_at", "-id")[offset : offset + per_page]
    )
    return {
        "items": [_task_out(task) for task in rows],
        "count": count,
        "count_capped": capped,
        "page": filters.page,
        "pages": pages,
        "per_page": per_page,
    }


def _function_checked(user: Any, function: str) -> str:
    function = function.strip()
    offered = [EXTERNAL, *settings.TASK_FUNCTIONS]
    if function not in offered:
        raise TaskInputError(f"unknown function {function[:200]!r}; one of: {', '.join(offered)}")
    if not access.function_allowed(user, function):
        raise PermissionDenied(f"only staff may run {function}")
    return function


def _group_checked(user: Any, group: int | str | None) -> Any:
    if group is None or group == "":
        return None
    offered = access.groups_offered(user)
    if isinstance(group, int):
        found = offered.filter(pk=group).first() if 0 < group < 2**63 else None
    else:
        found = offered.filter(name=group).first()
    if found is None:
        shown = str(group) if isinstance(group, int) else repr(group[:150])
        raise TaskInputError(f"group {shown} is not one of your groups")
    return found


@api.post(
    "/tasks/",
    response={201: schemas.TaskDetailOut, **_errors(400, 403)},
    summary="Create a task; its first execution is queued (or waits for its runner)",
)
def tasks_create(request: HttpRequest, body: schemas.TaskIn) -> Any:
    user = _caller(request)
    function = _function_checked(user, body.function)
    group = _group_checked(user, body.group)
    task = services.task_create(
        title=body.title,
        function=function,
        kwargs=body.kwargs,
        description=body.description,
        created_by=user,
        group=group,
    )
    return Status(201, _task_detail_out(task.pk))


@api.get(
    "/tasks/{task_id}/",
    response={200: schemas.TaskDetailOut, **_errors(404)},
    summary="A task with every execution and its steps",
)
def tasks_detail(request: HttpRequest, task_id: int) -> Any:
    task = access.task_for_user(_caller(request), task_id)
    return _task_detail_out(task.pk)


@api.post(
    "/tasks/{task_id}/retry/",
    response={201: schemas.ExecutionOut, **_errors(403, 404, 409)},
    summary="A new numbered execution, when the latest one failed or was cancelled",
)
def tasks_retry(request: HttpRequest, task_id: int) -> Any:
    user = _caller(request)
    task = access.task_for_user(user, task_id, act=True)
    if not access.function_allowed(user, task.function):
        raise PermissionDenied(f"only staff may run {task.function}")
    execution = services.task_retry(task=task)
    return Status(201, _execution_out(execution, []))


# -- executions --------------------------------------------------------------------------


@api.post(
    "/executions/{execution_id}/cancel/",
    response={200: schemas.ExecutionOut, **_errors(403, 404, 409)},
    summary="Cancel: pending or waiting at once; running at its next checkpoint",
)
def executions_cancel(request: HttpRequest, execution_id: int) -> Any:
    execution = access.execution_for_user(_caller(request), execution_id, act=True)
    services.execution_cancel(execution=execution)
    execution.refresh_from_db()
    return _execution_out(execution)


@api.post(
    "/executions/{execution_id}/answer/",
    response={200: schemas.ExecutionOut, **_errors(400, 403, 404, 409)},
    summary="Answer an execution waiting for input",
)
def executions_answer(request: HttpRequest, execution_id: int, body: schemas.AnswerIn) -> Any:
    user = _caller(request)
    execution = access.execution_for_user(user, execution_id, act=True)
    services.execution_answer(execution=execution, answer=body.answer, by=user)
    execution.refresh_from_db()
    return _execution_out(execution)


def _report_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in schemas.REPORT_KINDS if key in value), None)
    return None


Report = Annotated[
    Annotated[schemas.StepReport, Tag("step")]
    | Annotated[schemas.StatusReport, Tag("status")]
    | Annotated[schemas.ProgressReport, Tag("progress")]
    | Annotated[schemas.LogReport, Tag("log")]
    | Annotated[schemas.AskReport, Tag("ask")]
    | Annotated[schemas.HeartbeatReport, Tag("heartbeat")],
    Discriminator(
        _report_kind,
        custom_error_type="report_kind",
        custom_error_message=(
            "a report is a JSON object with one of the keys " + ", ".join(schemas.REPORT_KINDS)
        ),
    ),
]


@api.post(
    "/executions/{execution_id}/report/",
    response={200: schemas.ReportOut, **_errors(400, 403, 404, 409)},
    summary="An external execution's runner reports (renews its lease)",
)
def executions_report(request: HttpRequest, execution_id: int, report: Body[Report]) -> Any:
    user = _caller(request)
    execution = access.execution_for_user(user, execution_id, act=True)
    pk = execution.pk
    outcome: ReportOutcome
    if isinstance(report, schemas.StepReport):
        outcome = external_step(
            execution_id=pk, name=report.step, status=report.status, error=report.error
        )
    elif isinstance(report, schemas.StatusReport):
        outcome = external_status(
            execution_id=pk,
            status=report.status,
            error=report.error,
            result=report.result,
            runner=f"runner:{user.get_username()}",
        )
    elif isinstance(report, schemas.ProgressReport):
        progress = report.progress
        outcome = external_progress(
            execution_id=pk, done=progress.done, total=progress.total, message=progress.message
        )
    elif isinstance(report, schemas.LogReport):
        outcome = external_log(
            execution_id=pk, lines=[(line.level, line.message) for line in report.log]
        )
    elif isinstance(report, schemas.AskReport):
        outcome = external_ask(execution_id=pk, prompt=report.ask)
    else:
        outcome = external_heartbeat(execution_id=pk)
    return _report_out(outcome)


# -- events ------------------------------------------------------------------------------


@api.get(
    "/events/",
    response={200: schemas.EventsOut, **_errors(400, 404)},
    summary="The event log after an id: the events you may see, contract JSON",
)
def events_list(request: HttpRequest, params: Query[schemas.EventsQuery]) -> Any:
    user = _caller(request)
    try:
        wanted = EventFilter.from_params({"type": params.type or ""})
    except FilterError as exc:
        raise TaskInputError(str(exc)) from None
    if params.task is not None:
        access.task_for_user(user, params.task)
    if params.execution is not None:
        access.execution_for_user(user, params.execution)
    events = events_after(
        params.after,
        types=list(wanted.types),
        type_prefixes=list(wanted.prefixes),
        task_id=params.task,
        execution_id=params.execution,
        grant=access.event_grant(user),
        limit=params.limit,
    )
    return {"events": events, "last_id": events[-1]["id"] if events else params.after}
