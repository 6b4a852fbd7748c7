"""Fail closed on the API and the log-in page: nested JSON, lockout, throttles, expiring and revocable
tokens, blindness per pair for users with two roles, and resubmitting an old claim."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from annotation.auth import LoginRateThrottle
from annotation.models import Assignment, Pair, Role
from annotation.selectors import pair_labels_visible_to
from annotation.services import (
    AnnotationInput,
    annotation_submit,
    assignment_claim_next,
    assignment_release,
    user_create,
)
from annotation.tools.selectors import pair_get_for_evidence
from config.parsers import MAX_JSON_DEPTH
from tests.conftest import PASSWORD
from tests.factories import PairFactory

TOKEN_URL = "/api/auth/token/"


def token_client(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# --- nested JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100, 100_000])
def test_deeply_nested_json_to_the_anonymous_token_endpoint_is_a_400(db: Any, depth: int) -> None:
    body = '{"username": ' + "[" * depth + "]" * depth + "}"
    response = APIClient().post(TOKEN_URL, body, content_type="application/json")
    assert response.status_code == 400
    assert f"nested more than {MAX_JSON_DEPTH} levels" in response.json()["detail"]


def test_deeply_nested_json_to_an_authenticated_endpoint_is_a_400(users: dict[str, Any]) -> None:
    body = '{"name": "p", "taxonomy": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = token_client(users["adam"]).post("/api/projects/", body, content_type="application/json")
    assert response.status_code == 400 and "nested more than" in response.json()["detail"]


def test_json_within_the_depth_limit_still_parses(users: dict[str, Any]) -> None:
    response = token_client(users["adam"]).post(
        "/api/projects/", {"name": "Nested ok", "taxonomy": ["a", "b"]}, format="json"
    )
    assert response.status_code == 201, response.content


# --- log-in lockout ------------------------------------------------------------------------------


def form_login(client: Client, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_login_form_locks_out_after_failures_even_for_the_right_password(users: dict[str, Any], settings: Any) -> None:
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert form_login(client, "alice", "wrong").status_code == 200
    refused = form_login(client, "alice", PASSWORD)
    assert "Too many failed log-ins" in refused.content.decode()
    assert SESSION_KEY not in client.session
    # Another address is not locked out for alice; the lockout is per username and address.
    other = Client()
    assert form_login(other, "alice", PASSWORD, ip="10.0.0.2").status_code == 302
    assert SESSION_KEY in other.session


def test_a_successful_login_clears_the_failures(users: dict[str, Any], settings: Any) -> None:
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        form_login(client, "bob", "wrong")
    assert form_login(client, "bob", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        form_login(client, "bob", "wrong")
    assert form_login(client, "bob", PASSWORD).status_code == 302


def test_one_address_trying_many_usernames_is_locked_out(users: dict[str, Any], settings: Any) -> None:
    settings.LOGIN_IP_FAILURE_LIMIT = 4
    client = Client()
    for name in ("nobody1", "nobody2", "nobody3", "nobody4"):
        form_login(client, name, "guess")
    assert "Too many failed log-ins" in form_login(client, "carol", PASSWORD).content.decode()
    assert SESSION_KEY not in client.session


def test_the_lockout_ends_after_its_window(users: dict[str, Any], settings: Any) -> None:
    from django.core.cache import cache

    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        form_login(client, "carol", "wrong")
    assert "Too many failed" in form_login(client, "carol", PASSWORD).content.decode()
    cache.clear()  # what the window's expiry does
    assert form_login(client, "carol", PASSWORD).status_code == 302


def test_token_endpoint_locks_out_after_failures(users: dict[str, Any], settings: Any) -> None:
    client = APIClient(REMOTE_ADDR="10.0.0.9")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = client.post(TOKEN_URL, {"username": "alice", "password": "wrong"}, format="json")
        assert response.status_code == 400
    locked = client.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert locked.status_code == 429
    assert "Too many failed log-ins" in locked.json()["detail"] and int(locked["Retry-After"]) > 0
    assert not Token.objects.filter(user=users["alice"]).exists()


def test_form_and_token_endpoint_share_the_lockout(users: dict[str, Any], settings: Any) -> None:
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        form_login(Client(), "dave", "wrong", ip="10.0.0.5")
    client = APIClient(REMOTE_ADDR="10.0.0.5")
    assert client.post(TOKEN_URL, {"username": "dave", "password": PASSWORD}, format="json").status_code == 429


def test_token_endpoint_is_rate_limited_per_address(
    users: dict[str, Any], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "3/minute"})
    settings.LOGIN_FAILURE_LIMIT = 100
    client = APIClient(REMOTE_ADDR="10.0.0.7")
    codes = [client.post(TOKEN_URL, {"username": "bob", "password": "x"}, format="json").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]


def test_api_is_throttled_per_user(users: dict[str, Any], project: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "3/minute"})
    alice, bob = token_client(users["alice"]), token_client(users["bob"])
    codes = [alice.get("/api/projects/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert bob.get("/api/projects/").status_code == 200  # counted per user


# --- tokens --------------------------------------------------------------------------------------


def test_token_endpoint_issues_a_token_with_its_expiry(users: dict[str, Any], settings: Any) -> None:
    settings.TOKEN_TTL_HOURS = 2
    response = APIClient().post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = Token.objects.get(user=users["alice"])
    assert response.json()["token"] == token.key
    assert response.json()["expires_at"] is not None


def test_an_expired_token_is_refused_and_replaced_on_next_login(users: dict[str, Any], settings: Any) -> None:
    settings.TOKEN_TTL_HOURS = 1
    client = token_client(users["alice"])
    assert client.get("/api/projects/").status_code == 200
    old = Token.objects.get(user=users["alice"])
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(hours=2))
    response = client.get("/api/projects/")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    assert not Token.objects.filter(pk=old.pk).exists()
    fresh = APIClient().post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json").json()["token"]
    assert fresh != old.key


def test_an_admin_revokes_a_users_token(users: dict[str, Any]) -> None:
    alice = token_client(users["alice"])
    url = f"/api/users/{users['alice'].pk}/token/"
    assert token_client(users["lena"]).delete(url).status_code == 403  # leads may not
    assert alice.get("/api/projects/").status_code == 200
    assert token_client(users["adam"]).delete(url).status_code == 204
    assert alice.get("/api/projects/").status_code == 401
    assert token_client(users["adam"]).delete("/api/users/999999/token/").status_code == 404


def test_a_user_revokes_their_own_token(users: dict[str, Any]) -> None:
    bob = token_client(users["bob"])
    assert bob.delete(TOKEN_URL).status_code == 204
    assert bob.get("/api/projects/").status_code == 401


def test_admin_revokes_a_token_from_the_users_page(users: dict[str, Any]) -> None:
    Token.objects.create(user=users["carol"])
    page = Client()
    page.force_login(users["adam"])
    response = page.post(f"/users/{users['carol'].pk}/revoke-token/")
    assert response.status_code == 302
    assert not Token.objects.filter(user=users["carol"]).exists()
    annotator = Client()
    annotator.force_login(users["alice"])
    Token.objects.create(user=users["bob"])
    assert annotator.post(f"/users/{users['bob'].pk}/revoke-token/").status_code == 403
    assert Token.objects.filter(user=users["bob"]).exists()


# --- blindness per pair --------------------------------------------------------------------------


def label_input() -> AnnotationInput:
    return AnnotationInput(
        preference="A_CLEARLY",
        task_category="advice",
        objectivity="opinion",
        controversiality="low",
        desired_attributes=["helpfulness"],
        guideline="",
        rationale="Better.",
        time_spent_ms=1000,
    )


def claim_and_label(project: Any, user: Any) -> Assignment:
    assignment = assignment_claim_next(project=project, annotator=user)
    assert assignment is not None
    annotation_submit(assignment_id=assignment.pk, annotator=user, data=label_input())
    return assignment


@pytest.fixture
def dual(project: Any) -> Any:
    """Lara: annotator and lead, member of the project."""
    user = user_create(username="lara", password=PASSWORD, roles=[Role.ANNOTATOR.value, Role.LEAD.value])
    project.members.add(user)
    return user


def test_dual_role_user_holding_a_claim_sees_no_other_labels(project: Any, users: dict[str, Any], dual: Any) -> None:
    pair = PairFactory(project=project)
    claim_and_label(project, users["alice"])
    claim = assignment_claim_next(project=project, annotator=dual)
    assert claim is not None and claim.pair_id == pair.pk
    assert not pair_labels_visible_to(dual, pair)
    body = token_client(dual).get(f"/api/pairs/{pair.pk}/").json()
    assert "annotations" not in body and body["annotation"] is None  # the annotator's view, their own label only
    assert pair_get_for_evidence(dual, pair.pk) == (pair, False)
    # A lead without the annotator role sees every label.
    lead_body = token_client(users["lena"]).get(f"/api/pairs/{pair.pk}/").json()
    assert [a["annotator"] for a in lead_body["annotations"]] == ["alice"]


def test_dual_role_user_who_may_still_label_an_open_pair_sees_nothing(
    project: Any, users: dict[str, Any], dual: Any
) -> None:
    pair = PairFactory(project=project)
    claim_and_label(project, users["alice"])
    assert not pair_labels_visible_to(dual, pair)
    assert token_client(dual).get(f"/api/pairs/{pair.pk}/").status_code == 404


def test_dual_role_user_sees_labels_once_they_labelled_or_the_pair_is_complete(
    project: Any, users: dict[str, Any], dual: Any
) -> None:
    first, second = PairFactory(project=project), PairFactory(project=project)
    claim_and_label(project, dual)  # dual labels the first pair
    assert pair_labels_visible_to(dual, first)
    names = [a["annotator"] for a in token_client(dual).get(f"/api/pairs/{first.pk}/").json()["annotations"]]
    assert names == ["lara"]
    Pair.objects.filter(pk=second.pk).update(status=Pair.Status.COMPLETE)
    second.refresh_from_db()
    assert pair_labels_visible_to(dual, second)


def test_dual_role_user_outside_the_project_reviews_as_a_lead(users: dict[str, Any], project: Any) -> None:
    outsider = user_create(username="olga", password=PASSWORD, roles=[Role.ANNOTATOR.value, Role.ADMIN.value])
    pair = PairFactory(project=project)
    assert pair_labels_visible_to(outsider, pair)  # an admin who is not a member cannot claim here


# --- resubmitting an old claim -------------------------------------------------------------------


def old_claim_then_labelled(project: Any, user: Any) -> Assignment:
    PairFactory(project=project)
    old = assignment_claim_next(project=project, annotator=user)
    assert old is not None
    assignment_release(assignment_id=old.pk, annotator=user)
    claim_and_label(project, user)
    old.refresh_from_db()
    assert old.status == Assignment.Status.EXPIRED
    return old


def test_resubmitting_an_old_released_claim_is_a_409(project: Any, users: dict[str, Any]) -> None:
    old = old_claim_then_labelled(project, users["alice"])
    response = token_client(users["alice"]).post(
        f"/api/assignments/{old.pk}/submit/",
        {
            "preference": "LEFT_CLEARLY",
            "task_category": "advice",
            "objectivity": "opinion",
            "controversiality": "low",
            "rationale": "again",
            "time_spent_ms": 10,
        },
        format="json",
    )
    assert response.status_code == 409
    assert "labelled this pair since" in response.json()["detail"]


def test_resubmitting_an_old_claim_on_the_web_is_a_form_error(project: Any, users: dict[str, Any]) -> None:
    old = old_claim_then_labelled(project, users["alice"])
    client = Client()
    client.force_login(users["alice"])
    response = client.post(
        f"/projects/{project.pk}/label/",
        {
            "assignment": old.pk,
            "preference": "LEFT_CLEARLY",
            "task_category": project.taxonomy[0],
            "objectivity": "opinion",
            "controversiality": "low",
            "rationale": "again",
            "time_spent_ms": 10,
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "labelled this pair since" in response.content.decode()


def test_dual_role_user_holding_a_disputed_pair_cannot_review_it(
    project: Any, users: dict[str, Any], dual: Any
) -> None:
    from curation.models import Dispute

    pair = PairFactory(project=project)
    claim_and_label(project, users["alice"])
    assert assignment_claim_next(project=project, annotator=dual) is not None
    dispute = Dispute.objects.create(project=project, pair=pair, batch_key="b1", reason=Dispute.Reason.choices[0][0])
    api = f"/api/projects/{project.pk}/disputes/{dispute.pk}/"
    assert token_client(dual).get(api).status_code == 403
    assert token_client(users["lena"]).get(api).status_code == 200
    page = Client()
    page.force_login(dual)
    assert page.get(f"/curation/projects/{project.pk}/disputes/{dispute.pk}/").status_code == 403
