"""A lean Django request path for the streams: what a burst of reconnects costs.

After a restart or a deploy, every open stream reconnects in the same second. On
Django's ASGI path each request gets a thread of its own (ThreadSensitiveContext), and
every middleware built on MiddlewareMixin (sessions, csrf, auth, messages, security...)
hops into that thread for its process_request and again for its process_response:
about fifteen thread hops, a new thread and, in it, a new database connection for the
session and user lookups; the request_started/finished signals hop there too. Measured
from outside with 1,000 streams opened at once: ~9 ms of CPU and ~230 KB of memory at
the burst's peak per stream.

A view marked `@lean_request` is served instead by `LeanHandler`: the same middleware,
in the same order (so: UrlLengthMiddleware first, sessions, the bearer token, login
required, every header), but the hooks known to do no I/O for a request that does not
need it run inline on the event loop, and everything that must run in a thread (the
session and user lookups, the stream's own checks) goes to two threads shared by every
lean request of the process, each with its own long-lived database connection. A hook
that might need I/O for this request (a session to save, messages to store, a view
that is not `login_not_required`) still goes to those threads.

EVENTS_LEAN_STREAMS=0 serves every request through Django's full path (bench baseline).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import Resolver404, resolve, set_script_prefix
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

LEAN_THREADS = 2
# Requests between their arrival and their response's start at once; the others wait
# their turn (CPU-bound either way). What each allocates in between (the request's
# parsing, its session and user, query results) then peaks at this many, not at a whole
# burst's: memory Python keeps once the burst is over.
OPENING_AT_ONCE = 32
_ATTRIBUTE = "lean_request"


def lean_request[V: Callable[..., Any]](view: V) -> V:
    """Serve this async view through the lean path (EVENTS_LEAN_STREAMS)."""
    if not iscoroutinefunction(view):
        raise TypeError(f"{view!r} must be an async view to take the lean path")
    setattr(view, _ATTRIBUTE, True)
    return view


# -- when a hook may run inline ---------------------------------------------------------

Request = Any  # HttpRequest with the attributes the middleware above it set


def _never(request: Request, *args: Any) -> bool:
    return False


def _session_saves(request: Request, response: Any) -> bool:
    session = getattr(request, "session", None)
    return bool(settings.SESSION_SAVE_EVERY_REQUEST or getattr(session, "modified", False))


def _messages_stored(request: Request, response: Any) -> bool:
    storage = getattr(request, "_messages", None)
    return storage is not None and bool(storage.used or storage.added_new)


def _login_checked(request: Request, view: Any, *args: Any) -> bool:
    return bool(getattr(view, "login_required", True))  # the check reads the user


class _Rule:
    """Which calls of a middleware's hooks must go to a thread (the rest run inline)."""

    def __init__(
        self,
        request: Callable[..., bool] = _never,
        response: Callable[..., bool] = _never,
        view: Callable[..., bool] = _never,
        when: Callable[[], bool] = lambda: True,
    ) -> None:
        self.request, self.response, self.view, self.when = request, response, view, when


# Each hook here was read (Django 6.0, django-htmx) for the I/O it can do: none but the
# ones the predicates send to a thread.
_RULES: dict[str, _Rule] = {
    "django.middleware.security.SecurityMiddleware": _Rule(),
    "django.middleware.csp.ContentSecurityPolicyMiddleware": _Rule(),
    "django.contrib.sessions.middleware.SessionMiddleware": _Rule(response=_session_saves),
    "django.middleware.common.CommonMiddleware": _Rule(),
    # With CSRF_USE_SESSIONS the token lives in the session: every hook may load it.
    "django.middleware.csrf.CsrfViewMiddleware": _Rule(when=lambda: not settings.CSRF_USE_SESSIONS),
    "django.contrib.auth.middleware.AuthenticationMiddleware": _Rule(),  # the user is lazy
    "django.contrib.auth.middleware.LoginRequiredMiddleware": _Rule(view=_login_checked),
    "django.contrib.messages.middleware.MessageMiddleware": _Rule(response=_messages_stored),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": _Rule(),
}


def _rule_for(instance: object) -> _Rule | None:
    cls = type(instance)
    rule = _RULES.get(f"{cls.__module__}.{cls.__qualname__}")
    return rule if rule is not None and rule.when() else None


def _inline(instance: MiddlewareMixin, rule: _Rule) -> None:
    """Make `instance` (async mode) call its own hooks inline, or in a thread where
    `rule` says this request needs one."""
    process_request = getattr(instance, "process_request", None)
    process_response = getattr(instance, "process_response", None)
    get_response = instance.get_response

    async def acall(request: HttpRequest) -> HttpResponseBase:
        response = None
        if process_request is not None:
            if rule.request(request):
                response = await sync_to_async(process_request)(request)
            else:
                response = process_request(request)
        response = response or await get_response(request)  # type: ignore[misc]
        if process_response is not None:
            if rule.response(request, response):
                response = await sync_to_async(process_response)(request, response)
            else:
                response = process_response(request, response)
        return response  # type: ignore[no-any-return]

    instance.__acall__ = acall  # type: ignore[method-assign]


