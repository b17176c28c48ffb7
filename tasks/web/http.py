"""The request type of the dashboard's views (django-htmx's documented pattern)."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's middleware, from a logged-in user: every page needs a
    login (LoginRequiredMiddleware); the streams, which answer 401 themselves, check."""

    htmx: HtmxDetails
    user: User
