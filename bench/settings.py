"""Bench server settings: the real project's settings, unchanged but for quieter logs.

Queries are counted by `bench.hooks` (a process-wide execute_wrapper), not here.
"""

from config.settings import *  # noqa: F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
