"""Role checks. Roles are Django groups named after :class:`annotation.models.Role`; superusers are admins."""

from __future__ import annotations

from typing import Any

from annotation.models import Role


def user_roles(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_synpref_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(Role.ADMIN.value)
        user._synpref_roles = cached
    return cached


def remember_roles(user: Any, group_names: set[str]) -> None:
    """Keep role groups a caller already read (in the same query as other data) for this request."""
    if getattr(user, "_synpref_roles", None) is not None:
        return
    roles = set(group_names)
    if user.is_superuser:
        roles.add(Role.ADMIN.value)
    user._synpref_roles = roles


def is_admin(user: Any) -> bool:
    return Role.ADMIN.value in user_roles(user)


def is_lead(user: Any) -> bool:
    """Leads and admins can review."""
    return bool({Role.LEAD.value, Role.ADMIN.value} & user_roles(user))


def is_annotator(user: Any) -> bool:
    return Role.ANNOTATOR.value in user_roles(user)
