"""The tools' htmx panels through the test client: access, each panel's round trip, the corpus admin page."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse

from annotation.tools.models import AIQuery, CodeRun, Corpus, EvidenceSnippet, SearchQuery, SearchResultOpened
from annotation.tools.services import code_run_execute, corpus_load_file
from tests.annotation.tools.conftest import send_json

HX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, *args: Any) -> str:
    return reverse(f"annotation:tools:{name}", args=args)


def test_urls_are_namespaced_under_annotation_tools(claimed: Any) -> None:
    assert url("search", claimed.pair.pk) == f"/tools/pairs/{claimed.pair.pk}/search/"


@pytest.mark.parametrize("panel", ["search", "code", "ai"])
def test_panels_need_a_claim_on_the_pair_or_a_lead(
    panel: str, claimed: Any, users: dict[str, Any], client: Any
) -> None:
    pair_url = url(panel, claimed.pair.pk)
    assert client.get(pair_url).status_code == 302  # to the login page
    for outsider in ("bob", "dave"):  # bob is in the project but holds no claim on this pair
        client.force_login(users[outsider])
        assert client.get(pair_url, **HX).status_code == 404
    for allowed in ("alice", "lena", "adam"):
        client.force_login(users[allowed])
        assert client.get(pair_url, **HX).status_code == 200


def test_panels_include_renders_lazy_loaders(claimed: Any, settings: Any) -> None:
    html = render_to_string("annotation/tools/panels.html", {"pair": claimed.pair, "ai_configured": True})
    for name in ("search", "code", "ai"):
        assert f'hx-get="{url(name, claimed.pair.pk)}"' in html
    assert url("pair-evidence", claimed.pair.pk) in html
    # Fetched when a tab is first opened, never on page load (the panels cost queries per pair).
    assert 'hx-trigger="load"' not in html and html.count('hx-trigger="tool-open once"') == 4


def test_panels_leave_out_ai_assist_when_it_is_not_configured(claimed: Any) -> None:
    html = render_to_string("annotation/tools/panels.html", {"pair": claimed.pair, "ai_configured": False})
    assert url("ai", claimed.pair.pk) not in html and "Ask AI" not in html
    assert f'hx-get="{url("search", claimed.pair.pk)}"' in html


def test_search_open_and_attach_round_trip(jargon: Any, claimed: Any, users: dict[str, Any], client: Any) -> None:
    client.force_login(users["alice"])
    page = client.post(url("search", claimed.pair.pk), {"query": "cruft"}, **HX)
    body = page.content.decode()
    assert page.status_code == 200 and 'id="tools-search"' in body
    assert "<mark>cruft</mark>" in body.lower() or "<mark>Cruft</mark>" in body
    assert "evidence-changed" in page["HX-Trigger-After-Swap"]
    search = SearchQuery.objects.get(annotator=users["alice"])
    opened = client.post(url("result-open", search.pk, 1), **HX)
    assert opened.status_code == 200 and search.results[0]["title"] in opened.content.decode()
    assert SearchResultOpened.objects.filter(search=search, rank=1).exists()
    attach = client.post(url("snippet-attach", search.pk, 1), {"text": "some passage", "note": "n"}, **HX)
    assert attach.status_code == 200 and "Attached as evidence" in attach.content.decode()
    assert EvidenceSnippet.objects.get().text == "some passage"
    client.force_login(users["bob"])  # another user's search is not theirs to open
    assert client.post(url("result-open", search.pk, 1), **HX).status_code == 404


def test_search_results_escape_document_markup(claimed: Any, users: dict[str, Any], client: Any) -> None:
    from annotation.tools.services import corpus_load

    corpus_load(
        name="x",
        documents=[
            {
                "external_id": "1",
                "title": "<script>alert('t')</script>",
                "text": "<img src=x onerror=alert(1)> quokka",
                "source_url": "javascript:alert(1)",
            }
        ],
    )
    client.force_login(users["alice"])
    body = client.post(url("search", claimed.pair.pk), {"query": "quokka"}, **HX).content.decode()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;" in body and 'href="javascript:' not in body


def test_code_panel_offers_the_responses_code_and_queues_a_run(
    claimed: Any, users: dict[str, Any], client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(users["alice"])
    panel = client.get(url("code", claimed.pair.pk), **HX).content.decode()
    assert "Left response, block 1 (python)" in panel  # alice sees B (which holds the code) on the left
    assert "def add(a, b):" in panel
    with (
        mock.patch("annotation.tools.tasks.code_run_execute_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        queued = client.post(url("code", claimed.pair.pk), {"language": "python", "code": "print('hi')"}, **HX)
    run = CodeRun.objects.get()
    delay.assert_called_once_with(run_id=run.pk)
    assert queued.status_code == 200 and f'hx-get="{url("code-run", run.pk)}"' in queued.content.decode()
    polling = client.get(url("code-run", run.pk), **HX)
    assert polling.status_code == 200 and 'hx-trigger="every 1s"' in polling.content.decode()
    client.force_login(users["bob"])
    assert client.get(url("code-run", run.pk), **HX).status_code == 404


def test_code_run_result_is_shown_and_polling_stops(
    require_sandbox: None, claimed: Any, users: dict[str, Any], client: Any
) -> None:
    client.force_login(users["alice"])
    with mock.patch("annotation.tools.tasks.code_run_execute_task.delay"):
        client.post(url("code", claimed.pair.pk), {"language": "python", "code": "while True:\n    pass"}, **HX)
    run = CodeRun.objects.get()
    code_run_execute(run_id=run.pk)
    done = client.get(url("code-run", run.pk), **HX)
    body = done.content.decode()
    assert done.status_code == 286  # htmx stops polling
    assert "hx-trigger" not in body and "limit was reached" in body
    assert "CPU time" in body or "wall-clock time" in body


def test_code_panel_rejects_empty_code(claimed: Any, users: dict[str, Any], client: Any) -> None:
    client.force_login(users["alice"])
    page = client.post(url("code", claimed.pair.pk), {"language": "python", "code": "   "}, **HX)
    assert "There is no code to run." in page.content.decode() and not CodeRun.objects.exists()


def test_ai_panel_when_unset_and_when_configured(
    claimed: Any,
    users: dict[str, Any],
    client: Any,
    settings: Any,
    http_server: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(users["alice"])
    off = client.get(url("ai", claimed.pair.pk), **HX).content.decode()
    assert "not configured" in off and "the label is your call" in off.lower()
    assert client.post(url("ai", claimed.pair.pk), {"question": "x"}, **HX).status_code == 200
    assert not AIQuery.objects.exists()
    answer = json.dumps({"answer": "Response 2 forgets edge cases.", "verdict": "response_2"})
    server = http_server(lambda r: send_json(r, {"choices": [{"message": {"content": answer}}]}))
    settings.LLM_BASE_URL, settings.LLM_MODEL = server.url, "judge"
    with (
        mock.patch("annotation.tools.tasks.ai_query_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(url("ai", claimed.pair.pk), {"question": "Which handles edge cases?"}, **HX)
    query = AIQuery.objects.get()
    delay.assert_called_once_with(query_id=query.pk)
    from annotation.tools.services import ai_query_run

    ai_query_run(query_id=query.pk)
    shown = client.get(url("ai-query", query.pk), **HX)
    body = shown.content.decode()
    assert shown.status_code == 286 and "Response 2 forgets edge cases." in body
    assert "leans to Response 2 (right)" in body and "your own judgement" in body


def test_corpus_page_is_for_admins_and_uploads_go_to_a_worker(
    users: dict[str, Any], client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(users["lena"])
    assert client.get(url("corpus-list")).status_code == 403
    client.force_login(users["adam"])
    assert client.get(url("corpus-list")).status_code == 200
    data = b'{"title": "Echidna", "text": "Echidnas lay eggs.", "source_url": "https://example.org/e"}\n'
    upload = SimpleUploadedFile("animals.jsonl", data)
    with (
        mock.patch("annotation.tools.tasks.corpus_load_file_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(url("corpus-list"), {"name": "Animals", "licence": "CC0", "file": upload})
    assert response.status_code == 302
    corpus = Corpus.objects.get(name="Animals")
    assert corpus.status == Corpus.Status.QUEUED and corpus.upload_path
    kwargs = delay.call_args.kwargs
    assert corpus_load_file(**kwargs) is not None
    corpus.refresh_from_db()
    assert (corpus.status, corpus.n_documents) == (Corpus.Status.READY, 1)
    page = client.get(url("corpus-list")).content.decode()
    assert "Animals" in page and "CC0" in page
    client.post(url("corpus-delete", corpus.pk))
    assert not Corpus.objects.exists()


def test_a_bad_corpus_upload_fails_with_the_line(users: dict[str, Any], tmp_path: Any, db: Any) -> None:
    corpus = Corpus.objects.create(name="bad", status=Corpus.Status.QUEUED)
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "ok", "text": "fine"}\nnot json\n')
    corpus_load_file(corpus_id=corpus.pk, path=str(path))
    corpus.refresh_from_db()
    assert corpus.status == Corpus.Status.FAILED and "line 2" in corpus.error and corpus.n_documents == 0
    assert not path.exists()
