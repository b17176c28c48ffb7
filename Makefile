# The README's two commands: `make run` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# `uv` from PATH when there is one, else the one pip puts into this Python.
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: deps run test lint browser-deps js-deps bench

deps:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet

# Created with mode 0600 at once (never readable by others, even for a moment); var/ 0700.
var/secret_key:
	@mkdir -p -m 700 var && chmod 700 var
	@python3 -c "import os, secrets; fd = os.open('$@', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); os.write(fd, (secrets.token_urlsafe(50) + chr(10)).encode()); os.close(fd)"

# Everything on the embedded default: SQLite, in-memory channel layer, one process that
# serves http://127.0.0.1:8000 and runs the worker.
run: deps var/secret_key
	@export SECRET_KEY=$$(cat var/secret_key); \
	$(UV) run python manage.py migrate --noinput -v 0 && \
	$(UV) run python manage.py first_login && \
	exec $(UV) run python manage.py serve --host 127.0.0.1 --port 8000

browser-deps:
	@test -x /usr/bin/chromium || { \
		[ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "WARNING: no /usr/bin/chromium: browser tests will skip"

# The npm `eventsource` client the stream tests drive (tests/js, from its lock file).
js-deps:
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/js --silent \
		|| echo "WARNING: npm ci failed: the eventsource client tests will skip"; \
	else echo "WARNING: no npm: the eventsource client tests will skip"; fi

# Every test: the static checks (ruff with RUF100, ruff format, mypy strict, the import
# contracts), the whole suite on the embedded default, then the PostgreSQL pass.
test: deps browser-deps js-deps
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports
	$(UV) run pytest
	TEST_POSTGRES=1 TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(UV) run pytest -m postgres

lint: deps
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run mypy \
		&& $(UV) run lint-imports

# Benchmarks (not part of `test`): see docs/benchmarks.md. BENCH_ARGS=--quick for a short run.
bench: deps
	$(UV) sync --group bench --quiet && $(UV) run --group bench python -m bench.run $(BENCH_ARGS)
