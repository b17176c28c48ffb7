"""Views of the operations pages: workers and queue, the inbox, a task's history, "run
again with changes", bulk cancel/retry, and the header-only stream of pages that have no
stream of their own. Thin: reads from tasks.ops, writes from the services, access from
tasks.access."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from events.api import last_event_id
from events.filters import EventFilter
from tasks import access, ops, selectors, services
from tasks.bulk import ACTIONS, BULK_PAGE, BulkAction, tasks_bulk_act
from tasks.models import Task
from tasks.states import TaskInputError, TransitionNotAllowed
from tasks.web import chrome, ops_renderers
from tasks.web.forms import TaskCreateForm, task_filters_parse
from tasks.web.http import HtmxHttpRequest, regions_response

BULK_IDS_MAX = 500  # below DATA_UPLOAD_MAX_NUMBER_FIELDS (1000), which answers first
BULK_SESSION_PREFIX = "bulk:"


def _text(status: int, reason: str) -> HttpResponse:
    """A one-line refusal."""
    return HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")


def _htmx(request: HtmxHttpRequest) -> HtmxDetails:
    return request.htmx


def _messages_oob(request: HtmxHttpRequest) -> str:
    return render_to_string("base.html#messages", {"oob": True}, request=request)


def _stream_url(name: str, since: int, *args: Any, **query: Any) -> str:
    return f"{reverse(name, args=args)}?{urlencode({**query, 'last_event_id': since})}"


# --- workers and the queue ------------------------------------------------------------


def _workers_allowed(user: Any) -> None:
    if not access.workers_visible(user):
        raise PermissionDenied("Only staff and holders of tasks.view_all_tasks see the workers.")


@require_GET
def workers(request: HtmxHttpRequest) -> HttpResponse:
    _workers_allowed(request.user)
    since = last_event_id()
    context = ops_renderers.workers_context()
    context.update(
        lease_seconds=settings.WORKER_LEASE_SECONDS,
        last_event_id=since,
        stream_url=_stream_url("workers_stream", since),
    )
    return render(request, "tasks/workers.html", context)


@login_not_required
@require_GET
async def workers_stream(request: HtmxHttpRequest) -> HttpResponseBase:
    user = await request.auser()
    if user.is_authenticated and not await sync_to_async(access.workers_visible)(user):
        return _text(403, "only staff and holders of tasks.view_all_tasks see the workers")
    return await chrome.page_stream(
        request,
        event_filter=EventFilter(types=ops_renderers.WORKERS_PAGE_TYPES),
        renderer=ops_renderers.WORKERS_RENDERER,
    )


# --- the inbox ------------------------------------------------------------------------


@require_GET
def inbox(request: HtmxHttpRequest) -> HttpResponse:
    return _inbox_page(request)


def _inbox_page(request: HtmxHttpRequest, status: int = 200) -> HttpResponse:
    since = last_event_id()
    context = ops_renderers.inbox_context(request.user)
    context.update(last_event_id=since, stream_url=_stream_url("inbox_stream", since))
    return render(request, "tasks/inbox.html", context, status=status)


@login_not_required
@require_GET
async def inbox_stream(request: HtmxHttpRequest) -> HttpResponseBase:
    user = await request.auser()
    return await chrome.page_stream(
        request,
        event_filter=EventFilter(types=ops_renderers.INBOX_TYPES),
        renderer=ops_renderers.InboxRenderer(user) if user.is_authenticated else None,
    )


@require_POST
def inbox_answer(request: HtmxHttpRequest, execution_id: int) -> HttpResponse:
    """Answer in place; the inbox (and every other page showing it) updates from the
    stream, and this response brings this page there at once."""
    user = request.user
    execution = access.execution_for_user(user, execution_id, act=True)
    label = f"#{execution.task_id} {execution.task.title}"
    status = 200
    try:
        services.execution_answer(
            execution=execution, answer=request.POST.get("answer", ""), by=user
        )
    except TaskInputError as exc:
        messages.error(request, f"{label}: {exc}")
        status = 422
    except TransitionNotAllowed as exc:
        messages.error(request, f"{label}: {exc}")
        status = 409
    else:
        messages.success(request, f"Answered {label}.")
    if not _htmx(request):
        if status == 200:
            return HttpResponseRedirect(reverse("inbox"))
        return _inbox_page(request, status=status)
    seen = last_event_id()  # before the reads: the regions show at least this
    html = ops_renderers.inbox_regions(user) + chrome.chrome_regions(user) + _messages_oob(request)
    return regions_response(html, seen)


# --- a task's history -----------------------------------------------------------------


def _event_id_param(request: HtmxHttpRequest, name: str) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise ValueError(f"{name} must be an event id (a whole number), got {raw[:40]!r}")
    return int(raw)


@require_GET
def task_events(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = access.task_for_user(request.user, pk)
    try:
        before = _event_id_param(request, "before")
        after = _event_id_param(request, "after")
    except ValueError as exc:
        return _text(400, str(exc))
    if before is not None and after is not None:
        return _text(400, "give before or after, not both")
    since = last_event_id()
    page = ops.task_history(task, before=before, after=after, up_to=since)
    if page.tail:
        stream_url = _stream_url("task_events_stream", since, pk)
    else:  # an older page stays as it is; only the header is live
        stream_url = _stream_url("chrome_stream", since)
    context = {
        "task": task,
        "history": page,
        "rows": ops_renderers.history_rows(task, page.events),
        "last_event_id": since,
        "stream_url": stream_url,
    }
    return render(request, "tasks/history.html", context)


@login_not_required
@require_GET
async def task_events_stream(request: HtmxHttpRequest, pk: int) -> HttpResponseBase:
    user = await request.auser()
    if user.is_authenticated:
        await sync_to_async(access.task_for_user)(user, pk)  # Http404 when invisible
    return await chrome.page_stream(
        request,
        event_filter=EventFilter(task_id=pk),
        renderer=ops_renderers.HistoryRenderer(pk),
    )


# --- pages with only the header live --------------------------------------------------


@login_not_required
@require_GET
async def chrome_stream(request: HtmxHttpRequest) -> HttpResponseBase:
    return await chrome.page_stream(request)


# --- run again with changes -----------------------------------------------------------


def _rerun_source(user: Any, pk: int) -> Task:
    source = access.task_for_user(user, pk, act=True)
    if not access.function_allowed(user, source.function):
        raise PermissionDenied(f"Only staff may run {source.function}.")
    return source


def rerun_initial(source: Task, form: TaskCreateForm) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "function": source.function,
        "title": source.title,
        "kwargs": json.dumps(source.kwargs, ensure_ascii=False),  # one line: the field is short
        "description": source.description,
    }
    if "group" in form.fields:  # the access branch's group field
        initial["group"] = source.group_id
    return initial


@require_http_methods(["GET", "POST"])
def task_rerun(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The create form filled from task `pk`; the new task links back to it."""
    user = request.user
    source = _rerun_source(user, pk)
    action = reverse("task_rerun", args=[pk])
    if request.method == "GET":
        form = TaskCreateForm(user=user)
        form.initial = rerun_initial(source, form)
        return _rerun_page(request, source, form, action)
    form = TaskCreateForm(request.POST, user=user)
    created = None
    if form.is_valid():
        data = form.cleaned_data
        extra = {"group": data["group"]} if "group" in data else {}
        try:
            created = services.task_rerun(
                source=source,
                created_by=user,
                title=data["title"],
                function=data["function"],
                kwargs=data["kwargs"],
                description=data["description"],
                **extra,
            )
        except TaskInputError as exc:
            form.add_service_error(exc)
    if created is None:
        return _rerun_page(request, source, form, action, status=422)
    messages.success(request, f"Created task #{created.pk}, a rerun of #{source.pk}.")
    target = reverse("task_detail", args=[created.pk])
    if _htmx(request):
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)


