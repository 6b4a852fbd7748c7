"""Evidence: every tool use is stored with the pair and the annotator, shown to the right people, exported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from annotation.models import Assignment, Pair
from annotation.services import AnnotationInput, annotation_submit
from annotation.tools.selectors import evidence_for_annotator, evidence_for_pair
from annotation.tools.services import (
    ai_query_create,
    ai_query_run,
    code_run_create,
    code_run_execute,
    evidence_snippet_attach,
    search_result_open,
    search_run,
)
from curation.export import export_lines
from tests.annotation.tools.conftest import claim, send_json

LABEL = AnnotationInput(
    preference="B_CLEARLY",
    task_category="programming",
    objectivity="factual",
    controversiality="low",
    desired_attributes=["accuracy"],
    guideline="",
    rationale="B gives working code.",
    time_spent_ms=1000,
)


@pytest.fixture
def alice_evidence(
    jargon: Any, claimed: Assignment, users: dict[str, Any], settings: Any, http_server: Any
) -> Assignment:
    """alice uses every tool on her claimed pair."""
    alice, pair = users["alice"], claimed.pair
    search = search_run(pair=pair, user=alice, query="cruft")
    hit = search.results[0]
    _, document = search_result_open(search=search, rank=hit["rank"], user=alice)
    assert document is not None
    passage = " ".join(document.text.split()[:8])
    evidence_snippet_attach(search=search, rank=hit["rank"], user=alice, text=passage, note="defines the term")
    evidence_snippet_attach(search=search, rank=hit["rank"], user=alice, text="words the source never says")
    settings.SANDBOX_MODE = "off"  # stored even when refused: the attempt is evidence too
    code_run_execute(run_id=code_run_create(pair=pair, user=alice, code="print(2 + 3)", language="python").pk)
    answer = json.dumps({"answer": "Response 1 has working code.", "verdict": "response_1"})
    server = http_server(lambda r: send_json(r, {"choices": [{"message": {"content": answer}}]}))
    settings.LLM_BASE_URL, settings.LLM_MODEL = server.url, "judge"
    ai_query_run(query_id=ai_query_create(pair=pair, user=alice, question="Does it run?").pk)
    return claimed


def _kinds(items: list[Any]) -> list[str]:
    return [item.kind for item in items]


def test_every_tool_use_is_kept_with_the_pair_and_the_annotator(
    alice_evidence: Assignment, users: dict[str, Any]
) -> None:
    items = evidence_for_annotator(alice_evidence.pair, users["alice"])
    assert sorted(_kinds(items)) == sorted(["search", "open", "snippet", "snippet", "code_run", "ai_query"])
    assert {item.annotator_id for item in items} == {users["alice"].pk}
    snippets = [item.obj for item in items if item.kind == "snippet"]
    assert [s.is_verbatim for s in snippets] == [True, False]
    assert snippets[0].title == "cruft" and snippets[0].url.startswith("http://www.catb.org/")
    code = next(item.obj for item in items if item.kind == "code_run")
    assert (code.code, code.status) == ("print(2 + 3)", "refused")
    ai = next(item.obj for item in items if item.kind == "ai_query")
    assert (ai.question, ai.verdict) == ("Does it run?", "B")  # response 1 = alice's left = B


def test_other_annotators_never_see_it(alice_evidence: Assignment, users: dict[str, Any], client: Any) -> None:
    pair = alice_evidence.pair
    claim(pair, users["bob"])
    assert evidence_for_annotator(pair, users["bob"]) == []
    client.force_login(users["bob"])
    page = client.get(f"/tools/pairs/{pair.pk}/evidence/", HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert "cruft" not in page.content.decode() and "Does it run?" not in page.content.decode()
    client.force_login(users["dave"])  # not in the project
    assert client.get(f"/tools/pairs/{pair.pk}/evidence/").status_code == 404


def test_leads_see_an_annotators_evidence_only_after_they_submit(
    alice_evidence: Assignment, users: dict[str, Any], client: Any
) -> None:
    pair = alice_evidence.pair
    lena = users["lena"]
    search_run(pair=pair, user=lena, query="cruft")  # a lead's own review work shows at once
    assert {i.annotator_id for i in evidence_for_pair(pair)} == {lena.pk}
    client.force_login(lena)
    before = client.get(f"/tools/pairs/{pair.pk}/evidence/", HTTP_HX_REQUEST="true").content.decode()
    assert "Does it run?" not in before
    annotation_submit(assignment_id=alice_evidence.pk, annotator=users["alice"], data=LABEL)
    items = evidence_for_pair(pair)
    assert _kinds([i for i in items if i.annotator_id == users["alice"].pk]).count("snippet") == 2
    after = client.get(f"/tools/pairs/{pair.pk}/evidence/", HTTP_HX_REQUEST="true").content.decode()
    assert "Evidence by annotator" in after and "alice" in after and "Does it run?" in after and "not verbatim" in after


def _complete(pair: Pair, users: dict[str, Any], first: Assignment) -> None:
    annotation_submit(assignment_id=first.pk, annotator=first.annotator, data=LABEL)
    for name in ("bob", "carol"):
        assignment = claim(Pair.objects.get(pk=pair.pk), users[name])
        annotation_submit(assignment_id=assignment.pk, annotator=users[name], data=LABEL)


def test_export_includes_evidence_when_asked(alice_evidence: Assignment, users: dict[str, Any], tmp_path: Path) -> None:
    pair = alice_evidence.pair
    _complete(pair, users, alice_evidence)
    (plain,) = [json.loads(line) for line in export_lines(pair.project, selection="all")]
    assert "evidence" not in plain
    (record,) = [json.loads(line) for line in export_lines(pair.project, selection="all", include_evidence=True)]
    evidence = record["evidence"]
    assert sorted(e["kind"] for e in evidence) == sorted(
        ["search", "open", "snippet", "snippet", "code_run", "ai_query"]
    )
    assert {e["annotator_id"] for e in evidence} == {users["alice"].pk}
    code = next(e for e in evidence if e["kind"] == "code_run")
    assert code["code"] == "print(2 + 3)" and code["status"] == "refused" and "limits" in code
    out = tmp_path / "export.jsonl"
    call_command("export_pairs", str(out), "--project", pair.project.name, "--selection", "all", "--with-evidence")
    assert json.loads(out.read_text())["evidence"] == evidence
