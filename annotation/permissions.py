"""DRF permission classes for the API, built on :mod:`annotation.roles`.

They check roles only. Whether a user may reach a given project or pair (membership, their own
assignment) is decided by the lookup helpers in ``annotation/apis.py``, which answer 404 so that a
non-member cannot learn that an object exists.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from annotation.roles import is_admin, is_annotator, is_lead


class IsAdminRole(BasePermission):
    """Admins (the "admin" group, or superusers)."""

    message = "Only admins may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and is_admin(request.user))


class IsLeadOrAdmin(BasePermission):
    """Leads and admins: reviewers who may see every label of a project they can reach."""

    message = "Only leads and admins may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and is_lead(request.user))


class IsAnnotator(BasePermission):
    """Users with the annotator role."""

    message = "Only annotators may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and is_annotator(request.user))
