"""Who may open the lead pages: a login, a project the user can see, and the lead or admin role.

A project the user cannot see is 404 (so its existence does not leak); within it, only leads and
admins may look (annotators get 403). Every lead page of curation (and of its sub-apps, judges and
stage 2) wraps its view in :func:`lead_view`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseBase
from django_htmx.middleware import HtmxDetails

from annotation.models import Project
from annotation.roles import is_lead
from annotation.selectors import project_get_for_user

View = Callable[..., HttpResponseBase]


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware."""

    htmx: HtmxDetails


def project_get_for_lead(user: Any, project_id: int) -> Project:
    """The project for a lead or admin who can see it; 404 for non-members, 403 for annotators."""
    project = project_get_for_user(user, project_id)
    if project is None:
        raise Http404("No such project.")
    if not is_lead(user):
        raise PermissionDenied("Only leads and admins can review.")
    return project


def lead_view(view: View) -> View:
    """Login required; resolves ``project_id`` to a Project the user may review."""

    @functools.wraps(view)
    def wrapper(request: HtmxHttpRequest, project_id: int, *args: Any, **kwargs: Any) -> HttpResponseBase:
        project = project_get_for_lead(request.user, project_id)
        return view(request, project, *args, **kwargs)

    return login_required(wrapper)
