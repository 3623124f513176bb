"""API tokens: a user's named keys for scripts. Created, listed and revoked by their owner only.

The key is shown once; the database keeps its SHA-256, so a leaked database or backup holds no usable key."""

import hashlib
import secrets
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .audit import audit_record
from .models import ApiToken

# Updating last_used_at on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name.strip()[:100] or "API token", prefix=key[:8],
                                    key_sha256=_digest(key))
    audit_record(actor=user, action="token_created", target=token, detail=token.name)
    return token, key


def api_token_revoke(*, token: ApiToken, user) -> None:
    audit_record(actor=user, action="token_revoked", target=token, detail=token.name)
    token.delete()


def api_tokens_for(user) -> QuerySet[ApiToken]:
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user)


def api_token_user(key: str):
    """The active user a key belongs to, or None; notes when the token was last used."""
    token = ApiToken.objects.select_related("user").filter(key_sha256=_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
