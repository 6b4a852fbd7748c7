"""API tokens that expire and can be revoked (DRF's ``Token``, one per user).

Kept apart from :mod:`annotation.auth` because DRF imports the authentication class while its own
views module is still loading: this module must not import ``rest_framework.views``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

if TYPE_CHECKING:
    from rest_framework.authtoken.models import Token


def token_expires_at(token: Token) -> datetime | None:
    """When ``token`` stops working (None: tokens do not expire, ``TOKEN_TTL_HOURS=0``)."""
    hours = int(settings.TOKEN_TTL_HOURS)
    return token.created + timedelta(hours=hours) if hours > 0 else None


def token_is_expired(token: Token) -> bool:
    expires = token_expires_at(token)
    return expires is not None and expires <= timezone.now()


def token_issue(*, user: Any) -> Token:
    """The user's live API token, created if they have none or theirs has expired (then it is replaced)."""
    from rest_framework.authtoken.models import Token

    with transaction.atomic():
        token = Token.objects.select_for_update().filter(user=user).first()
        if token is not None and token_is_expired(token):
            token.delete()
            token = None
        if token is None:
            token = Token.objects.create(user=user)
    return token


def token_revoke(*, user: Any) -> bool:
    """Delete ``user``'s API token; True if there was one. Requests with it get 401 from then on."""
    from rest_framework.authtoken.models import Token

    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF token authentication that refuses (and deletes) a token older than ``TOKEN_TTL_HOURS``."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed("Token has expired; get a new one from POST /api/auth/token/.")
        return user, token
