"""API keys configured on a row (a judge, a scoring server): one rule for where the key comes from."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ValidationError


def api_key_resolve(*, env: str, file: str, stored: str, what: str) -> str:
    """The key from the environment variable ``env``, else the file ``file``, else ``stored`` ("" for none).

    ``what`` names the key in messages ("the judge's key"). Raises ValidationError naming what is missing when a
    configured variable or file is not there.
    """
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ValidationError(f"environment variable {env} ({what}) is not set")
        return value.strip()
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ValidationError(f"cannot read {what} file {file}: {exc.strerror}") from exc
    return stored
