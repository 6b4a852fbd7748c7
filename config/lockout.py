"""Log-in lockout: count failed log-ins per (username, client address) and per client address.

A counter lives in the default cache for a fixed window that starts at the first failure. While a
counter is at its limit every log-in attempt it covers is refused, the right password included, so
guessing stops paying. A successful log-in clears that username's counter for that address.

The cache must be shared by every web process (gunicorn workers): the default is a file cache under
VAR_DIR, production sets CACHE_URL=redis://... (see docs/security.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle


def client_ip(request: Any) -> str:
    """The client address as DRF's throttles see it (REMOTE_ADDR, or X-Forwarded-For past NUM_PROXIES)."""
    return str(BaseThrottle().get_ident(request))


def _keys(username: str, ip: str) -> tuple[str, str]:
    user_digest = hashlib.sha256(f"{username.strip().lower()}\0{ip}".encode()).hexdigest()[:40]
    ip_digest = hashlib.sha256(ip.encode()).hexdigest()[:40]
    return f"lockout:user:{user_digest}", f"lockout:ip:{ip_digest}"


def login_locked(username: str, ip: str) -> bool:
    """Whether log-ins for ``username`` from ``ip`` (or any log-in from ``ip``) are refused right now."""
    user_key, ip_key = _keys(username, ip)
    counts = cache.get_many([user_key, ip_key])
    return int(counts.get(user_key, 0)) >= int(settings.LOGIN_FAILURE_LIMIT) or int(counts.get(ip_key, 0)) >= int(
        settings.LOGIN_IP_FAILURE_LIMIT
    )


def _bump(key: str) -> None:
    window = int(settings.LOGIN_LOCKOUT_SECONDS)
    cache.add(key, 0, timeout=window)  # starts the window; a no-op while one is running
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)


def login_failed(username: str, ip: str) -> None:
    """Count one failed log-in for ``username`` from ``ip``."""
    user_key, ip_key = _keys(username, ip)
    _bump(user_key)
    _bump(ip_key)


def login_succeeded(username: str, ip: str) -> None:
    """Clear ``username``'s failures from ``ip`` (the per-address count keeps running)."""
    cache.delete(_keys(username, ip)[0])


def lockout_message() -> str:
    minutes = max(1, int(settings.LOGIN_LOCKOUT_SECONDS) // 60)
    return f"Too many failed log-ins from your address. Try again in {minutes} minutes."
