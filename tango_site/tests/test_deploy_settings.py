"""Team mode's start-up rules and the production settings .env.example documents (issue 8, defect 2)."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from django.views.debug import SafeExceptionReporterFilter

from tango_site.security import SettingsFilter

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = secrets.token_urlsafe(50)


# Each case: the environment, and what the settings do with it: (DEBUG, TEAM_MODE) or the start of the refusal.
PG = "postgres://tango:hunter2@db:5432/tango"
CASES = [
    ({}, [True, False]),  # embedded: starts with nothing set
    ({"DATABASE_URL": PG, "SECRET_KEY": GOOD_KEY}, [False, True]),
    ({"REDIS_URL": "redis://redis:6379/0", "SECRET_KEY": GOOD_KEY}, [False, True]),
    ({"DATABASE_URL": PG}, "SECRET_KEY must be set"),
    ({"DATABASE_URL": PG, "SECRET_KEY": ""}, "SECRET_KEY must be set"),
    ({"DATABASE_URL": PG, "SECRET_KEY": "change-me-to-a-long-random-string"}, "SECRET_KEY is the example's"),
    ({"REDIS_URL": "redis://r", "SECRET_KEY": "embedded-mode-only-not-secret"}, "SECRET_KEY is the example's"),
    ({"DATABASE_URL": PG, "SECRET_KEY": "short-key"}, "SECRET_KEY is too short"),
    ({"DATABASE_URL": PG, "SECRET_KEY": "a" * 60}, "SECRET_KEY is too short or too simple"),
    ({"DEBUG": "0"}, "SECRET_KEY must be set"),
]
CHILD = """
import importlib, json, os, sys
from django.core.exceptions import ImproperlyConfigured
base = dict(os.environ)
for env in json.loads(sys.argv[1]):
    os.environ.clear(); os.environ.update(base, **env)
    try:
        import tango_site.settings as s
        s = importlib.reload(s)
        print(json.dumps([s.DEBUG, s.TEAM_MODE]))
    except ImproperlyConfigured as exc:
        print(json.dumps(str(exc)))
"""


def test_team_mode_starts_only_with_a_real_secret_key_and_debug_off(tmp_path):
    # Regression: with DATABASE_URL set and nothing else, the portal ran in DEBUG with the public default key.
    env = {"PATH": os.environ["PATH"], "TANGO_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps([case for case, _ in CASES])], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outcomes) == len(CASES), result.stderr
    for (case, expected), got in zip(CASES, outcomes, strict=True):
        if isinstance(expected, list):
            assert got == expected, case
        else:
            assert isinstance(got, str) and got.startswith(expected) and "token_urlsafe" in got, (case, got)


def documented_production_env() -> dict:
    """The settings .env.example sets, plus those of its 'Behind an HTTPS proxy' block uncommented."""
    env, production = {}, False
    for line in (ROOT / ".env.example").read_text().splitlines():
        production = production or line.startswith("# --- Behind an HTTPS proxy")
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(\S*)", line)
        if match and (not match.group(1) or production):
            env[match.group(2)] = match.group(3)
    return env


def test_check_deploy_is_clean_for_the_documented_production_settings(tmp_path):
    env = documented_production_env()
    assert env["TANGO_HTTPS"] == "1" and env["DEBUG"] == "0"
    env.update(SECRET_KEY=GOOD_KEY, DATABASE_URL="postgres://tango:tango@127.0.0.1:1/tango",
               PATH=os.environ["PATH"], TANGO_DATA_DIR=str(tmp_path))
    command = ["manage.py", "check", "--deploy", "--tag", "security", "--fail-level", "WARNING"]
    result = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_error_page_hides_urls_that_carry_passwords(settings):
    # Regression: DEBUG's 500 page listed DATABASE_URL with its password, which Django's own filter lets through.
    settings.DATABASE_URL = "postgres://tango:hunter2@db:5432/tango"
    settings.REDIS_URL = "redis://:hunter2@redis:6379/0"
    assert "hunter2" in str(SafeExceptionReporterFilter().get_safe_settings()["DATABASE_URL"])
    shown = SettingsFilter().get_safe_settings()
    assert "hunter2" not in str(shown["DATABASE_URL"]) + str(shown["REDIS_URL"]) + str(shown["CELERY_BROKER_URL"])
    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "tango_site.security.SettingsFilter"


def test_files_the_portal_writes_are_private_to_its_account(settings, tmp_path):
    # Regression (defect 6): uploads, checkpoints and the SQLite file were world-readable (umask 022).
    current = os.umask(0o077)
    os.umask(current)
    assert current == 0o077
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"x")
    assert path.stat().st_mode & 0o077 == 0
