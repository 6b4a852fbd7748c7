from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from annotation.roles import is_admin, is_annotator, is_lead


def roles(request: HttpRequest) -> dict[str, Any]:
    # A 400 raised before AuthenticationMiddleware (e.g. a disallowed Host) renders without request.user.
    user = getattr(request, "user", None)
    return {
        "SITE_NAME": settings.SITE_NAME,
        "user_is_admin": is_admin(user),
        "user_is_lead": is_lead(user),
        "user_is_annotator": is_annotator(user),
    }
