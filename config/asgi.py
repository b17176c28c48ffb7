import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from events.asgi import daphne_backpressure
from events.lean import lean_streams

# Static files (our CSS, django-htmx's vendored htmx) are few and small; serving them
# here keeps daphne and uvicorn deployable with no web server in front.
# daphne_backpressure: a stalled SSE client must not grow daphne's write buffer.
# lean_streams: the streams' own request path (a burst of reconnects after a deploy).
application = daphne_backpressure(lean_streams(ASGIStaticFilesHandler(get_asgi_application())))