def _inline_view(method: Callable[..., Any], rule: _Rule) -> Callable[..., Any]:
    threaded = sync_to_async(method)

    async def process_view(request: HttpRequest, view: Any, *args: Any) -> Any:
        if rule.view(request, view, *args):
            return await threaded(request, view, *args)
        return method(request, view, *args)

    return process_view


# -- the handler --------------------------------------------------------------------------


class _HealthyThreads(ThreadPoolExecutor):
    """Threads whose database connections outlive requests: one that failed and is no
    longer usable is closed before the next call (what request_started did per thread)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(_with_healthy_connections, fn, *args, **kwargs)


def _with_healthy_connections(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred and not connection.is_usable():
            connection.close()
    return fn(*args, **kwargs)


class _SharedThreads(ThreadSensitiveContext):
    """The thread-sensitive context of every lean request: two threads for the process.

    Set as the context variable, never entered: it never exits, so the tasks a request
    starts (the hub's, started by the first stream) may outlive the request. `_executor`
    also tells events.streams._release_request_thread that this pool is not its to shut.
    """

    def __init__(self) -> None:
        super().__init__()
        self._executor = _HealthyThreads(LEAN_THREADS, thread_name_prefix="lean-request")
        SyncToAsync.context_to_thread_executor[self] = self._executor


class LeanHandler(ASGIHandler):
    def __init__(self) -> None:
        self.threads = _SharedThreads()
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        """Django's chain (settings.MIDDLEWARE, async mode), with the known hooks inline."""
        assert is_async
        self._view_middleware: list[Callable[..., Any]] = []
        self._template_response_middleware: list[Callable[..., Any]] = []
        self._exception_middleware: list[Callable[..., Any]] = []
        handler = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]
        handler_is_async = True
        for path in reversed(settings.MIDDLEWARE):
            middleware = import_string(path)
            is_async_mode = getattr(middleware, "async_capable", False)
            try:
                adapted = self.adapt_method_mode(
                    is_async_mode, handler, handler_is_async, name=f"middleware {path}"
                )
                instance = middleware(adapted)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            handler = adapted
            rule = _rule_for(instance)
            if rule is not None and isinstance(instance, MiddlewareMixin):
                _inline(instance, rule)
            if hasattr(instance, "process_view"):
                view_hook = instance.process_view
                self._view_middleware.insert(
                    0,
                    _inline_view(view_hook, rule)
                    if rule is not None and not iscoroutinefunction(view_hook)
                    else self.adapt_method_mode(True, view_hook),
                )
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(True, instance.process_template_response)
                )
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(
                    self.adapt_method_mode(False, instance.process_exception)
                )
            handler = convert_exception_to_response(instance)
            handler_is_async = is_async_mode
        self._middleware_chain = self.adapt_method_mode(True, handler, handler_is_async)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        token = SyncToAsync.thread_sensitive_context.set(self.threads)
        try:
            await self.handle(scope, receive, send)
        finally:
            SyncToAsync.thread_sensitive_context.reset(token)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's ASGIHandler.handle without the request_started/finished signals: their
        receivers close the calling thread's database connections, here the shared
        threads' (a reconnect per request). The response's close runs off those threads."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with body_file:
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None:
                assert error_response is not None
                await self.send_response(error_response, send)
                return

            class RequestProcessed(Exception):
                pass

            response = None
            try:
                try:
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self.listen_for_disconnect(receive))
                        response = await self._opening(request)
                        request = None  # a stream lasts: its request is not needed any more
                        await self.send_response(response, send)
                        raise RequestProcessed
                except* (RequestProcessed, RequestAborted):
                    pass
            except BaseExceptionGroup as group:
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
            if response is not None:
                await sync_to_async(response.close, thread_sensitive=False)()

    async def _opening(self, request: HttpRequest) -> HttpResponseBase:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(OPENING_AT_ONCE)
        async with gate:
            response: HttpResponseBase = await self.run_get_response(request)
            return response


def _is_lean(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return bool(getattr(match.func, _ATTRIBUTE, False))


def lean_streams(app: App) -> App:
    """Route the requests of `@lean_request` views to a LeanHandler, the rest to `app`."""
    handler = LeanHandler()
    is_lean = functools.lru_cache(maxsize=4096)(_is_lean)

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and settings.EVENTS_LEAN_STREAMS
            and len(scope["path"]) <= 1024
            and is_lean(scope["path"])
        ):
            return await handler(scope, receive, send)
        return await app(scope, receive, send)

    return route
