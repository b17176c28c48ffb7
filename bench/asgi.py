"""The ASGI app the benchmarks serve: the real project, plus a few bench-only endpoints
under /__bench__/ that answer loopback clients only.

GET  /__bench__/stats    {"pid", "queries", "rss_kb"}: the server's own counters.
GET  /__bench__/last_event_id   {"id"}: the log's newest id (a query not counted).
POST /__bench__/produce  JSON {kind, rate, count, execution_ids?, prefix?}: runs the
     producer (bench.hooks.produce) in a thread of THIS process, so the in-memory
     channel layer sees its events; answers with their commit times when done.

DJANGO_SETTINGS_MODULE picks the project (bench.settings) or the project plus
django-eventstream (bench.es_settings).
"""

import asyncio
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from bench import hooks

hooks.raise_nofile_limit()

if os.environ.get("BENCH_GC_THRESHOLD"):  # an experiment: fewer cyclic-GC passes
    import gc

    gc.set_threshold(*(int(x) for x in os.environ["BENCH_GC_THRESHOLD"].split(",")))

from django.conf import settings  # noqa: E402

from config.asgi import application as project_application  # noqa: E402

hooks.install_query_counter()
if "django_eventstream" in settings.INSTALLED_APPS:
    hooks.install_eventstream_bridge()


async def _json(send, status: int, body: object) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def application(scope, receive, send):
    if scope["type"] != "http" or not scope["path"].startswith("/__bench__/"):
        return await project_application(scope, receive, send)
    if (scope.get("client") or ("",))[0] != "127.0.0.1":
        return await _json(send, 403, {"error": "loopback only"})
    path = scope["path"]
    if path == "/__bench__/stats":
        return await _json(
            send, 200, {"pid": os.getpid(), "queries": hooks.queries(), "rss_kb": hooks.rss_kb()}
        )
    if path == "/__bench__/last_event_id":
        return await _json(send, 200, {"id": await asyncio.to_thread(hooks.last_event_id)})
    if path == "/__bench__/produce" and scope["method"] == "POST":
        try:
            spec = json.loads(await _body(receive))
            result = await asyncio.to_thread(hooks.produce, **spec)
        except (ValueError, TypeError) as exc:
            return await _json(send, 400, {"error": str(exc)})
        return await _json(send, 200, result)
    return await _json(send, 404, {"error": f"no bench endpoint {path}"})
