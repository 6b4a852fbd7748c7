"""The web UI: access rules, page vs htmx fragment, the labelling flow, import, export, users."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotation, Assignment, ImportBatch, Pair, Project
from annotation.services import (
    AnnotationInput,
    annotation_submit,
    assignment_claim_next,
    assignment_expire_stale,
    import_batch_run,
    project_create,
    project_update,
)
from tests.conftest import PASSWORD, write_jsonl
from tests.factories import PairFactory

HX = {"HTTP_HX_REQUEST": "true"}


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def label_url(project: Project) -> str:
    return reverse("annotation:pair-label", args=[project.pk])


def label_data(assignment_id: int, **changes: Any) -> dict[str, Any]:
    data = {
        "assignment": assignment_id,
        "time_spent_ms": 4200,
        "preference": "LEFT_CLEARLY",
        "task_category": "advice",
        "objectivity": "opinion",
        "controversiality": "low",
        "desired_attributes": ["helpfulness", "honesty"],
        "guideline": "allows speculation",
        "rationale": "The left one answers the question.",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def service_label(preference: str = "A_CLEARLY", rationale: str = "Because.") -> AnnotationInput:
    return AnnotationInput(
        preference=preference,
        task_category="advice",
        objectivity="opinion",
        controversiality="low",
        desired_attributes=["helpfulness"],
        guideline="",
        rationale=rationale,
        time_spent_ms=1000,
    )


def open_claim(project: Project, user: Any) -> Assignment:
    return Assignment.objects.select_related("pair").get(
        project=project, annotator=user, status=Assignment.Status.CLAIMED
    )


def hidden_assignment_id(html: str) -> int:
    match = re.search(r'name="assignment" value="(\d+)"', html)
    assert match, "no assignment id in the page"
    return int(match.group(1))


# --- access ------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_login(loaded_project: Project) -> None:
    client = Client()
    for url in (
        reverse("annotation:home"),
        reverse("annotation:project-list"),
        label_url(loaded_project),
        reverse("annotation:user-list"),
        reverse("annotation:import-create"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_htmx_request_without_a_session_sends_the_browser_to_login(loaded_project: Project) -> None:
    page = f"http://testserver{label_url(loaded_project)}"
    response = Client().post(label_url(loaded_project), {"assignment": 1}, HTTP_HX_CURRENT_URL=page, **HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{reverse('login')}?next={label_url(loaded_project).replace('/', '%2F')}"
    assert not Annotation.objects.exists()


def test_login_page_logs_in_and_lands_annotator_on_their_queue(loaded_project: Project, users: dict) -> None:
    client = Client()
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("annotation:project-queue", args=[loaded_project.pk])
    assert b"Label next" in response.content


def test_home_sends_leads_and_admins_to_the_project_list(project: Project, users: dict) -> None:
    for name in ("lena", "adam"):
        response = client_for(users[name]).get(reverse("annotation:home"))
        assert response["Location"] == reverse("annotation:project-list")


def test_nav_and_logout_form_depend_on_role(project: Project, users: dict) -> None:
    annotator_page = client_for(users["alice"]).get(reverse("annotation:project-list")).content.decode()
    admin_page = client_for(users["adam"]).get(reverse("annotation:project-list")).content.decode()
    assert "My queue" in annotator_page and reverse("annotation:user-list") not in annotator_page
    assert reverse("annotation:user-list") in admin_page and reverse("admin:index") in admin_page
    assert reverse("annotation:import-create") in admin_page
    for page in (annotator_page, admin_page):
        assert f'action="{reverse("logout")}"' in page and 'hx-headers=\'{"x-csrftoken"' in page
        assert "htmx-2.min.js" in page


def test_project_list_shows_only_members_projects(project: Project, users: dict) -> None:
    project_create(name="Secret project", created_by=users["adam"])
    alice_page = client_for(users["alice"]).get(reverse("annotation:project-list")).content.decode()
    admin_page = client_for(users["adam"]).get(reverse("annotation:project-list")).content.decode()
    assert "Test project" in alice_page and "Secret project" not in alice_page
    assert "Test project" in admin_page and "Secret project" in admin_page


def test_outsider_gets_404_on_every_project_page(loaded_project: Project, users: dict) -> None:
    client = client_for(users["dave"])  # an annotator, but not a member
    pk = loaded_project.pk
    for name in ("project-detail", "project-queue", "pair-label", "project-guidelines"):
        assert client.get(reverse(f"annotation:{name}", args=[pk])).status_code == 404, name
    assert client.get(reverse("curation:export", args=[pk])).status_code == 404
    assert client.post(label_url(loaded_project), {"assignment": 1}).status_code == 404
    assert client.post(reverse("annotation:pair-skip", args=[pk]), {"assignment": 1}).status_code == 404
    assert not Assignment.objects.filter(annotator=users["dave"]).exists()


def test_annotator_cannot_label_in_another_project(loaded_project: Project, users: dict, demo_slice: Path) -> None:
    other = project_create(name="Other", created_by=users["adam"])
    other.members.add(users["bob"])
    response = client_for(users["alice"]).get(label_url(other))
    assert response.status_code == 404


def test_annotator_cannot_reach_admin_pages(loaded_project: Project, users: dict, tmp_path: Path) -> None:
    batch = ImportBatch.objects.create(project=loaded_project, filename="x.jsonl")
    client = client_for(users["alice"])
    urls = [
        reverse("annotation:project-create"),
        reverse("annotation:project-edit", args=[loaded_project.pk]),
        reverse("annotation:import-create"),
        reverse("annotation:import-detail", args=[batch.pk]),
        reverse("annotation:user-list"),
        reverse("annotation:user-create"),
        reverse("annotation:user-edit", args=[users["bob"].pk]),
        reverse("curation:export", args=[loaded_project.pk]),
        reverse("curation:export", args=[loaded_project.pk]) + "?format=standard",
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("annotation:user-create"), {"username": "eve", "password": "x"}).status_code == 403
    assert not get_user_model().objects.filter(username="eve").exists()


def test_lead_can_export_but_not_administer(loaded_project: Project, users: dict) -> None:
    client = client_for(users["lena"])
    assert client.get(reverse("curation:export", args=[loaded_project.pk])).status_code == 200
    assert client.get(reverse("annotation:user-list")).status_code == 403
    assert client.get(reverse("annotation:import-create")).status_code == 403
    assert client.get(label_url(loaded_project)).status_code == 403  # leads do not label


def test_project_detail_shows_progress_and_admin_links(loaded_project: Project, users: dict) -> None:
    admin_page = client_for(users["adam"]).get(reverse("annotation:project-detail", args=[loaded_project.pk]))
    html = admin_page.content.decode()
    assert admin_page.status_code == 200
    assert "0 <small>/ 60 needed" in html  # 20 pairs x 3 labels
    assert "slice.jsonl" in html  # the import batch
    assert reverse("annotation:project-edit", args=[loaded_project.pk]) in html
    assert reverse("curation:export", args=[loaded_project.pk]) in html
    annotator_html = client_for(users["alice"]).get(reverse("annotation:project-detail", args=[loaded_project.pk]))
    assert reverse("annotation:project-edit", args=[loaded_project.pk]) not in annotator_html.content.decode()


# --- the labelling page ------------------------------------------------------------------------


def test_label_page_is_a_full_page_and_a_fragment_for_htmx(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    page = client.get(label_url(loaded_project))
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html and 'id="label-panel"' in html
    assert "js/label.js" in html and 'id="guidelines-panel"' in html
    assert page["Vary"] and "HX-Request" in page["Vary"]
    fragment = client.get(label_url(loaded_project), **HX).content.decode()
    assert "<html" not in fragment and fragment.lstrip().startswith('<section id="label-panel"')
    # Asking again resumes the same claim rather than taking a second pair.
    assert hidden_assignment_id(fragment) == hidden_assignment_id(html)
    assert Assignment.objects.filter(annotator=users["alice"]).count() == 1


@pytest.mark.parametrize("order", ["AB", "BA"])
def test_responses_are_shown_in_the_assignments_order_without_canonical_letters(
    project: Project, users: dict, order: str
) -> None:
    PairFactory(project=project, response_a="Canonical-first response.", response_b="Canonical-second response.")
    client = client_for(users["alice"])
    client.get(label_url(project))
    assignment = open_claim(project, users["alice"])
    Assignment.objects.filter(pk=assignment.pk).update(order_shown=order)

    html = client.get(label_url(project), **HX).content.decode()

    left_at, right_at = html.index("Left response</h2>"), html.index("Right response</h2>")
    a_at, b_at = html.index("Canonical-first"), html.index("Canonical-second")
    if order == "AB":
        assert left_at < a_at < right_at < b_at
    else:
        assert left_at < b_at < right_at < a_at
    for leak in ("A_CLEARLY", "B_CLEARLY", "response_a", "response_b", "order_shown", 'value="AB"', 'value="BA"'):
        assert leak not in html


@pytest.mark.parametrize(
    ("order", "shown", "expected"),
    [
        ("AB", "LEFT_CLEARLY", "A_CLEARLY"),
        ("BA", "LEFT_CLEARLY", "B_CLEARLY"),
        ("AB", "RIGHT_SLIGHTLY", "B_SLIGHTLY"),
        ("BA", "RIGHT_SLIGHTLY", "A_SLIGHTLY"),
        ("BA", "UNDECIDABLE", "UNDECIDABLE"),
    ],
)
def test_htmx_submit_stores_the_canonical_label_and_returns_the_next_pair(
    loaded_project: Project, users: dict, order: str, shown: str, expected: str
) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    Assignment.objects.filter(pk=assignment.pk).update(order_shown=order)

    response = client.post(label_url(loaded_project), label_data(assignment.pk, preference=shown), **HX)

    assert response.status_code == 200
    annotation = Annotation.objects.get(assignment=assignment)
    assert annotation.preference == expected
    assert annotation.order_shown == order
    assert annotation.annotator == users["alice"]
    assert annotation.task_category == "advice" and annotation.desired_attributes == ["helpfulness", "honesty"]
    assert annotation.guideline == "allows speculation"
    assert 0 < annotation.time_spent_ms <= 4200
    html = response.content.decode()
    assert "<html" not in html and "Saved. Here is the next pair." in html
    next_claim = open_claim(loaded_project, users["alice"])
    assert next_claim.pair_id != assignment.pair_id
    assert hidden_assignment_id(html) == next_claim.pk


def test_invalid_submit_shows_errors_keeps_input_and_stores_nothing(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    data = label_data(assignment.pk, preference=None, rationale="   ", task_category="advice", objectivity="factual")

    response = client.post(label_url(loaded_project), data, **HX)

    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Not saved yet" in html
    assert "Choose the better response" in html and "Write a short rationale" in html
    assert not Annotation.objects.exists()
    assert hidden_assignment_id(html) == assignment.pk  # the same pair again
    assert re.search(r'name="task_category" value="advice"[^>]*checked', html)  # nothing entered is lost
    assert re.search(r'value="factual"[^>]*checked', html)
    assert re.search(r'value="honesty"[^>]*checked', html)
    assert 'value="allows speculation"' in html


def test_submit_with_a_category_outside_the_taxonomy_is_an_inline_error(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    response = client.post(label_url(loaded_project), label_data(assignment.pk, task_category="astrology"), **HX)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Annotation.objects.exists()


def test_plain_post_redirects_after_submit(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    response = client.post(label_url(loaded_project), label_data(assignment.pk))
    assert response.status_code == 302 and response["Location"] == label_url(loaded_project)
    assert Annotation.objects.filter(assignment=assignment).exists()
    page = client.get(response["Location"])
    assert b"Saved." in page.content and b'id="label-form"' in page.content


def test_submitting_someone_elses_assignment_is_refused(loaded_project: Project, users: dict) -> None:
    bobs = assignment_claim_next(project=loaded_project, annotator=users["bob"])
    client = client_for(users["alice"])
    response = client.post(label_url(loaded_project), label_data(bobs.pk), **HX)
    assert response.status_code == 200
    assert "This pair is not assigned to you." in response.content.decode()
    assert not Annotation.objects.exists()
    plain = client.post(label_url(loaded_project), label_data(bobs.pk))
    assert plain.status_code == 302 and not Annotation.objects.exists()


def test_claim_expired_and_taken_is_a_message_not_an_error(project: Project, users: dict) -> None:
    project_update(project=project, annotators_per_pair=1)
    PairFactory(project=project)
    client = client_for(users["alice"])
    client.get(label_url(project))
    stale = open_claim(project, users["alice"])
    Assignment.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timezone.timedelta(minutes=1))
    assignment_expire_stale()
    assert assignment_claim_next(project=project, annotator=users["bob"]) is not None  # bob takes the slot

    response = client.post(label_url(project), label_data(stale.pk), **HX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Your claim on this pair expired and it went to another annotator" in html
    assert "all caught up" in html
    assert not Annotation.objects.exists()


def test_submitting_twice_says_already_labelled(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    client.post(label_url(loaded_project), label_data(assignment.pk), **HX)
    again = client.post(label_url(loaded_project), label_data(assignment.pk, preference="RIGHT_CLEARLY"), **HX)
    assert "already labelled this pair" in again.content.decode()
    assert Annotation.objects.get().preference in ("A_CLEARLY", "B_CLEARLY")
    assert Annotation.objects.count() == 1


def test_queue_empty_state(project: Project, users: dict) -> None:
    response = client_for(users["alice"]).get(label_url(project))
    html = response.content.decode()
    assert response.status_code == 200 and "all caught up" in html and 'id="label-form"' not in html


def test_queue_empty_after_the_last_pair(project: Project, users: dict) -> None:
    PairFactory(project=project)
    client = client_for(users["alice"])
    client.get(label_url(project))
    assignment = open_claim(project, users["alice"])
    response = client.post(label_url(project), label_data(assignment.pk, task_category="other"), **HX)
    html = response.content.decode()
    assert "all caught up" in html and "Saved." in html and "next pair" not in html
    assert Annotation.objects.count() == 1


def test_skip_gives_the_pair_back_and_shows_another(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    first = open_claim(loaded_project, users["alice"])
    response = client.post(reverse("annotation:pair-skip", args=[loaded_project.pk]), {"assignment": first.pk}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "Skipped" in html
    first.refresh_from_db()
    assert first.status == Assignment.Status.EXPIRED
    nxt = open_claim(loaded_project, users["alice"])
    assert nxt.pair_id != first.pair_id and hidden_assignment_id(html) == nxt.pk


def test_guidelines_fragment_and_page(loaded_project: Project, users: dict) -> None:
    client = client_for(users["alice"])
    url = reverse("annotation:project-guidelines", args=[loaded_project.pk])
    fragment = client.get(url, **HX).content.decode()
    assert "<html" not in fragment and "<h1>Be careful</h1>" in fragment and 'id="guidelines-content"' in fragment
    page = client.get(url).content.decode()
    assert "<html" in page and "<h1>Be careful</h1>" in page
    label_page = client.get(label_url(loaded_project)).content.decode()
    assert f'hx-get="{url}"' in label_page and 'hx-target="#guidelines-body"' in label_page


def test_conversation_and_responses_are_rendered_safely(project: Project, users: dict) -> None:
    PairFactory(
        project=project,
        conversation=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Show me **code** <img src=x onerror=alert(1)>"},
        ],
        response_a="```python\nprint('hi')\n```",
        response_b="<script>alert('b')</script>[x](javascript:alert(2))",
    )
    html = client_for(users["alice"]).get(label_url(project)).content.decode()
    assert "<strong>code</strong>" in html
    assert "<img" not in html and "<script>alert" not in html and "javascript:alert" not in html
    assert '<div class="highlight">' in html and 'class="nb">print</span>' in html
    assert "role-system" in html and "role-user" in html


# --- the annotator's queue page ----------------------------------------------------------------


def test_queue_page_shows_own_progress_and_only_own_labels(loaded_project: Project, users: dict) -> None:
    for name, rationale in (("bob", "BOB-SECRET-RATIONALE"), ("alice", "ALICE-OWN-RATIONALE")):
        assignment = assignment_claim_next(project=loaded_project, annotator=users[name])
        annotation_submit(assignment_id=assignment.pk, annotator=users[name], data=service_label(rationale=rationale))
    response = client_for(users["alice"]).get(reverse("annotation:project-queue", args=[loaded_project.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "ALICE-OWN-RATIONALE" in html and "BOB-SECRET-RATIONALE" not in html
    assert "Label next" in html
    assert re.search(r"Labelled by you</dt><dd>1<", html)
    # Alice's own label is described in the terms she saw it (left/right), never A/B.
    annotation = Annotation.objects.get(annotator=users["alice"])
    expected = "Left is clearly better" if annotation.order_shown == "AB" else "Right is clearly better"
    assert expected in html
    # And the label page of a pair bob labelled shows nothing of his label.
    label_html = client_for(users["carol"]).get(label_url(loaded_project)).content.decode()
    assert "BOB-SECRET-RATIONALE" not in label_html


# --- import ------------------------------------------------------------------------------------


def upload(client: Client, project: Project, path: Path) -> Any:
    with path.open("rb") as handle:
        return client.post(reverse("annotation:import-create"), {"project": project.pk, "file": handle})


def test_import_upload_creates_a_batch_and_enqueues_the_task(
    project: Project, users: dict, demo_slice: Path, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(users["adam"])
    assert client.get(reverse("annotation:import-create") + f"?project={project.pk}").status_code == 200
    with (
        mock.patch("annotation.tasks.import_batch_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = upload(client, project, demo_slice)
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:import-detail", args=[batch.pk])
    delay.assert_called_once_with(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.QUEUED and batch.filename == "slice.jsonl"
    assert Path(batch.path).exists()

    # While queued, the status fragment keeps polling.
    fragment = client.get(response["Location"], **HX)
    assert fragment.status_code == 200 and 'hx-trigger="every 1s"' in fragment.content.decode()
    page = client.get(response["Location"]).content.decode()
    assert "<html" in page and 'id="batch-status"' in page

    # Once the worker has run it, polling stops and the counts are shown.
    import_batch_run(batch_id=batch.pk)
    done = client.get(response["Location"], **HX)
    html = done.content.decode()
    assert done.status_code == 286 and "every 1s" not in html
    assert re.search(r"Imported</dt><dd>20<", html) and Pair.objects.filter(project=project).count() == 20


def test_import_status_lists_errors_of_a_bad_file(
    project: Project, users: dict, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            json.dumps({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}),
            json.dumps({"prompt": "Hi?", "chosen": "Hello."}),
            "{not json",
        ],
    )
    client = client_for(users["adam"])
    with mock.patch("annotation.tasks.import_batch_run_task.delay"), django_capture_on_commit_callbacks(execute=True):
        upload(client, project, bad)
    batch = ImportBatch.objects.get()
    import_batch_run(batch_id=batch.pk)

    response = client.get(reverse("annotation:import-detail", args=[batch.pk]), **HX)

    html = response.content.decode()
    assert response.status_code == 286
    assert "nothing was imported" in html
    assert re.search(r'<td class="num">2</td><td><code>rejected</code></td><td>is missing</td>', html)
    assert re.search(r'<td class="num">3</td><td>–</td><td>invalid JSON', html)
    assert not Pair.objects.exists()


def test_import_form_errors_are_shown(project: Project, users: dict, tmp_path: Path) -> None:
    client = client_for(users["adam"])
    response = client.post(reverse("annotation:import-create"), {"project": project.pk})
    assert response.status_code == 200 and b"This field is required" in response.content
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with empty.open("rb") as handle:
        response = client.post(reverse("annotation:import-create"), {"project": project.pk, "file": handle})
    assert response.status_code == 200 and not ImportBatch.objects.exists()


# --- projects ----------------------------------------------------------------------------------


def test_admin_creates_a_project(users: dict) -> None:
    client = client_for(users["adam"])
    assert client.get(reverse("annotation:project-create")).status_code == 200
    response = client.post(
        reverse("annotation:project-create"),
        {
            "name": "Code review",
            "description": "Programming pairs",
            "guidelines": "# Run the code",
            "annotators_per_pair": 2,
            "claim_timeout_minutes": 15,
            "taxonomy": "programming\n  debugging  \n\nprogramming\n",
            "desired_attributes": "accuracy\nclarity",
            "members": [users["alice"].pk, users["bob"].pk],
        },
    )
    project = Project.objects.get(name="Code review")
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation:project-detail", args=[project.pk])
    assert project.taxonomy == ["programming", "debugging"] and project.desired_attributes == ["accuracy", "clarity"]
    assert (project.annotators_per_pair, project.claim_timeout_minutes) == (2, 15)
    assert set(project.members.values_list("username", flat=True)) == {"alice", "bob"}


def test_project_form_shows_validation_errors(project: Project, users: dict) -> None:
    client = client_for(users["adam"])
    response = client.post(
        reverse("annotation:project-create"),
        {
            "name": "Test project",  # taken
            "annotators_per_pair": 0,
            "claim_timeout_minutes": 10,
            "taxonomy": "  \n ",
            "desired_attributes": "accuracy",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html  # the blank taxonomy
    assert "greater than or equal to 1" in html
    assert Project.objects.count() == 1

    # A name clash is found by the service's full_clean and shown on the field.
    response = client.post(
        reverse("annotation:project-create"),
        {
            "name": "Test project",
            "annotators_per_pair": 3,
            "claim_timeout_minutes": 10,
            "taxonomy": "math",
            "desired_attributes": "accuracy",
        },
    )
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert Project.objects.count() == 1


def test_project_edit_saves_and_shows_service_errors(loaded_project: Project, users: dict) -> None:
    client = client_for(users["adam"])
    url = reverse("annotation:project-edit", args=[loaded_project.pk])
    page = client.get(url).content.decode()
    assert "Be careful" in page and "advice" in page
    for name in ("alice", "bob"):
        assignment = assignment_claim_next(project=loaded_project, annotator=users[name])
        annotation_submit(assignment_id=assignment.pk, annotator=users[name], data=service_label())
    data = {
        "name": "Renamed",
        "guidelines": "New rules",
        "annotators_per_pair": 1,  # two labels already given on one pair
        "claim_timeout_minutes": 20,
        "taxonomy": "advice\nmath",
        "desired_attributes": "helpfulness",
        "members": [users["alice"].pk],
    }
    response = client.post(url, data)
    assert response.status_code == 200 and "more than 1 claims or labels" in response.content.decode()
    loaded_project.refresh_from_db()
    assert loaded_project.name == "Test project" and loaded_project.members.count() == 5  # nothing changed

    data["annotators_per_pair"] = 3
    response = client.post(url, data)
    assert response.status_code == 302
    loaded_project.refresh_from_db()
    assert loaded_project.name == "Renamed" and loaded_project.taxonomy == ["advice", "math"]
    assert list(loaded_project.members.values_list("username", flat=True)) == ["alice"]


# --- users -------------------------------------------------------------------------------------


def test_users_page_lists_roles_and_projects(project: Project, users: dict) -> None:
    html = client_for(users["adam"]).get(reverse("annotation:user-list")).content.decode()
    assert "alice" in html and "dave" in html and "Test project" in html
    assert "role-lead" in html and "role-admin" in html


def test_admin_creates_a_user_with_roles_and_projects(project: Project, users: dict) -> None:
    client = client_for(users["adam"])
    response = client.post(
        reverse("annotation:user-create"),
        {"username": "erin", "password": "a-long-enough-pass", "roles": ["annotator"], "projects": [project.pk]},
    )
    assert response.status_code == 302
    erin = get_user_model().objects.get(username="erin")
    assert erin.check_password("a-long-enough-pass")
    assert list(erin.groups.values_list("name", flat=True)) == ["annotator"]
    assert list(erin.projects.all()) == [project]
    assert Client().login(username="erin", password="a-long-enough-pass")


def test_user_create_shows_errors(users: dict) -> None:
    client = client_for(users["adam"])
    response = client.post(reverse("annotation:user-create"), {"username": "alice", "password": "short"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "already exists" in html and "too short" in html
    response = client.post(reverse("annotation:user-create"), {"username": "bad name!", "password": "long-enough-1"})
    assert response.status_code == 200 and "Enter a valid username" in response.content.decode()


def test_admin_edits_roles_and_memberships(project: Project, users: dict) -> None:
    other = project_create(name="Other", created_by=users["adam"])
    client = client_for(users["adam"])
    url = reverse("annotation:user-edit", args=[users["dave"].pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"roles": ["annotator", "lead"], "projects": [other.pk]})
    assert response.status_code == 302
    dave = get_user_model().objects.get(username="dave")
    assert set(dave.groups.values_list("name", flat=True)) == {"annotator", "lead"}
    assert list(dave.projects.all()) == [other]
    response = client.post(url, {"roles": ["annotator"], "projects": []})
    assert list(dave.projects.all()) == [] and set(dave.groups.values_list("name", flat=True)) == {"annotator"}
    # alice's memberships were not disturbed
    assert project.members.filter(username="alice").exists()


def test_admin_cannot_remove_their_own_admin_role(users: dict) -> None:
    client = client_for(users["adam"])
    response = client.post(reverse("annotation:user-edit", args=[users["adam"].pk]), {"roles": ["lead"]})
    assert response.status_code == 200 and "cannot remove your own admin role" in response.content.decode()
    assert users["adam"].groups.filter(name="admin").exists()
