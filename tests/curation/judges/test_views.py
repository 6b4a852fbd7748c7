"""Judges pages: admins only for configuration, the key never shown, leads ask and measure, bad input is no 500."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.test import Client

from curation.judges.models import Judge, JudgeRun
from tests.conftest import PASSWORD
from tests.curation.judges.conftest import content_judge, make_pair, verify

SECRET = "sk-very-secret-123"


def login(client: Client, user: Any) -> Client:
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def judge(make_judge: Any, stub: Any) -> Judge:
    return make_judge(stub(content_judge).url, name="stubby", api_key=SECRET)


def test_only_admins_configure_judges(client: Client, users: dict[str, Any], judge: Judge) -> None:
    for name in ("lena", "alice"):
        login(client, users[name])
        assert client.get("/judges/").status_code == 403
        assert client.post(f"/judges/{judge.pk}/test/").status_code == 403
        client.logout()
    assert client.get("/judges/").status_code == 302  # to the log-in page


def test_the_key_is_write_only(client: Client, users: dict[str, Any], judge: Judge, caplog: Any) -> None:
    login(client, users["adam"])
    for url in ("/judges/", f"/judges/{judge.pk}/edit/"):
        page = client.get(url)
        assert page.status_code == 200 and SECRET not in page.content.decode()
    form = {
        "name": "stubby",
        "base_url": judge.base_url,
        "model": "m2",
        "response_format": "none",
        "mode": "single",
        "temperature": "0",
        "samples": "1",
        "concurrency": "2",
        "rate_limit_per_minute": "0",
        "max_examples": "8",
        "max_tokens": "64",
        "timeout_s": "30",
        "enabled": "on",
        "new_api_key": "",
    }
    with caplog.at_level("DEBUG"):
        assert client.post(f"/judges/{judge.pk}/edit/", form).status_code == 302
        judge.refresh_from_db()
        assert (judge.model, judge.api_key) == ("m2", SECRET)  # blank keeps the key
        assert client.post(f"/judges/{judge.pk}/edit/", {**form, "new_api_key": "sk-new"}).status_code == 302
    judge.refresh_from_db()
    assert judge.api_key == "sk-new"
    assert SECRET not in caplog.text and "sk-new" not in caplog.text


def test_bad_judge_settings_are_named_and_change_nothing(client: Client, users: dict[str, Any], judge: Judge) -> None:
    login(client, users["adam"])
    response = client.post(
        "/judges/new/", {"name": "x", "base_url": "not a url", "model": "m", "samples": "3", "temperature": "0"}
    )
    body = response.content.decode()
    assert response.status_code == 400 and "Enter a valid URL" in body and "several samples need a temperature" in body
    assert Judge.objects.count() == 1


def test_test_connection_button(client: Client, users: dict[str, Any], judge: Judge) -> None:
    login(client, users["adam"])
    response = client.post(f"/judges/{judge.pk}/test/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "connected" in response.content.decode()


def test_a_lead_asks_the_judges_about_a_pair(
    client: Client, users: dict[str, Any], project: Any, judge: Judge, django_capture_on_commit_callbacks: Any
) -> None:
    from curation.judges.services import judge_shard_run

    pair = make_pair(project, 1, right="B")
    login(client, users["lena"])
    with (
        mock.patch("curation.judges.tasks.judge_shard_run_task.delay"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/judges/projects/{project.pk}/pairs/{pair.pk}/ask/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'hx-trigger="every 2s"' in response.content.decode()
    run = JudgeRun.objects.get()
    judge_shard_run(shard_id=run.shards.get().pk)
    done = client.get(f"/judges/projects/{project.pk}/runs/{run.pk}/", HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and "B clearly better" in done.content.decode()
    assert "stubby: B clearly" in done.content.decode()
    client.logout()
    login(client, users["alice"])  # an annotator
    assert client.post(f"/judges/projects/{project.pk}/pairs/{pair.pk}/ask/").status_code == 403
    assert client.get(f"/judges/projects/{project.pk}/").status_code == 403


def test_asking_without_judges_or_about_a_stray_pair(client: Client, users: dict[str, Any], project: Any) -> None:
    pair = make_pair(project, 1)
    login(client, users["lena"])
    response = client.post(f"/judges/projects/{project.pk}/pairs/{pair.pk}/ask/")
    assert response.status_code == 400 and "no judge is enabled" in response.content.decode()
    assert client.post(f"/judges/projects/{project.pk}/pairs/999999/ask/").status_code == 404
    assert not JudgeRun.objects.exists()


def test_judges_page_shows_agreement(client: Client, users: dict[str, Any], project: Any, judge: Judge) -> None:
    for n in range(12):
        verify(make_pair(project, n), "A")
    login(client, users["lena"])
    with mock.patch("curation.judges.tasks.judge_shard_run_task.delay"):
        assert client.post(f"/judges/projects/{project.pk}/measure/").status_code == 302
    page = client.get(f"/judges/projects/{project.pk}/")
    assert (
        page.status_code == 200
        and "stubby" in page.content.decode()
        and "Agreement with D_gold" in page.content.decode()
    )
