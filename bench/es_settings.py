"""django-eventstream 5.3 beside the real project, for the side-by-side benchmark only.

Its app is installed HERE, never in config.settings. Its default configuration: no event
storage, so a listener whose queue (10 events) overflows loses events.
"""

from bench.settings import *  # noqa: F403
from bench.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_eventstream"]
ROOT_URLCONF = "bench.es_urls"
