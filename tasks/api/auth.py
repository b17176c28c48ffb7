"""Who is calling: a bearer API token (on `/api/` and `/events/`) or the session.

The API's own classes (`TokenAuth`, `SessionAuth`) are django-ninja auth callables, so the
OpenAPI document declares both schemes. `/events/` is the transport's view and events
never imports tasks, so a middleware does its bearer auth: it sets `request.user` for that
path only and registers the re-check (`events.auth`) that closes an open stream within one
heartbeat of the token's revocation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.decorators import sync_and_async_middleware
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from events.auth import credential_recheck_set
from tasks.api.models import ApiToken
from tasks.api.tokens import token_authenticate, token_still_valid

BEARER_PATHS = ("/events/",)
INVALID_TOKEN = "invalid or revoked API token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def bearer_secret(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>`: a token made on /tokens/ or by create_token."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = token_authenticate(token)
        if found is None:
            # A bad token is a 401 of its own, not a silent fall back to the session.
            raise HttpError(401, INVALID_TOKEN)
        request.user = found.user
        return found.user


class SessionAuth(APIKeyCookie):
    """The dashboard's session; unsafe methods need the CSRF token (X-CSRFToken header).

    Unlike ninja's own SessionAuth, an anonymous request is a 401, never a CSRF 403."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        # csrf=True tells the docs page to send the token (X-CSRFToken) with its calls;
        # the check itself is below, once we know there is a logged-in user.
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise HttpError(
                403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken"
            )
        return user


def _unauthorized() -> HttpResponse:
    return HttpResponse(f"{INVALID_TOKEN}\n", status=401, content_type="text/plain; charset=utf-8")


def _recheck(token: ApiToken) -> Callable[[], Awaitable[bool]]:
    async def still_valid() -> bool:
        return bool(await sync_to_async(token_still_valid)(token.pk))

    return still_valid


def _accept(request: HttpRequest, token: ApiToken) -> None:
    user = token.user

    async def auser() -> Any:
        return user

    request.user = user
    request.auser = auser
    credential_recheck_set(request, _recheck(token))


def _wants_bearer(request: HttpRequest) -> str | None:
    if not request.path_info.startswith(BEARER_PATHS):
        return None
    return bearer_secret(request)


@sync_and_async_middleware
def bearer_token_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """Bearer tokens on /events/: the token's user, or 401 for a bad token."""
    if iscoroutinefunction(get_response):

        async def amiddleware(request: HttpRequest) -> HttpResponseBase:
            secret = _wants_bearer(request)
            if secret is not None:
                token = await sync_to_async(token_authenticate)(secret)
                if token is None:
                    return _unauthorized()
                _accept(request, token)
            response: HttpResponseBase = await get_response(request)
            return response

        return amiddleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        secret = _wants_bearer(request)
        if secret is not None:
            token = token_authenticate(secret)
            if token is None:
                return _unauthorized()
            _accept(request, token)
        response: HttpResponseBase = get_response(request)
        return response

    return middleware
