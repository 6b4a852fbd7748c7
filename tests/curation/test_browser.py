"""The lead's data browser, pair page, per-annotator page, dispute threads and "resolve, then next"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Assignment, Pair
from annotation.selectors import pair_labels_visible_to
from annotation.services import assignment_claim_next
from curation.browser import PairFilters, labels_hidden_ids, pair_browse_queryset
from curation.models import Dispute, DisputeComment, PairScore, VerifiedPair
from curation.review import dispute_comment_add, dispute_next_open
from rewardmodel.models import ModelVersion
from tests.curation.helpers import FAILING, WITH_MISSING, label_matrix, make_batch, settle

pytestmark = pytest.mark.usefixtures("curation_urls")


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def data(project: Any, trio: list[Any]) -> dict[str, Any]:
    """Batch "good" passes (pairs 0, 1 verified; 2 disputed: can't decide); batch "bad" is flagged
    (pair 2 disputed: strength split); one batch of two untouched open pairs."""
    from curation.agreement_refresh import project_refresh

    _, good = make_batch(project, 3, "good.jsonl")
    _, bad = make_batch(project, 3, "bad.jsonl")
    _, fresh = make_batch(project, 2, "fresh.jsonl")
    label_matrix(project, trio, list(zip(good + bad, WITH_MISSING + FAILING, strict=True)))
    settle(project, good)
    settle(project, bad)
    project_refresh(project_id=project.pk)
    return {"good": good, "bad": bad, "fresh": fresh}


def ids(project: Any, **filters: Any) -> set[int]:
    return set(pair_browse_queryset(project, PairFilters(**filters)).values_list("pk", flat=True))


def test_status_filters_partition_the_pairs(project: Any, data: dict[str, Any]) -> None:
    good, bad, fresh = data["good"], data["bad"], data["fresh"]
    assert ids(project, status="open") == {p.pk for p in fresh}
    assert ids(project, status="complete") == {p.pk for p in good + bad}
    assert ids(project, status="verified") == set(VerifiedPair.objects.values_list("pair_id", flat=True))
    assert ids(project, status="verified") == {good[0].pk, good[1].pk}
    assert ids(project, status="disputed") == {good[2].pk, bad[2].pk}
    Dispute.objects.filter(pair=bad[2]).update(status=Dispute.Status.DISCARDED)
    assert ids(project, status="discarded") == {bad[2].pk}
    assert ids(project, status="disputed") == {good[2].pk}


def test_batch_agreement_annotator_category_and_text_filters(
    project: Any, data: dict[str, Any], users: dict[str, Any]
) -> None:
    good, bad, fresh = data["good"], data["bad"], data["fresh"]
    assert ids(project, batch=f"import:{bad[0].batch_id}") == {p.pk for p in bad}
    # WITH_MISSING + FAILING: unanimous B_CLEARLY on good[1] and bad[1]; same side, strengths differ on
    # good[0], bad[0]; split (can't decide, or sides differ) on good[2], bad[2].
    assert ids(project, agreement="unanimous") == {good[1].pk, bad[1].pk}
    assert ids(project, agreement="same_side") == {good[0].pk, bad[0].pk}
    assert ids(project, agreement="split") == {good[2].pk, bad[2].pk}
    assert ids(project, annotator_id=users["alice"].pk) == {p.pk for p in good + bad}
    assert ids(project, annotator_id=users["dave"].pk) == set()
    assert ids(project, task_category="advice") == {p.pk for p in good + bad}
    assert ids(project, task_category="poetry") == set()
    text = fresh[1].conversation[-1]["content"]
    assert ids(project, q=text.upper()) == {fresh[1].pk}  # case-insensitive, in the conversation
    assert ids(project, q=fresh[0].response_b) == {fresh[0].pk}
    assert ids(project, q=f"#{fresh[0].pk}") == {fresh[0].pk}
    assert ids(project, status="verified", agreement="unanimous") == {good[1].pk}  # filters combine


def test_model_filter_compares_the_current_models_score_with_the_verdict(project: Any, data: dict[str, Any]) -> None:
    good = data["good"]
    assert ids(project, model="disagrees") == set()  # no current-best model yet
    assert len(ids(project, model="unscored")) == Pair.objects.filter(project=project).count()
    version = ModelVersion.objects.create(
        name="rm", scope=f"project:{project.pk}", base_model="x", path="/tmp/x", is_current_best=True
    )
    old = ModelVersion.objects.create(name="old", scope=f"project:{project.pk}", base_model="x", path="/tmp/x")
    sides = dict(VerifiedPair.objects.values_list("pair_id", "side"))
    assert sides == {good[0].pk: "A", good[1].pk: "B"}
    PairScore.objects.create(pair=good[0], model_version=version, r_a=0.1, r_b=2.0)  # prefers B: disagrees
    PairScore.objects.create(pair=good[1], model_version=version, r_a=0.0, r_b=1.0)  # prefers B: agrees
    PairScore.objects.create(pair=good[1], model_version=old, r_a=5.0, r_b=0.0)  # an older model: ignored
    assert ids(project, model="disagrees") == {good[0].pk}
    assert ids(project, model="agrees") == {good[1].pk}
    assert good[0].pk not in ids(project, model="unscored")


def test_filter_values_are_validated() -> None:
    with pytest.raises(ValueError, match="status"):
        PairFilters(status="nonsense")
    with pytest.raises(ValueError, match="batch key"):
        PairFilters(batch="round:x")


def test_browser_page_filters_pages_and_roles(project: Any, data: dict[str, Any], users: dict[str, Any]) -> None:
    url = reverse("curation:pair-browser", args=[project.pk])
    lena = client_for(users["lena"])
    page = lena.get(url, {"status": "disputed"}).content.decode()
    for pair in data["good"][:2]:
        assert f'data-pair="{pair.pk}"' not in page
    assert f'data-pair="{data["good"][2].pk}"' in page and "Export these pairs" in page

    bad = lena.get(url, {"status": "nonsense", "annotator": "abc"})
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "status" in body and "annotator" in body and "pair-row" not in body

    fragment = lena.get(url, {"batch": f"import:{data['bad'][0].batch_id}"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="pair-results"')
    assert fragment.count('class="pair-row"') == 3

    assert client_for(users["alice"]).get(url).status_code == 403  # an annotator of the project
    assert client_for(users["dave"]).get(url).status_code == 404  # not a member
    assert client_for(users["adam"]).get(url).status_code == 200


def test_keyset_paging(project: Any, data: dict[str, Any], users: dict[str, Any], monkeypatch: Any) -> None:
    import curation.browser as browser

    monkeypatch.setattr(browser, "PAGE_SIZE", 3)
    monkeypatch.setattr(browser.pair_browse_page, "__defaults__", (None, 3))
    url = reverse("curation:pair-browser", args=[project.pk])
    lena = client_for(users["lena"])
    all_ids = sorted(Pair.objects.filter(project=project).values_list("pk", flat=True))
    seen: list[int] = []
    after = None
    for _ in range(5):
        params = {"after": after} if after else {}
        html = lena.get(url, params, HTTP_HX_REQUEST="true" if after else "").content.decode()
        seen += [int(x.split('"')[0]) for x in html.split('data-pair="')[1:]]
        if "more-row" not in html:
            break
        after = html.split("after=")[1].split('"')[0].split("&")[0]
    assert seen == all_ids


def test_export_of_the_filtered_set_uses_the_record_builder(
    project: Any, data: dict[str, Any], users: dict[str, Any]
) -> None:
    url = reverse("curation:pair-browser-export", args=[project.pk])
    response = client_for(users["lena"]).get(url, {"status": "verified", "format": "standard"})
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert sorted(r["pair_id"] for r in lines) == sorted(p.pk for p in data["good"][:2])
    assert all(r["verified"] and r["state"] == "verified" and isinstance(r["chosen"], str) for r in lines)
    assert all(len(r["labels"]) == 3 for r in lines)
    assert client_for(users["lena"]).get(url, {"status": "bogus"}).status_code == 400
    assert client_for(users["alice"]).get(url).status_code == 403


def test_blind_lead_sees_pair_text_but_not_labels(project: Any, trio: list[Any], users: dict[str, Any]) -> None:
    """A lead who also annotates and holds a pair sees neither its labels in the list nor on its page."""
    from annotation.models import Role
    from annotation.services import user_set_roles

    _, pairs = make_batch(project, 1)
    label_matrix(project, trio[:2], [(pairs[0], ["A_CLEARLY", "A_CLEARLY"])])  # 2 of 3 labels in
    lena = users["lena"]
    user_set_roles(user=lena, roles=[Role.LEAD.value, Role.ANNOTATOR.value])
    assignment = assignment_claim_next(project=project, annotator=lena)
    assert assignment is not None and assignment.pair_id == pairs[0].pk

    client = client_for(lena)
    html = client.get(reverse("curation:pair-browser", args=[project.pk])).content.decode()
    assert "Labels hidden" in html and "A is clearly better" not in html
    page = client.get(reverse("curation:pair-detail", args=[project.pk, pairs[0].pk])).content.decode()
    assert 'id="labels-hidden"' in page and "Chose A_CLEARLY" not in page
    export = client.get(reverse("curation:pair-browser-export", args=[project.pk]))
    assert b"".join(export.streaming_content) == b""


def test_bulk_blindness_agrees_with_the_one_pair_rule(project: Any, trio: list[Any], users: dict[str, Any]) -> None:
    from annotation.models import Role
    from annotation.services import user_set_roles

    _, pairs = make_batch(project, 4)
    lena = users["lena"]
    # pair 0 complete; pair 1 labelled by lena; pair 2 held by lena; pair 3 untouched.
    label_matrix(project, trio, [(pairs[0], ["A_CLEARLY"] * 3)])
    user_set_roles(user=lena, roles=[Role.LEAD.value, Role.ANNOTATOR.value])
    from tests.curation.helpers import label_pairs

    label_pairs(project, lena, {pairs[1].pk: "B_CLEARLY"})
    held = assignment_claim_next(project=project, annotator=lena)
    assert held is not None and held.status == Assignment.Status.CLAIMED
    for user in [lena, users["adam"], users["alice"]]:
        fresh = list(Pair.objects.filter(pk__in=[p.pk for p in pairs]))
        expected = {p.pk for p in fresh if not pair_labels_visible_to(user, p)}
        assert labels_hidden_ids(user, fresh) == expected, user.username
    assert labels_hidden_ids(lena, list(Pair.objects.filter(pk__in=[p.pk for p in pairs]))) == {
        pairs[2].pk,
        pairs[3].pk,
    } - {pairs[0].pk}


def test_pair_page_shows_labels_verdict_and_thread(project: Any, data: dict[str, Any], users: dict[str, Any]) -> None:
    pair = data["good"][2]
    html = client_for(users["lena"]).get(reverse("curation:pair-detail", args=[project.pk, pair.pk])).content.decode()
    assert html.count('<article class="label-card') == 3 and "Chose UNDECIDABLE" in html
    assert 'id="tool-evidence"' in html and "Discussion" in html and "disputed" in html
    assert client_for(users["lena"]).get(reverse("curation:pair-detail", args=[project.pk, 999999])).status_code == 404
    assert client_for(users["bob"]).get(reverse("curation:pair-detail", args=[project.pk, pair.pk])).status_code == 403


def test_annotator_page(project: Any, data: dict[str, Any], users: dict[str, Any]) -> None:
    from annotation.models import Annotation

    alice = users["alice"]
    labels = list(Annotation.objects.filter(annotator=alice).order_by("pk"))
    for label, seconds in zip(labels, [1, 1, 2, 4, 8, 20], strict=True):
        Annotation.objects.filter(pk=label.pk).update(time_spent_ms=seconds * 1000)
    url = reverse("curation:annotator-detail", args=[project.pk, alice.pk])
    response = client_for(users["lena"]).get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("Chose ") == 6  # her six labels, with rationales
    # Verified pairs good[0] (A clearly) and good[1] (B clearly): alice said A_CLEARLY and B_CLEARLY.
    assert "same side on 2 of 2 verified pairs" in html and "same strength 2" in html
    assert '<p class="stat-value">3.0 s</p>' in html and "mean 6.0 s" in html  # median and mean time per label
    assert client_for(alice).get(url).status_code == 403
    assert (
        client_for(users["lena"]).get(reverse("curation:annotator-detail", args=[project.pk, 999999])).status_code
        == 404
    )
    assert client_for(users["lena"]).get(url, {"before": "x"}).status_code == 400


def test_resolve_then_next_goes_to_the_next_open_dispute(
    project: Any, data: dict[str, Any], users: dict[str, Any]
) -> None:
    first, second = sorted(Dispute.objects.filter(status=Dispute.Status.OPEN), key=lambda d: d.pk)
    lena = client_for(users["lena"])
    url = reverse("curation:dispute-review", args=[project.pk, first.pk])
    response = lena.post(url, {"decision": "B_SLIGHTLY", "note": "B.", "next": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("curation:dispute-review", args=[project.pk, second.pk])
    page = lena.get(response["HX-Redirect"]).content.decode()
    assert page.count(f"Pair #{first.pair_id}: Resolved") == 1  # the flash, once

    url = reverse("curation:dispute-review", args=[project.pk, second.pk])
    response = lena.post(url, {"decision": "DISCARD", "note": "Both bad.", "next": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("curation:dispute-list", args=[project.pk])
    assert dispute_next_open(project, users["lena"]) is None


def test_resolve_panel_does_not_repeat_its_banner(project: Any, data: dict[str, Any], users: dict[str, Any]) -> None:
    dispute = Dispute.objects.get(pair=data["bad"][2])  # flagged batch: the resolution waits for the gate
    url = reverse("curation:dispute-review", args=[project.pk, dispute.pk])
    html = client_for(users["lena"]).post(url, {"decision": "A_CLEARLY", "note": "A"}, HTTP_HX_REQUEST="true")
    text = html.content.decode()
    assert text.count('class="alert ') == 2 and "waiting for the batch" in text  # the notice, and the state once


def test_dispute_thread_between_lead_and_annotators(project: Any, data: dict[str, Any], users: dict[str, Any]) -> None:
    dispute = Dispute.objects.get(pair=data["good"][2])
    url = reverse("curation:dispute-comment", args=[project.pk, dispute.pk])
    lena = client_for(users["lena"])
    assert lena.post(url, {"body": "  "}, HTTP_HX_REQUEST="true").status_code == 422
    assert not DisputeComment.objects.exists()
    response = lena.post(url, {"body": "Carol, why can't you decide?"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Carol, why" in response.content.decode()

    carol = client_for(users["carol"])  # labelled the pair: may read and answer
    mine = carol.get(reverse("curation:my-disputes", args=[project.pk])).content.decode()
    assert "Carol, why" in mine
    assert carol.post(url, {"body": "Both miss the point."}).status_code == 302
    assert list(DisputeComment.objects.values_list("author__username", flat=True)) == ["lena", "carol"]

    dave = client_for(users["dave"])  # not a member
    assert dave.post(url, {"body": "hi"}).status_code == 404


def test_annotator_who_has_not_submitted_cannot_read_the_thread(
    project: Any, trio: list[Any], users: dict[str, Any]
) -> None:
    from django.core.exceptions import ValidationError

    _, pairs = make_batch(project, 1)
    label_matrix(project, trio[:2], [(pairs[0], ["A_CLEARLY", "B_CLEARLY"])])
    # A dispute opened early (e.g. by a lead's flag) while carol has not labelled yet.
    dispute = Dispute.objects.create(pair=pairs[0], project=project, batch_key="import:x", reason="no_majority")
    dispute_comment_add(dispute_id=dispute.pk, author=users["alice"], body="I think A.")
    carol = users["carol"]
    assert (
        "I think A." not in client_for(carol).get(reverse("curation:my-disputes", args=[project.pk])).content.decode()
    )
    url = reverse("curation:dispute-comment", args=[project.pk, dispute.pk])
    assert client_for(carol).post(url, {"body": "me too"}).status_code == 403
    with pytest.raises(ValidationError):
        dispute_comment_add(dispute_id=dispute.pk, author=carol, body="me too")
