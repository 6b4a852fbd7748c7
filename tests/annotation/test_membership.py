"""Projects and users with their memberships, each written by one service in one transaction
(the pages used to compose these in the view)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from annotation.roles import user_roles
from annotation.services import (
    annotation_submit,
    assignment_claim_next,
    project_create,
    project_update,
    user_create,
    user_update,
)
from tests.curation.helpers import label_input
from tests.factories import PairFactory


def member_names(project: Any) -> set[str]:
    return set(project.members.values_list("username", flat=True))


def test_project_create_with_members_sets_exactly_them(users: dict[str, Any]) -> None:
    listed = project_create(name="Listed", created_by=users["adam"], members=[users["alice"], users["lena"]])
    assert member_names(listed) == {"alice", "lena"}  # the creator only if listed
    plain = project_create(name="Plain", created_by=users["adam"])
    assert member_names(plain) == {"adam"}


def test_project_create_that_fails_validation_saves_nothing(users: dict[str, Any]) -> None:
    from annotation.models import Project

    with pytest.raises(ValidationError):
        project_create(name="  ", created_by=users["adam"], members=[users["alice"]])
    assert not Project.objects.exists()


def test_project_update_sets_fields_and_members_together(project: Any, users: dict[str, Any]) -> None:
    updated = project_update(project=project, name="Renamed", members=[users["bob"], users["lena"]])
    assert updated.name == "Renamed" and member_names(updated) == {"bob", "lena"}


def test_a_refused_project_update_leaves_the_members_alone(project: Any, users: dict[str, Any]) -> None:
    pair = PairFactory(project=project)
    for name in ("alice", "bob", "carol"):
        assignment = assignment_claim_next(project=project, annotator=users[name])
        assert assignment is not None and assignment.pair_id == pair.pk
        annotation_submit(assignment_id=assignment.pk, annotator=users[name], data=label_input("A_CLEARLY"))
    before = member_names(project)
    with pytest.raises(ValidationError):
        project_update(project=project, annotators_per_pair=2, members=[users["dave"]])
    project.refresh_from_db()
    assert project.annotators_per_pair == 3 and member_names(project) == before


def test_user_create_with_projects(users: dict[str, Any], project: Any) -> None:
    other = project_create(name="Other", created_by=users["adam"])
    eve = user_create(username="eve", password="pw-for-eve-1", roles=["annotator"], projects=[project, other])
    assert set(eve.projects.values_list("name", flat=True)) == {"Test project", "Other"}
    assert member_names(project) >= {"alice", "bob", "eve"}  # the others stay


def test_user_create_with_a_bad_role_creates_no_user(project: Any) -> None:
    with pytest.raises(ValidationError):
        user_create(username="eve", password="pw-for-eve-1", roles=["wizard"], projects=[project])
    assert not get_user_model().objects.filter(username="eve").exists()
    assert "eve" not in member_names(project)


def test_user_update_replaces_roles_and_projects(users: dict[str, Any], project: Any) -> None:
    other = project_create(name="Other", created_by=users["adam"], members=[users["carol"]])
    bob = users["bob"]
    user_update(user=bob, roles=["annotator", "lead"], projects=[other])
    bob = get_user_model().objects.get(pk=bob.pk)
    assert {"annotator", "lead"} <= set(user_roles(bob))
    assert list(bob.projects.values_list("name", flat=True)) == ["Other"]
    assert "bob" not in member_names(project) and member_names(other) == {"carol", "bob"}


def test_user_update_with_a_bad_role_changes_nothing(users: dict[str, Any], project: Any) -> None:
    bob = users["bob"]
    with pytest.raises(ValidationError):
        user_update(user=bob, roles=["wizard"], projects=[])
    bob = get_user_model().objects.get(pk=bob.pk)
    assert set(user_roles(bob)) & {"annotator", "lead", "admin"} == {"annotator"}
    assert "bob" in member_names(project)
