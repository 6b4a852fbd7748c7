"""Logging filters (referenced from ``LOGGING`` in settings)."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied


class NoTracebackForPermissionDenied(logging.Filter):
    """Keep a refused request (``PermissionDenied``, answered 403) as one warning line, without its traceback.

    A 403 is the app working as intended; a traceback per refusal floods the log and hides real errors.
    Every other record passes unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if exc_info and isinstance(exc_info, tuple) and isinstance(exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
