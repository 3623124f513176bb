"""Typed readers for environment settings: a bad value stops start-up with a message naming the variable."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# Known to anyone who reads this repository: fine on one's own machine, refused wherever others can connect.
EMBEDDED_SECRET_KEY = "embedded-mode-only-not-secret"
PLACEHOLDER_SECRET_KEYS = {EMBEDDED_SECRET_KEY, "change-me-to-a-long-random-string"}
MIN_SECRET_KEY_LENGTH = 32


def env_secret_key(name: str, *, required: bool, embedded_default: str) -> str:
    """The signing key; where `required`, a missing, example or short key stops start-up."""
    value = os.environ.get(name, "").strip()
    if not required:
        return value or embedded_default
    how = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in team mode (DATABASE_URL or REDIS_URL set) or with DEBUG "
                                   f"off; {how}")
    if value in PLACEHOLDER_SECRET_KEYS:
        raise ImproperlyConfigured(f"{name} is the example's placeholder, which anyone can read; {how}")
    if len(value) < MIN_SECRET_KEY_LENGTH or len(set(value)) < 5:
        raise ImproperlyConfigured(f"{name} is too short or too simple (at least {MIN_SECRET_KEY_LENGTH} varied "
                                   f"characters); {how}")
    return value
