"""Settings for the test suite: config.settings with test-only defaults.

Two passes share this module (see the Makefile's `test`): the whole suite on the
embedded default (SQLite, in-memory layer), then with TEST_POSTGRES=1 the tests marked
`postgres` again on the PostgreSQL at TEST_DATABASE_URL.
"""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault("DEBUG", "0")
os.environ.pop("REDIS_URL", None)  # tests that need Redis configure it themselves

from config.env import env_bool, env_str
from config.settings import *  # noqa: F403
from config.settings import DATABASES, TASK_FUNCTIONS

# The test-only task functions (tests/tasks/engine.py) are listed like any deployment's
# own: a worker runs only what TASK_FUNCTIONS lists.
TEST_FUNCTIONS = [
    f"tests.tasks.engine.{name}"
    for name in (
        "stubborn",
        "add",
        "crash_outside_steps",
        "two_questions",
        "forgiving",
        "exits",
        "nan_result",
        "chatty",
    )
]
TASK_FUNCTIONS = [*TASK_FUNCTIONS, *TEST_FUNCTIONS]

# One test database per pytest process, in a file, so that servers and workers started
# by the tests as subprocesses open the same database, and two runs never collide.
TEST_DB_TAG = f"taskstream_{os.getpid()}"
TEST_POSTGRES = env_bool("TEST_POSTGRES", False)
TEST_DATABASE_URL = env_str("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")

if TEST_POSTGRES:
    import dj_database_url

    DATABASES = {"default": dict(dj_database_url.parse(TEST_DATABASE_URL, conn_max_age=0))}
    DATABASES["default"]["TEST"] = {"NAME": f"test_{TEST_DB_TAG}"}
else:
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"test_{TEST_DB_TAG}.sqlite3")
    }
