"""Dashboard views: thin. Reads come from tasks.selectors, writes from tasks.services,
who may see and do what from tasks.access, and every live region is a template partial
that renderers reuse for the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from events.api import last_event_id
from events.filters import EventFilter
from events.lean import lean_request
from events.streams import stream_response
from tasks import access, selectors, services
from tasks.bounds import text_clean
from tasks.models import Task
from tasks.states import Status, TaskInputError, TransitionNotAllowed
from tasks.web import renderers
from tasks.web.chrome import page_stream
from tasks.web.forms import AnswerForm, TaskCreateForm, task_filters_parse
from tasks.web.http import HtmxHttpRequest, regions_response
from tasks.web.ops_renderers import admin_task_renderer

# --- the task list -----------------------------------------------------------------


@require_GET
def task_list(request: HtmxHttpRequest) -> HttpResponse:
    filters, problems = task_filters_parse(request.GET)
    for problem in problems:
        messages.warning(request, problem)
    # The id first: anything that happens while we query arrives through the stream.
    since = last_event_id()
    grant = access.event_grant(request.user)
    context = renderers.task_list_context(filters, grant=grant)
    if filters.page != context["page"].number:
        messages.info(
            request,
            f"There is no page {filters.page}; showing page {context['page'].number}.",
        )
    # The stream renders the page shown (a page past the end shows the last one).
    stream_query = {**filters.query(page=context["page"].number), "last_event_id": since}
    context.update(
        filters=filters,
        create_form=TaskCreateForm(user=request.user),
        functions=selectors.task_functions_used(visible=access.tasks_in_scope(grant)),
        last_event_id=since,
        stream_url=f"{reverse('task_list_stream')}?{urlencode(stream_query)}",
    )
    return render(request, "tasks/task_list.html", context)


@require_http_methods(["GET", "POST"])
def task_new(request: HtmxHttpRequest) -> HttpResponse:
    """The create form: a full page without htmx, its partial with htmx."""
    template = "tasks/task_new.html"
    if request.htmx:
        template += "#create_form"
    if request.method == "GET":
        return render(request, template, {"create_form": TaskCreateForm(user=request.user)})
    form = TaskCreateForm(request.POST, user=request.user)
    created = None
    if form.is_valid():
        try:
            created = services.task_create(
                title=form.cleaned_data["title"],
                function=form.cleaned_data["function"],
                kwargs=form.cleaned_data["kwargs"],
                description=form.cleaned_data["description"],
                created_by=request.user,
                group=form.cleaned_data.get("group"),
            )
        except TaskInputError as exc:
            form.add_service_error(exc)
    if created is None:
        return render(request, template, {"create_form": form}, status=422 if request.htmx else 200)
    if not request.htmx:
        messages.success(request, f"Created task #{created.pk}.")
        return HttpResponseRedirect(reverse("task_detail", args=[created.pk]))
    # A fresh form for the next one; the new row arrives through the list's stream.
    fresh = TaskCreateForm(user=request.user, initial={"function": form.cleaned_data["function"]})
    return render(request, template, {"create_form": fresh, "created": created})


# --- one task ----------------------------------------------------------------------


def _rights(user: Any, task: Task) -> renderers.Rights:
    """What the viewer may do on the task page (the buttons and forms it shows)."""
    return {
        "may_act": user.has_perm("tasks.cancel_task", task),
        "may_retry": user.has_perm("tasks.retry_task", task),
    }


def _task_for(request: HttpRequest, pk: int, permission: str) -> Task:
    """The task for an action: 404 when the user may not see it, 403 when they may see
    it but `permission` (tasks.access) does not allow the action."""
    task = access.task_for_user(request.user, pk)
    if not request.user.has_perm(permission, task):
        if access.task_actionable(request.user, task):
            raise PermissionDenied(f"only staff may run {task.function}")
        raise PermissionDenied("You may see this task but not act on it.")
    return task


@require_GET
def task_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _task_page(request, access.task_for_user(request.user, pk))


def _task_page(
    request: HtmxHttpRequest,
    task: Task,
    *,
    status: int = 200,
    answer_form: AnswerForm | None = None,
) -> HttpResponse:
    # The id first: anything that happens while we query arrives through the stream.
    since = last_event_id()
    task = selectors.task_detail(task.pk) or task
    context = renderers.task_detail_context(task, **_rights(request.user, task))
    pk = task.pk
    context.update(
        last_event_id=since,
        stream_url=f"{reverse('task_stream', args=[pk])}?{urlencode({'last_event_id': since})}",
    )
    if answer_form is not None:
        context["answer_form"] = answer_form
    return render(request, "tasks/task_detail.html", context, status=status)


def _after_action(
    request: HtmxHttpRequest, task: Task, *, answer_form: AnswerForm | None = None
) -> HttpResponse:
    """Without htmx, back to the task page; with htmx, the page's regions at their current
    state (out-of-band) and the messages."""
    if not request.htmx:
        return HttpResponseRedirect(reverse("task_detail", args=[task.pk]))
    seen = last_event_id()  # before the reads: the regions show at least this
    html = renderers.task_detail_regions(
        task.pk, **_rights(request.user, task), answer_form=answer_form
    )
    html += render_to_string("base.html#messages", {"oob": True}, request=request)
    return regions_response(html, seen)


@require_POST
def task_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _task_for(request, pk, "tasks.cancel_task")
    execution = task.latest_execution
    try:
        if execution is None:
            raise TransitionNotAllowed(f"task {pk} has no execution to cancel")
        cancelled = services.execution_cancel(execution=execution, by=request.user)
    except (TransitionNotAllowed, TaskInputError) as exc:
        messages.error(request, str(exc))
    else:
        if cancelled.status == Status.CANCELLED:
            messages.success(request, f"Cancelled attempt {execution.number}.")
        else:
            number = execution.number
            messages.info(request, f"Cancel requested: attempt {number} stops at its next step.")
    return _after_action(request, task)


@require_POST
def task_retry(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _task_for(request, pk, "tasks.retry_task")
    try:
        services.task_retry(task=task, by=request.user)
    except (TransitionNotAllowed, TaskInputError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Retrying: a new attempt is queued.")
    return _after_action(request, task)


@require_POST
def execution_answer(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    task = _task_for(request, pk, "tasks.answer_task")
    execution = access.attempt_for_user(request.user, task.pk, number, act=True)
    form = AnswerForm(request.POST)
    form.is_valid()
    try:
        services.execution_answer(
            execution=execution, answer=form.cleaned_data.get("answer", ""), by=request.user
        )
    except TaskInputError as exc:
        form.add_service_error(exc)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return _after_action(request, task)
    else:
        messages.success(request, f"Answered attempt {execution.number}.")
        return _after_action(request, task)
    if request.htmx:
        return _after_action(request, task, answer_form=form)
    # Without htmx: the page again, with the error beside the field.
    return _task_page(request, task, status=422, answer_form=form)


LOG_PAGE = 500  # log lines read per query of a download


@login_not_required  # it answers 401 itself (never a redirect inside a download)
@require_GET
async def execution_log(
    request: HtmxHttpRequest, pk: int, number: int | None = None
) -> HttpResponseBase:
    """One attempt's whole log (the latest attempt's without `number`) as a text file,
    read from the log a page at a time while it is sent: an async iterator, because
    under ASGI Django would first turn a sync one into a list (the whole log in memory)."""
    user = await request.auser()
    if not user.is_authenticated:
        return HttpResponse(
            "authentication required: log in first\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
    execution = await sync_to_async(access.attempt_for_user)(user, pk, number)
    response = StreamingHttpResponse(
        _log_lines(execution.pk), content_type="text/plain; charset=utf-8"
    )
    name = f"task-{execution.task_id}-attempt-{execution.number}.log"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


async def _log_lines(execution_id: int) -> AsyncIterator[str]:
    after = 0
    while True:
        page = await sync_to_async(selectors.execution_log_page)(
            execution_id, after_id=after, limit=LOG_PAGE
        )
        if not page:
            return
        chunk = []
        for line in page:
            level = text_clean(line.level).upper()
            message = text_clean(line.message).replace("\r", "")
            chunk.append(f"{line.at.isoformat()} {level} {message}\n")
        yield "".join(chunk)
        if len(page) < LOG_PAGE:
            return
        after = page[-1].id


# --- streams -----------------------------------------------------------------------
# One stream per page, fragments rendered by tasks.web.renderers. Anonymous requests get a
# 401 from stream_response, never a redirect into the login page.


@lean_request
@login_not_required
@require_GET
async def task_list_stream(request: HttpRequest) -> HttpResponseBase:
    filters, _ = task_filters_parse(request.GET)
    user = await request.auser()
    # The rows and counts of the tasks this viewer sees: rendered once per event for all
    # the viewers of the same scope (grant) and filters.
    grant = await sync_to_async(access.event_grant)(user)
    return await page_stream(
        request,
        event_filter=EventFilter(types=renderers.LIST_EVENT_TYPES),
        renderer=renderers.task_list_renderer(filters, grant),
        grant=grant,
    )


@lean_request
@login_not_required
@require_GET
async def task_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    user = await request.auser()
    if not user.is_authenticated:
        return await stream_response(request, event_filter=EventFilter(task_id=pk))  # 401
    task = await sync_to_async(access.task_for_user)(user, pk)
    rights = await sync_to_async(_rights)(user, task)
    grant = await sync_to_async(access.event_grant)(user)
    if request.GET.get("view") == "admin":  # the admin's change page: its regions only
        return await stream_response(
            request,
            event_filter=EventFilter(task_id=task.pk),
            renderer=admin_task_renderer(task.pk),
            grant=grant,
        )
    return await page_stream(
        request,
        event_filter=EventFilter(task_id=task.pk),
        renderer=renderers.task_detail_renderer(task.pk, **rights),
        grant=grant,
    )


# --- refusals ----------------------------------------------------------------------


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler403: a one-line refusal. For htmx, the message region only (out of band,
    nothing else swapped): the page stays as it was."""
    reason = str(exception or "") or "You may not do that."
    if getattr(request, "htmx", False):
        messages.error(request, reason)
        html = render_to_string("base.html#messages", {"oob": True}, request=request)
        response = HttpResponse(html, status=403)
        response["HX-Reswap"] = "none"
        return response
    return render(request, "403.html", {"reason": reason}, status=403)