def _rerun_page(
    request: Any, source: Task, form: TaskCreateForm, action: str, status: int = 200
) -> HttpResponse:
    template = "tasks/task_rerun.html"
    if _htmx(request):
        template = "tasks/task_new.html#create_form"
    context = {"source": source, "create_form": form, "form_action": action}
    return render(request, template, context, status=status)


# --- bulk cancel / retry --------------------------------------------------------------

_BULK_NOT_FILTERS = {"action", "ids", "all", "confirm", "op", "csrfmiddlewaretoken", "page"}


def _bulk_selection(request: HtmxHttpRequest) -> dict[str, Any]:
    """The selection a bulk request names: {"ids": [...]} or {"filters": {...}}. Bad input
    raises ValueError with a one-line reason (a bad filter must never widen what is acted
    on, so here it is refused, not ignored as the list does)."""
    post = request.POST
    every = post.get("all") or ""
    if every not in ("", "0", "1"):
        raise ValueError(f"all must be 1 or 0, got {every[:40]!r}")
    if every == "1":
        params = {k: post.get(k) or "" for k in post if k not in _BULK_NOT_FILTERS}
        filters, problems = task_filters_parse(params)
        if problems:
            raise ValueError(problems[0])
        unknown = sorted(set(params) - {"status", "q", "function", "created_from", "created_to"})
        if unknown:
            raise ValueError(f"unknown filter parameter {unknown[0][:40]!r}")
        return {"filters": filters.query(page=1)}
    raw_ids = post.getlist("ids")
    if not raw_ids:
        raise ValueError("select at least one task, or all=1 with the list's filters")
    if len(raw_ids) > BULK_IDS_MAX:
        raise ValueError(
            f"at most {BULK_IDS_MAX} ids at once; use all=1 with the list's filters instead"
        )
    ids: set[int] = set()
    for raw in raw_ids:
        text = raw.strip()
        if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**63):
            raise ValueError(f"ids must be task ids (positive whole numbers), got {raw[:40]!r}")
        ids.add(int(text))
    return {"ids": sorted(ids)}


