"""API tokens: made, checked, revoked. The secret is shown once and stored only hashed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from tasks.api.models import NAME_MAX_LENGTH, ApiToken

TOKEN_START = "tsk_"
PREFIX_LENGTH = len(TOKEN_START) + 8  # shown on the tokens page: "tsk_AbCd1234…"
TOKEN_MAX_LENGTH = 200  # anything longer is not one of ours: no hashing, no query
# "Last use" is written at most this often per token: a runner reporting many times a
# second must not turn every request into a database write.
LAST_USE_EVERY = timedelta(seconds=30)


class TokenInputError(ValueError):
    """A bad token name. One line."""


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole bearer token: shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_name_clean(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise TokenInputError("name must not be empty")
    if len(name) > NAME_MAX_LENGTH:
        raise TokenInputError(f"name is {len(name)} characters long; the most is {NAME_MAX_LENGTH}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise TokenInputError("name must be one line without control characters")
    return name


def token_create(*, user: Any, name: str) -> NewToken:
    """A new token acting as `user`; its secret is in the result and nowhere else."""
    name = token_name_clean(name)
    secret = TOKEN_START + secrets.token_urlsafe(32)  # 256 random bits
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:PREFIX_LENGTH], digest=_digest(secret)
    )
    return NewToken(token=token, secret=secret)


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token whose secret this is (its user active), or None. Notes the use."""
    secret = secret.strip()
    if not secret.startswith(TOKEN_START) or len(secret) > TOKEN_MAX_LENGTH or not secret.isascii():
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_still_valid(token_id: int) -> bool:
    """Not revoked and its user still active: what an open stream re-checks."""
    return ApiToken.objects.filter(
        pk=token_id, revoked_at__isnull=True, user__is_active=True
    ).exists()


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke `token` (idempotent): requests and open streams using it stop."""
    if token.revoked_at is None:
        now = timezone.now()
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
        token.revoked_at = now
    return token


def tokens_of(user: Any) -> QuerySet[ApiToken]:
    """The tokens a person sees on /tokens/: their own, newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
