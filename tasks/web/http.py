"""The request type of the dashboard's views (django-htmx's documented pattern)."""

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's middleware, from a logged-in user: every page needs a
    login (LoginRequiredMiddleware); the streams, which answer 401 themselves, check."""

    htmx: HtmxDetails
    user: User


def regions_response(html: str, seen: int) -> HttpResponse:
    """An htmx action's answer: page regions (out-of-band) rendered once the log had
    reached event `seen`. live.js swaps a region only if it shows nothing newer already
    (the page's stream may have brought a later state first)."""
    response = HttpResponse(html)
    response["X-Events-Seen"] = str(seen)
    return response
