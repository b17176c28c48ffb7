from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

NAME_MAX_LENGTH = 100


class ApiToken(models.Model):
    """A bearer token for `/api/` and `/events/`, acting as its user.

    Only the SHA-256 of the secret is stored (the secret has 256 bits of entropy, so a fast
    hash is enough: nobody can guess their way through it); `prefix` is the visible start of
    the token, so a person can tell their tokens apart without the secret.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
