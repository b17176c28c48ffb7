"""Thin views: the JSON event stream and the Prometheus metrics."""

import hmac

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from events import audience
from events.filters import EventFilter, FilterError
from events.lean import lean_request
from events.streams import stream_response


def _text(status: int, reason: str) -> HttpResponse:
    return HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")


@lean_request
@login_not_required  # streams answer 401 themselves: never a redirect to an HTML page
@require_GET
async def event_stream(request: HttpRequest) -> HttpResponseBase:
    """GET /events/: the JSON event stream (see README, "Streams")."""
    user = await request.auser()
    if not user.is_authenticated:
        return _text(401, "authentication required: log in first")
    try:
        event_filter = EventFilter.from_params(request.GET)
    except FilterError as exc:
        return _text(400, str(exc))
    task_id, execution_id = event_filter.task_id, event_filter.execution_id
    if (task_id is not None or execution_id is not None) and not await sync_to_async(
        audience.topic_visible
    )(user, task_id, execution_id):
        # An invisible task is absent, exactly like one that does not exist.
        return _text(404, "no such task or execution")
    grant = await sync_to_async(audience.grant_for)(user)
    return await stream_response(request, event_filter=event_filter, grant=grant)


def _bearer_ok(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


@login_not_required
@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus text; a staff session or `Authorization: Bearer`."""
    if not _bearer_ok(request):
        user = await request.auser()
        if not user.is_authenticated:
            return _text(401, "authentication required: a staff session or a bearer token")
        if not user.is_staff:
            return _text(403, "metrics are for staff only")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
