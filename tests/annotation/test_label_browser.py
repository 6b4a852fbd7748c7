"""The labelling page at 1400x900 in a real Chromium: layout, every attribute by keys, errors in view, edits, drafts.

Set SCREENSHOT_DIR (e.g. docs/screenshots) to save the pages as PNGs while the tests run; the README
links the ones in docs/screenshots/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from annotation.models import DEFAULT_TAXONOMY, Annotation, AnnotationRevision, Project
from annotation.preference import shown_to_canonical
from annotation.services import annotation_submit, assignment_claim_next
from tests.annotation.test_browser import browser_page, log_in  # noqa: F401  (fixture)
from tests.annotation.test_views import service_label

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IN_VIEW = "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def in_view(page: Any, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, IN_VIEW))


def open_label_page(page: Any, base_url: str, project: Project) -> str:
    log_in(page, base_url, "alice")
    page.goto(base_url + reverse("annotation:pair-label", args=[project.pk]))
    page.wait_for_selector("#label-form")
    return page.input_value("#label-form input[name=assignment]")


def test_the_form_is_in_view_on_load_and_a_long_conversation_scrolls_in_its_box(
    live_server: Any,
    loaded_project: Project,
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    open_label_page(page, live_server.url, loaded_project)
    assert page.viewport_size == {"width": 1400, "height": 900}
    # Everything needed to label is on screen without scrolling: the choices and the submit button.
    shot(page, "label-page.png")
    for selector in (
        "input[name=preference][value=LEFT_CLEARLY] + .pref-text",
        "#label-form button.btn-primary",
        "textarea[name=rationale]",
        "label.chip:has(input[name=objectivity])",
    ):
        assert in_view(page, selector), selector
    # Responses side by side, the form beside them.
    left = page.locator(".response-left").bounding_box()
    right = page.locator(".response-right").bounding_box()
    form = page.locator("#label-form").bounding_box()
    assert abs(left["y"] - right["y"]) < 2 and left["x"] < right["x"] < form["x"]
    # The first demo pair has 13 messages: they scroll inside their box, not the page.
    assert page.eval_on_selector(".conversation .scroll-box", "el => el.scrollHeight > el.clientHeight + 10")
    page.mouse.wheel(0, 600)
    page.wait_for_timeout(200)
    assert in_view(page, "#label-form button.btn-primary")  # sticky: still in view after scrolling
    # AI assist is not configured here, so it has no tab; the tools are closed tabs, none fetched.
    assert page.locator(".tool-tab").all_inner_texts() == ["Search s", "Code runner k", "Your evidence e"]
    assert page.locator("#tools-search section").count() == 0
    page.evaluate("window.scrollTo(0, 0)")
    if page.is_visible("#guidelines-panel"):  # opened by itself on a first visit
        page.keyboard.press("Escape")
    shot(page, "label-page.png")
    assert page.js_errors == []


def test_every_attribute_can_be_set_by_keys_alone(
    live_server: Any,
    loaded_project: Project,
    users: dict[str, Any],
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    first_id = open_label_page(page, live_server.url, loaded_project)
    page.keyboard.press("?")
    assert page.is_visible("#keys-help")
    shot(page, "label-keys.png")
    page.keyboard.press("Escape")
    assert page.is_hidden("#keys-help")

    advice_key = "123456789abcdefghijklmnopqrstuvwxyz"[DEFAULT_TAXONOMY.index("advice")]
    page.keyboard.press("3")  # right slightly
    page.keyboard.press("t")
    assert "Task category: press the key" in page.inner_text("#key-mode-status")
    page.keyboard.press(advice_key)
    for keys in (("o", "2"), ("c", "1"), ("d", "1"), ("d", "2"), ("d", "2"), ("d", "3")):
        for key in keys:
            page.keyboard.press(key)
    page.keyboard.press("i")
    page.keyboard.type("allows speculation")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.keyboard.type("Right is kinder; 2 points.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "id => { const el = document.querySelector('#label-form input[name=assignment]'); return el && el.value !== id; }",
        arg=first_id,
    )
    annotation = Annotation.objects.get(assignment_id=int(first_id))
    assert annotation.preference == shown_to_canonical("RIGHT_SLIGHTLY", annotation.order_shown)
    assert annotation.task_category == "advice"
    assert (annotation.objectivity, annotation.controversiality) == ("opinion", "low")
    assert annotation.desired_attributes == ["accuracy", "harmlessness"]  # d2 pressed twice: on, then off
    assert annotation.guideline == "allows speculation"
    assert annotation.rationale == "Right is kinder; 2 points."
    assert page.inner_text("[data-progress=session]") == "1"
    assert page.js_errors == []


def test_a_failed_submit_shows_its_error_in_view_and_focuses_the_first_bad_field(
    live_server: Any,
    loaded_project: Project,
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    open_label_page(page, live_server.url, loaded_project)
    page.keyboard.press("1")
    page.click("textarea[name=rationale]")
    page.keyboard.type("Left answers it.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#label-errors")
    assert in_view(page, "#label-errors")
    assert in_view(page, "[data-field=task_category] .error")
    assert page.evaluate("document.activeElement.name") == "task_category"
    assert page.input_value("textarea[name=rationale]") == "Left answers it."
    shot(page, "label-error.png")
    assert Annotation.objects.count() == 0
    assert page.js_errors == []


def test_a_draft_survives_a_reload(
    live_server: Any,
    loaded_project: Project,
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    first_id = open_label_page(page, live_server.url, loaded_project)
    page.keyboard.press("4")
    page.keyboard.press("c")
    page.keyboard.press("3")
    page.click("textarea[name=rationale]")
    page.keyboard.type("Half written")
    page.reload()
    page.wait_for_selector("#label-form")
    assert page.input_value("#label-form input[name=assignment]") == first_id
    assert page.is_checked("input[name=preference][value=RIGHT_CLEARLY]")
    assert page.is_checked("input[name=controversiality][value=high]")
    assert page.input_value("textarea[name=rationale]") == "Half written"
    assert "draft" in page.inner_text("#draft-status")


def test_an_annotator_edits_a_submitted_label(
    live_server: Any,
    loaded_project: Project,
    users: dict[str, Any],
    browser_page: Any,  # noqa: F811
) -> None:
    assignment = assignment_claim_next(project=loaded_project, annotator=users["alice"])
    assert assignment is not None
    annotation = annotation_submit(assignment_id=assignment.pk, annotator=users["alice"], data=service_label())
    page = browser_page
    log_in(page, live_server.url, "alice")
    page.goto(live_server.url + reverse("annotation:project-queue", args=[loaded_project.pk]))
    shot(page, "queue.png")
    page.click(f"a[href='{reverse('annotation:annotation-edit', args=[loaded_project.pk, annotation.pk])}']")
    page.wait_for_selector("#label-form")
    assert "You are editing your label" in page.inner_text("#label-panel")
    page.keyboard.press("0")  # can't decide
    page.click("textarea[name=rationale]")
    page.fill("textarea[name=rationale]", "Neither answers the question.")
    shot(page, "label-edit.png")
    draft_key = f"synpref:draft:edit-{annotation.pk}"
    assert page.evaluate("key => localStorage.getItem(key)", draft_key) is not None  # the edit is kept as a draft
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/queue/")
    assert "Label updated." in page.inner_text("body")
    # Saved: the draft is gone, so reopening the label shows what the server has, not the old draft.
    page.wait_for_function("key => localStorage.getItem(key) === null", arg=draft_key)
    page.click(f"a[href='{reverse('annotation:annotation-edit', args=[loaded_project.pk, annotation.pk])}']")
    page.wait_for_selector("#label-form")
    assert page.is_hidden("#draft-status")
    assert page.input_value("textarea[name=rationale]") == "Neither answers the question."
    page.fill("textarea[name=rationale]", "Neither answers it.")
    page.goto(live_server.url + reverse("annotation:project-queue", args=[loaded_project.pk]))
    # Left without saving: that draft is kept (and offered again on the next edit).
    assert page.evaluate("key => localStorage.getItem(key)", draft_key) is not None
    annotation.refresh_from_db()
    assert annotation.preference == "UNDECIDABLE" and annotation.rationale == "Neither answers the question."
    revision = AnnotationRevision.objects.get(annotation=annotation)
    assert revision.before["preference"] == "A_CLEARLY" and revision.after["preference"] == "UNDECIDABLE"
    assert page.js_errors == []


def guidelines_open(page: Any) -> bool:
    return bool(
        page.evaluate("() => { const p = document.getElementById('guidelines-panel'); return !!p && !p.hidden; }")
    )


def test_the_guidelines_open_once_on_a_first_visit_and_again_when_they_change(
    live_server: Any,
    loaded_project: Project,
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    first_id = open_label_page(page, live_server.url, loaded_project)
    # First visit: the panel opens by itself, loaded with this project's guidelines, in view.
    page.wait_for_selector("#guidelines-body h1")
    assert guidelines_open(page)
    assert page.is_visible("#guidelines-panel")
    assert in_view(page, "#guidelines-panel [data-close-guidelines]")
    assert "Check facts." in page.inner_text("#guidelines-body")
    assert page.get_attribute("#guidelines-button", "aria-expanded") == "true"
    shot(page, "label-guidelines.png")
    page.click("#guidelines-panel [data-close-guidelines]")
    assert not guidelines_open(page) and page.is_hidden("#guidelines-panel")

    # A reload: the same pair, the panel stays closed.
    page.reload()
    page.wait_for_selector("#label-form")
    page.wait_for_load_state("load")
    assert page.input_value("#label-form input[name=assignment]") == first_id
    assert not guidelines_open(page) and page.is_hidden("#guidelines-panel")

    # Labelling the next pair (htmx swap) does not open it either.
    advice_key = "123456789abcdefghijklmnopqrstuvwxyz"[DEFAULT_TAXONOMY.index("advice")]
    for key in ("1", "t", advice_key, "o", "1", "c", "1", "r"):
        page.keyboard.press(key)
    page.keyboard.type("Left is polite.")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "id => { const el = document.querySelector('#label-form input[name=assignment]'); return el && el.value !== id; }",
        arg=first_id,
    )
    assert Annotation.objects.filter(assignment_id=int(first_id)).exists()
    assert not guidelines_open(page)

    # The lead changes the guidelines: the next full visit opens them once more, with the new text.
    Project.objects.filter(pk=loaded_project.pk).update(guidelines="# Be careful\n\nCheck facts and sources.")
    page.reload()
    page.wait_for_selector("#guidelines-body h1")
    assert guidelines_open(page) and page.is_visible("#guidelines-panel")
    assert "Check facts and sources." in page.inner_text("#guidelines-body")
    page.keyboard.press("Escape")
    assert not guidelines_open(page)
    page.reload()
    page.wait_for_selector("#label-form")
    page.wait_for_load_state("load")
    assert not guidelines_open(page)
    assert page.js_errors == []
