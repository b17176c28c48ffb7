"""Deployment: HTTPS=1 makes `manage.py check --deploy` clean (and without it, it is
not); what it turns on; the secret key and first-login files are private (0600) from
the moment they exist, and var/ is 0700."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

STRONG_KEY = secrets.token_urlsafe(50)


def run(args: list[str], *, umask: int | None = None, cwd: Path = ROOT, **env: str):
    environ = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "HTTPS", "REDIS_URL"}}
    environ.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        args,
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def check_deploy(tmp_path: Path, **env: str):
    return run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECRET_KEY=STRONG_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        VAR_DIR=str(tmp_path / "var"),
        ALLOWED_HOSTS="tasks.example.com",
        **env,
    )


def test_check_deploy_is_clean_with_https_and_not_without(tmp_path) -> None:
    clean = check_deploy(tmp_path, HTTPS="1")
    assert clean.returncode == 0, clean.stderr
    assert "System check identified no issues" in clean.stdout
    plain = check_deploy(tmp_path)
    assert plain.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in plain.stderr


def test_what_https_turns_on(tmp_path) -> None:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    ]
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    env = {"SECRET_KEY": STRONG_KEY, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    on = json.loads(run([sys.executable, "-c", code], HTTPS="1", **env).stdout)
    assert on == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    }
    off = json.loads(run([sys.executable, "-c", code], **env).stdout)
    assert off["SECURE_SSL_REDIRECT"] is False and off["SECURE_PROXY_SSL_HEADER"] is None


@pytest.mark.django_db
def test_behind_a_tls_proxy_requests_are_secure_and_plain_http_is_redirected(
    client, settings
) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000
    plain = client.get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=31536000")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_login_file_is_0600_and_var_0700_even_with_umask_0(tmp_path) -> None:
    var = tmp_path / "var"
    env = {
        "SECRET_KEY": STRONG_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "VAR_DIR": str(var),
    }
    assert run([sys.executable, "manage.py", "migrate", "-v", "0"], **env).returncode == 0
    done = run([sys.executable, "manage.py", "first_login"], umask=0, **env)
    assert done.returncode == 0, done.stderr
    saved = var / "first-login.txt"
    assert saved.read_text().startswith("admin ")
    assert _mode(saved) == 0o600
    assert _mode(var) == 0o700


def test_an_old_first_login_file_is_replaced_not_reused_with_its_mode(tmp_path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    old = var / "first-login.txt"
    old.write_text("stale\n")
    old.chmod(0o644)
    env = {
        "SECRET_KEY": STRONG_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "VAR_DIR": str(var),
    }
    assert run([sys.executable, "manage.py", "migrate", "-v", "0"], **env).returncode == 0
    assert run([sys.executable, "manage.py", "first_login"], umask=0, **env).returncode == 0
    assert _mode(old) == 0o600 and old.read_text().startswith("admin ")


def test_makefile_secret_key_is_0600_and_var_0700_even_with_umask_0(tmp_path) -> None:
    done = run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "var/secret_key"], umask=0, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    key = tmp_path / "var" / "secret_key"
    assert len(key.read_text().strip()) >= 50
    assert _mode(key) == 0o600
    assert _mode(tmp_path / "var") == 0o700
