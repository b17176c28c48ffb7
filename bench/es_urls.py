"""The real project's URLs plus django-eventstream's stream at /es/ (channel "events")."""

import django_eventstream
from django.urls import include, path

from config.urls import urlpatterns as project_urls

urlpatterns = [
    path("es/", include(django_eventstream.urls), {"channels": ["events"]}),
    *project_urls,
]
