"""Settings for the test suite (pyproject.toml points pytest-django here).

The suite runs as the embedded local setup does: SYNPREF_DEV=1 (a generated key kept under
VAR_DIR, plain-HTTP cookies), DEBUG off. Set in the environment before config.settings is read,
so worker and server subprocesses that tests start inherit it.
"""

from __future__ import annotations

import os

os.environ.setdefault("SYNPREF_DEV", "1")

from config.settings import *  # noqa: E402, F403

# Per-process memory cache (the style guide's test setting); tests/conftest.py clears it per test so
# lockout and throttle counts never leak from one test into another.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