def _bulk_queryset(user: Any, selection: dict[str, Any]) -> Any:
    visible = access.tasks_visible(user)
    if "ids" in selection:
        return visible.filter(pk__in=selection["ids"])
    filters, _ = task_filters_parse(selection["filters"])
    return selectors.task_filtered(filters, visible=visible)


def _bulk_render(
    request: HtmxHttpRequest, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    template = "tasks/bulk.html#panel" if _htmx(request) else "tasks/bulk.html"
    return render(request, template, context, status=status)


def _bulk_hidden(action: str, selection: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [("action", action)]
    if "ids" in selection:
        fields += [("ids", str(i)) for i in selection["ids"]]
    else:
        fields += [("all", "1"), *selection["filters"].items()]
    return fields


@require_POST
def tasks_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """POST /tasks/bulk/: `action` cancel|retry and `ids` (repeated) or `all=1` plus the
    list's filters. Without `confirm=1` it says how many it would act on; with it, it acts
    on the first page and hands back an `op` to go on with, until it is done."""
    user = request.user
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        return _text(400, f"action must be one of {', '.join(ACTIONS)}, got {action[:40]!r}")
    op = request.POST.get("op")
    if op:
        state = request.session.get(BULK_SESSION_PREFIX + op)
        if not isinstance(state, dict) or state.get("action") != action:
            return _text(400, "unknown or finished bulk operation")
        return _bulk_step(request, op, state)
    try:
        selection = _bulk_selection(request)
    except ValueError as exc:
        return _text(400, str(exc))
    tasks = _bulk_queryset(user, selection)
    if request.POST.get("confirm") != "1":
        count = tasks.count()
        context = {
            "stage": "confirm",
            "action": action,
            "count": count,
            "missing": len(selection["ids"]) - count if "ids" in selection else 0,
            "hidden": _bulk_hidden(action, selection),
        }
        return _bulk_render(request, context)
    upto = Task.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    total = tasks.filter(pk__lte=upto).count()
    missing = len(selection["ids"]) - total if "ids" in selection else 0
    op = uuid.uuid4().hex
    state = {
        "action": action,
        "selection": selection,
        "upto": upto,
        "total": total,
        "after": 0,
        "seen": 0,
        "changed": 0,
        "refused": {"not found": missing} if missing else {},
    }
    return _bulk_step(request, op, state)


def _bulk_step(request: HtmxHttpRequest, op: str, state: dict[str, Any]) -> HttpResponse:
    action: BulkAction = state["action"]
    tasks = _bulk_queryset(request.user, state["selection"]).filter(pk__lte=state["upto"])
    page = tasks_bulk_act(
        user=request.user, action=action, tasks=tasks, after_id=state["after"], limit=BULK_PAGE
    )
    refused: dict[str, int] = dict(state["refused"])
    for reason, n in page.refused.items():
        refused[reason] = refused.get(reason, 0) + n
    state.update(
        after=page.last_id,
        seen=state["seen"] + page.seen,
        changed=state["changed"] + page.changed,
        refused=refused,
    )
    key = BULK_SESSION_PREFIX + op
    if page.done:
        request.session.pop(key, None)
    else:
        request.session[key] = state
    context = {
        "stage": "done" if page.done else "progress",
        "action": action,
        "op": op,
        "total": state["total"],
        "seen": state["seen"],
        "changed": state["changed"],
        "refused": sorted(refused.items(), key=lambda item: (-item[1], item[0])),
        "refused_total": sum(refused.values()),
    }
    return _bulk_render(request, context)
