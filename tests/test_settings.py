"""Fail-closed settings: DEBUG off by default, no start without a real SECRET_KEY, strict booleans,
a clean `check --deploy` for the documented production values, our own error pages, quiet 403s."""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from config.settings import env_bool

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with a clean environment plus ``env`` (settings: config.settings)."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "PYTHONPATH"}}
    full = {**keep, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path / "var"), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


SHOW = "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG, s.SECRET_KEY)"


@pytest.mark.parametrize("value", ["ture", "maybe", "2", "enabled"])
def test_env_bool_rejects_a_value_that_is_not_a_boolean(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
    with pytest.raises(ImproperlyConfigured) as info:
        env_bool("SESSION_COOKIE_SECURE", True)
    assert "SESSION_COOKIE_SECURE" in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("ON", True), ("1", True), ("no", False), ("0", False)]
)
def test_env_bool_reads_booleans(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("SOME_FLAG", value)
    assert env_bool("SOME_FLAG", not expected) is expected


def test_a_typo_in_a_boolean_setting_refuses_to_start(tmp_path: Path) -> None:
    done = run_python(SHOW, tmp_path, SECRET_KEY=secrets.token_urlsafe(50), SESSION_COOKIE_SECURE="ture")
    assert done.returncode != 0
    assert "SESSION_COOKIE_SECURE must be a boolean" in done.stderr and "'ture'" in done.stderr


@pytest.mark.parametrize("key", [None, "", "change-me", "dev-only-insecure-key-change-me-in-production"])
def test_refuses_to_start_without_a_real_secret_key(tmp_path: Path, key: str | None) -> None:
    env = {} if key is None else {"SECRET_KEY": key}
    done = run_python(SHOW, tmp_path, **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "SECRET_KEY is not set" in done.stderr
    assert not (tmp_path / "var" / "secret_key").exists()


def test_debug_is_off_unless_set(tmp_path: Path) -> None:
    key = secrets.token_urlsafe(50)
    done = run_python(SHOW, tmp_path, SECRET_KEY=key)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", key]


def test_local_setup_keeps_one_generated_key_under_var(tmp_path: Path) -> None:
    first = run_python(SHOW, tmp_path, SYNPREF_DEV="1")
    second = run_python(SHOW, tmp_path, SYNPREF_DEV="1")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    debug, key = first.stdout.split()
    assert debug == "False" and len(key) >= 50
    assert second.stdout.split()[1] == key
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def production_env() -> dict[str, str]:
    """The non-empty settings of .env.example, which README "Production" tells an operator to copy."""
    text = (ROOT / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.M))
    return {k: v for k, v in values.items() if v}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path: Path) -> None:
    env = production_env()
    assert env["DEBUG"] == "false" and env["SECURE_SSL_REDIRECT"] == "true"
    env.update(SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="synpref.example.org")
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**keep, **env, "VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_warns_when_the_https_settings_are_off(tmp_path: Path) -> None:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**keep, "SECRET_KEY": secrets.token_urlsafe(50), "VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode != 0
    assert "security.W004" in done.stderr and "security.W008" in done.stderr


# --- error pages ---------------------------------------------------------------------------------


def _boom(request: Any) -> Any:
    raise RuntimeError("kaboom: internal detail")


urlpatterns = [path("boom/", _boom)]


@pytest.mark.urls("tests.test_settings")
def test_a_500_with_debug_off_shows_our_page_and_no_secrets(client: Any, settings: Any) -> None:
    settings.DEBUG = False
    settings.DATABASE_URL = "postgres://synpref:hunter2-db-password@db:5432/synpref"
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    for secret in ("hunter2-db-password", "kaboom", "Traceback", settings.SECRET_KEY, "DATABASE_URL"):
        assert secret not in body


@pytest.mark.django_db
def test_a_404_with_debug_off_shows_our_page(client: Any, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "There is nothing here" in response.content.decode()


def test_the_400_page_is_ours(rf: Any) -> None:
    from django.views.defaults import bad_request

    response = bad_request(rf.get("/"), exception=Exception("bad"))
    assert response.status_code == 400 and "Bad request" in response.content.decode()


def test_a_403_logs_one_warning_without_a_traceback(
    client: Any, users: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(users["alice"])  # an annotator on an admin page
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/users/")
    assert response.status_code == 403
    refused = [r for r in caplog.records if r.name == "django.request" and r.levelno == logging.WARNING]
    assert refused and all(r.exc_info is None and not r.exc_text for r in refused)


def test_the_403_filter_keeps_other_tracebacks() -> None:
    from django.core.exceptions import PermissionDenied

    from config.logfilters import NoTracebackForPermissionDenied

    def record_for(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", (), (type(exc), exc, None))

    refused, crashed = record_for(PermissionDenied("no")), record_for(RuntimeError("bug"))
    keep = NoTracebackForPermissionDenied()
    assert keep.filter(refused) and keep.filter(crashed)
    assert refused.exc_info is None and crashed.exc_info is not None
