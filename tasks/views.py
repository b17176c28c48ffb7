"""Dashboard views: thin. Reads come from tasks.selectors, writes from tasks.services,
and every live region is a template partial that renderers reuse for the stream."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import (
    Http404,
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
from events.streams import EventFilter, stream_response
from tasks import renderers, selectors, services
from tasks.forms import AnswerForm, TaskCreateForm, task_filters_parse
from tasks.models import Execution, Task
from tasks.states import Status, TaskInputError, TransitionNotAllowed

# --- the task list -----------------------------------------------------------------


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    filters, problems = task_filters_parse(request.GET)
    for problem in problems:
        messages.warning(request, problem)
    # The id first: anything that happens while we query arrives through the stream.
    since = last_event_id()
    context = renderers.task_list_context(filters)
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
        functions=selectors.task_functions_used(),
        last_event_id=since,
        stream_url=f"{reverse('task_list_stream')}?{urlencode(stream_query)}",
    )
    return render(request, "tasks/task_list.html", context)


@require_http_methods(["GET", "POST"])
def task_new(request: HttpRequest) -> HttpResponse:
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


def _task_or_404(pk: int) -> Task:
    task = selectors.task_detail(pk)
    if task is None:
        raise Http404("No such task.")
    return task


@require_GET
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _task_page(request, pk)


def _task_page(request: HttpRequest, pk: int, *, status: int = 200, **extra) -> HttpResponse:
    # The id first: anything that happens while we query arrives through the stream.
    since = last_event_id()
    context = renderers.task_detail_context(_task_or_404(pk))
    context.update(
        last_event_id=since,
        stream_url=f"{reverse('task_stream', args=[pk])}?{urlencode({'last_event_id': since})}",
        **extra,
    )
    return render(request, "tasks/task_detail.html", context, status=status)


def _after_action(request: HttpRequest, task: Task, **extra) -> HttpResponse:
    """Without htmx, back to the task page; with htmx, the page's regions at their current
    state (out-of-band) and the messages."""
    if not request.htmx:
        return HttpResponseRedirect(reverse("task_detail", args=[task.pk]))
    html = renderers.task_detail_regions(task.pk, **extra)
    html += render_to_string("base.html#messages", {"oob": True}, request=request)
    return HttpResponse(html)


@require_POST
def task_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task_or_404(pk)
    execution = task.latest_execution
    try:
        if execution is None:
            raise TransitionNotAllowed(f"task {pk} has no execution to cancel")
        cancelled = services.execution_cancel(execution=execution)
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
def task_retry(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task_or_404(pk)
    try:
        services.task_retry(task=task)
    except (TransitionNotAllowed, TaskInputError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Retrying: a new attempt is queued.")
    return _after_action(request, task)


@require_POST
def execution_answer(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    task = _task_or_404(pk)
    execution = Execution.objects.filter(task=task, number=number).first()
    if execution is None:
        raise Http404("No such attempt.")
    form = AnswerForm(request.POST)
    form.is_valid()
    try:
        services.execution_answer(execution=execution, answer=form.cleaned_data.get("answer", ""))
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
    return _task_page(request, pk, status=422, answer_form=form)


@require_GET
def execution_log(request: HttpRequest, pk: int, number: int | None = None) -> HttpResponseBase:
    """One attempt's whole log (the latest attempt's without `number`) as a text file."""
    executions = Execution.objects.filter(task_id=pk)
    if number is None:
        execution = executions.order_by("-number").first()
    else:
        execution = executions.filter(number=number).first()
    if execution is None:
        raise Http404("No such attempt.")
    number = execution.number

    def lines():
        for event in selectors.execution_log_all(execution.pk).iterator(chunk_size=500):
            data = event.data or {}
            level = str(data.get("level", "info")).upper()
            message = str(data.get("message", "")).replace("\r", "")
            yield f"{event.at.isoformat()} {level} {message}\n"

    response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="task-{pk}-attempt-{number}.log"'
    return response


# --- streams -----------------------------------------------------------------------
# One stream per page, fragments rendered by tasks.renderers. Anonymous requests get a
# 401 from stream_response, never a redirect into the login page.


@login_not_required
@require_GET
async def task_list_stream(request: HttpRequest) -> HttpResponseBase:
    filters, _ = task_filters_parse(request.GET)
    return await stream_response(
        request,
        event_filter=EventFilter(types=renderers.LIST_EVENT_TYPES),
        renderer=renderers.task_list_renderer(filters),
    )


@login_not_required
@require_GET
async def task_stream(request: HttpRequest, pk: int) -> HttpResponseBase:
    user = await request.auser()
    if user.is_authenticated and not await Task.objects.filter(pk=pk).aexists():
        raise Http404("No such task.")
    return await stream_response(
        request,
        event_filter=EventFilter(task_id=pk),
        renderer=renderers.task_detail_renderer(pk),
    )
