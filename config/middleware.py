"""Requests no page needs, refused before anything else runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

# Longer URLs are refused (414). Every page's URL is far shorter; and a login (or admin
# login) redirect carries the URL as "next", which Django refuses past 16,384 characters
# with a DisallowedRedirect logged as an error with its traceback.
URL_MAX_LENGTH = 8192


def _too_long(request: HttpRequest) -> HttpResponse | None:
    length = len(request.path) + len(request.META.get("QUERY_STRING", ""))
    if length <= URL_MAX_LENGTH:
        return None
    reason = f"the URL is {length} characters long; the most is {URL_MAX_LENGTH}"
    if request.path.startswith("/api/"):  # the API's error shape (contract: {"detail"})
        return JsonResponse({"detail": reason}, status=414)
    return HttpResponse(f"{reason}\n", status=414, content_type="text/plain; charset=utf-8")


class UrlLengthMiddleware:
    # Both: a sync-only middleware would run every async view (the streams) through
    # async_to_sync in a thread, away from the server's event loop and its hub.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        refused = _too_long(request)
        return refused if refused is not None else self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        refused = _too_long(request)
        if refused is not None:
            return refused
        response: HttpResponseBase = await self.get_response(request)
        return response
