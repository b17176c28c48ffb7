"""Settings, read from the environment (see README: "Settings").

The embedded default needs no variables at all: SQLite in WAL mode and the in-memory
channel layer, one process. DATABASE_URL and REDIS_URL move it to PostgreSQL and
channels-redis for many processes and hosts.
"""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config.env import env_bool, env_float, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and (VAR_DIR / "secret_key").is_file():
    # The key `make run` generated for this checkout, so that commands typed in another
    # terminal (create_task, answer...) need no environment either.
    SECRET_KEY = (VAR_DIR / "secret_key").read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",  # first, so that runserver serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "ninja",  # its Swagger UI assets, served from our own static files (no CDN)
    "events",
    "tasks",
    "tasks.api",
]

MIDDLEWARE = [
    "config.middleware.UrlLengthMiddleware",  # 414 past 8,192 characters (see there)
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # `Authorization: Bearer <API token>` on /events/ (the API checks its own).
    "tasks.api.auth.bearer_token_middleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "config.templates.Templates",  # Django's, always encodable (see there)
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tasks.web.chrome.header",
            ],
            # The dashboard's tags live with its views (tasks/web/), not in an app's
            # templatetags package.
            "libraries": {"dashboard": "tasks.web.templatetags"},
        },
    },
]


def _database(url: str) -> dict[str, Any]:
    scheme = urlsplit(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with sqlite:// or postgres://, got {scheme or url!r}"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=0)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(_SQLITE_OPTIONS)
    return dict(config)


# WAL lets the stream's replay reads run beside the worker's writes; IMMEDIATE
# transactions take the write lock up front instead of failing half-way with "locked".
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": _database(DATABASE_URL)}
else:
    # 0700: the database, the secret key and the first login live here.
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": dict(_SQLITE_OPTIONS),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def redis_channel_layer(url: str, *, prefix: str = "asgi") -> dict[str, Any]:
    """The channels-redis layer for `url` (also what the tests switch to)."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 fails with "Too many connections" under load without a cap.
            # socket_timeout above channels-redis's 5 s BZPOPMIN: redis-py 8's default
            # (5 s) makes every idle receive fail with "Timeout reading".
            "hosts": [{"address": url, "max_connections": 100, "socket_timeout": 15}],
            "capacity": 10_000,
            "expiry": 60,
            "prefix": prefix,
        },
    }


REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    if urlsplit(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"REDIS_URL must start with redis://, got {REDIS_URL!r}")
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(REDIS_URL, prefix=env_str("CHANNEL_LAYER_PREFIX", "asgi"))
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "events.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000, "expiry": 60},
        }
    }

# Task functions offered by the dashboard's create form; staff-only ones also need staff.
TASK_FUNCTIONS = env_list("TASK_FUNCTIONS", ["tasks.examples.pipeline", "tasks.examples.shell"])
TASK_FUNCTIONS_STAFF_ONLY = env_list("TASK_FUNCTIONS_STAFF_ONLY", ["tasks.examples.shell"])

# Bounds on what people and task functions may store; past each, a one-line refusal (a
# form error, a command's error, a 400), or for what a running function writes: a prompt
# over the bound fails the execution, a log line is cut, lines past the per-execution
# bound are dropped and counted in one line when the execution ends.
TASK_KWARGS_MAX_BYTES = env_int("TASK_KWARGS_MAX_BYTES", 65_536, minimum=2)
TASK_TITLE_MAX_LENGTH = env_int("TASK_TITLE_MAX_LENGTH", 200, minimum=1, maximum=200)
TASK_DESCRIPTION_MAX_LENGTH = env_int("TASK_DESCRIPTION_MAX_LENGTH", 10_000, minimum=0)
TASK_ANSWER_MAX_LENGTH = env_int("TASK_ANSWER_MAX_LENGTH", 10_000, minimum=1)
TASK_PROMPT_MAX_LENGTH = env_int("TASK_PROMPT_MAX_LENGTH", 2_000, minimum=1)
TASK_LOG_LINE_MAX_LENGTH = env_int("TASK_LOG_LINE_MAX_LENGTH", 10_000, minimum=80)
TASK_LOG_LINES_MAX = env_int("TASK_LOG_LINES_MAX", 10_000, minimum=1)

TASKS = {
    "default": {
        "BACKEND": "tasks.engine.backend.DatabaseBackend",
    }
}

# Workers (`manage.py worker` and the one inside `manage.py serve`)
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 4, minimum=1)
# A running execution's lease; a worker renews it every third of this. Expired: worker lost.
WORKER_LEASE_SECONDS = env_float("WORKER_LEASE_SECONDS", 30.0, minimum=0.5)
WORKER_POLL_SECONDS = env_float("WORKER_POLL_SECONDS", 0.5, minimum=0.01)
# A running execution asked to cancel is cancelled by force after this long.
WORKER_CANCEL_GRACE_SECONDS = env_float("WORKER_CANCEL_GRACE_SECONDS", 10.0, minimum=0.0)
# On SIGTERM a worker lets its executions finish for this long, then releases them.
WORKER_SHUTDOWN_SECONDS = env_float("WORKER_SHUTDOWN_SECONDS", 10.0, minimum=0.0)

# Streams (contract names)
EVENTS_HEARTBEAT_SECONDS = env_float("EVENTS_HEARTBEAT_SECONDS", 15.0, minimum=0.05)
EVENTS_STREAM_MAX_SECONDS = env_float("EVENTS_STREAM_MAX_SECONDS", 300.0, minimum=0.1)
EVENTS_SUBSCRIBER_BUFFER = env_int("EVENTS_SUBSCRIBER_BUFFER", 256, minimum=1)
# The hub wakes a subscriber at most once per this interval while events keep coming, so a
# busy stream writes several events in one send; an event after a quiet spell wakes at once.
EVENTS_WAKE_INTERVAL_SECONDS = env_float("EVENTS_WAKE_INTERVAL_SECONDS", 0.005, minimum=0.0)
EVENTS_REPLAY_LIMIT = env_int("EVENTS_REPLAY_LIMIT", 10_000, minimum=1)
EVENTS_RETENTION_DAYS = env_int("EVENTS_RETENTION_DAYS", 7, minimum=1)
# Open streams per user across every process (Redis when REDIS_URL is set); each holds a
# lease its process renews every third of EVENTS_STREAM_LEASE_SECONDS, so the slots of a
# process that died free themselves.
EVENTS_MAX_STREAMS_PER_USER = env_int("EVENTS_MAX_STREAMS_PER_USER", 20, minimum=1)
EVENTS_STREAM_LEASE_SECONDS = env_float("EVENTS_STREAM_LEASE_SECONDS", 60.0, minimum=1.0)
# The safety tick bounds how late an event whose channel-layer message was lost can be
# (2 s: well under a person's patience) for one indexed max-id query per process per tick
# (0.5 queries/s, nothing next to polling), and only while the process has a stream open.
EVENTS_SAFETY_TICK_SECONDS = env_float("EVENTS_SAFETY_TICK_SECONDS", 2.0, minimum=0.05)
EVENTS_GAP_WAIT_SECONDS = env_float("EVENTS_GAP_WAIT_SECONDS", 2.0, minimum=0.0)
# Streams take a lean request path (events.lean): no thread per request, two shared
# threads for their session and user lookups. 0: Django's full path (the bench baseline).
EVENTS_LEAN_STREAMS = env_bool("EVENTS_LEAN_STREAMS", True)
# Recent events each process keeps in memory (events.recent): a stream resuming from an
# id among them catches up without reading the log. 0: always from the log.
EVENTS_MEMORY_CATCH_UP = env_int("EVENTS_MEMORY_CATCH_UP", 2048, minimum=0)
METRICS_TOKEN = env_str("METRICS_TOKEN")

# The JSON API (/api/): requests per user (session or token) per server process.
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "1200/min")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Object permissions (tasks.access: "tasks.cancel_task" with a task...) through django-rules.
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# HTTPS=1: served over TLS (directly, or behind a proxy that terminates it and sets
# X-Forwarded-Proto): cookies only over HTTPS, HSTS, plain HTTP redirected, and the
# proxy's header trusted for "is this request secure". `manage.py check --deploy` is
# clean with it. Only set it behind a proxy that overwrites X-Forwarded-Proto.
HTTPS = env_bool("HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
