"""ASGI glue for streams: write backpressure under daphne.

Uvicorn's `send` waits while the client's socket buffer is full; daphne's does not: it
hands each chunk to Twisted, whose buffer then grows without bound for a client that
stopped reading. This wrapper registers a push producer on daphne's request, so Twisted
tells us when its buffer is full (pauseProducing) and drained (resumeProducing), and
makes `send` of a streamed body wait in between, like uvicorn does. A stalled stream
then stops pulling from its hub queue, overflows to the log, and memory stays bounded.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Drain:
    """A Twisted IPushProducer that mirrors the transport's state into an asyncio.Event."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    # Twisted's interface, hence the names.
    def pauseProducing(self) -> None:
        self.writable.clear()

    def resumeProducing(self) -> None:
        self.writable.set()

    def stopProducing(self) -> None:
        self.writable.set()  # the connection is closing: let the sender finish


def _daphne_request(send: Send) -> Any:
    """Daphne passes `functools.partial(server.handle_reply, request)` as `send`."""
    if isinstance(send, functools.partial) and send.args:
        request = send.args[0]
        if hasattr(request, "registerProducer") and hasattr(request, "channel"):
            return request
    return None


def daphne_backpressure(app: App) -> App:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        request = _daphne_request(send) if scope["type"] == "http" else None
        if request is None:
            return await app(scope, receive, send)
        drain: _Drain | None = None

        async def paced_send(message: Message) -> None:
            nonlocal drain
            if message["type"] == "http.response.body" and message.get("more_body"):
                if drain is None:
                    drain = _Drain()
                    try:
                        request.registerProducer(drain, True)
                    except (RuntimeError, ValueError):
                        drain = _Drain()  # someone else produces: no pacing
                await drain.writable.wait()
            await send(message)

        return await app(scope, receive, paced_send)

    return wrapped
