"""The labelling page in a real headless Chromium: keyboard, htmx swap, active-time counter.

Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium). Without it the test is skipped, or fails
when REQUIRE_SERVICES=1 (CI), like the PostgreSQL tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from annotation.models import Annotation, Assignment, Project
from annotation.preference import shown_to_canonical
from tests.conftest import PASSWORD, REQUIRE_SERVICES

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still plain
# synchronous calls, made between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(tmp_path: Path) -> Any:
    if not Path(CHROMIUM).exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"Chromium not found at {CHROMIUM} and REQUIRE_SERVICES=1 is set")
        pytest.skip(f"needs Chromium at {CHROMIUM} (set CHROMIUM_PATH)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail("playwright is not installed and REQUIRE_SERVICES=1 is set")
        pytest.skip("needs the playwright package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        except BaseException:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
            # While Playwright's loop runs, asgiref gives the ORM calls made here their own
            # connection (context-local); close it, or PostgreSQL refuses to drop the test database.
            connections.close_all()


def log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def test_annotator_labels_with_the_keyboard_and_gets_the_next_pair_without_reload(
    live_server: Any, loaded_project: Project, users: dict[str, Any], browser_page: Any
) -> None:
    page = browser_page
    posted: list[str] = []
    page.on(
        "request",
        lambda request: (
            posted.append(request.post_data or "")
            if request.method == "POST" and request.url.endswith("/label/")
            else None
        ),
    )

    log_in(page, live_server.url, "alice")
    assert page.url.endswith(f"/projects/{loaded_project.pk}/queue/")
    page.click("text=Label next")
    page.wait_for_selector("#label-form")
    page.evaluate("window.__testMarker = 'first-load'")
    first_id = page.input_value("#label-form input[name=assignment]")
    titles = [" ".join(t.split()) for t in page.locator(".response-title").all_inner_texts()]
    # Letter badges: a digit beside a response would read as the preference key of that digit.
    assert titles == ["L Left response", "R Right response"]

    # The guidelines open in the side panel with one key, and close with Escape.
    if page.is_hidden("#guidelines-panel"):  # open already on a first visit
        page.keyboard.press("g")
    page.wait_for_selector("#guidelines-panel #guidelines-content h1")
    assert page.is_visible("#guidelines-panel") and "Be careful" in page.inner_text("#guidelines-panel")
    page.keyboard.press("Escape")
    assert page.is_hidden("#guidelines-panel")

    page.wait_for_timeout(300)  # some active time on the pair
    page.keyboard.press("1")  # left clearly better
    assert page.is_checked("input[name=preference][value=LEFT_CLEARLY]")
    page.click("label.chip:has(input[name=task_category][value=advice])")
    page.click("label.chip:has(input[name=objectivity][value=opinion])")
    page.click("label.chip:has(input[name=controversiality][value=low])")
    page.click("label.chip:has(input[name=desired_attributes][value=accuracy])")
    page.fill("input[name=guideline]", "allows speculation")
    page.press("input[name=guideline]", "Enter")  # must not submit the label
    page.click("textarea[name=rationale]")
    # Digits typed into the rationale must not change the preference.
    page.keyboard.type("Left is 2x more polite; 4 stars.")
    assert page.is_checked("input[name=preference][value=LEFT_CLEARLY]")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement === document.body")
    page.click("textarea[name=rationale]")
    page.keyboard.press("Control+Enter")  # works from inside the textarea too

    page.wait_for_function(
        "id => { const el = document.querySelector('#label-form input[name=assignment]');"
        " return el && el.value !== id; }",
        arg=first_id,
    )
    assert page.evaluate("window.__testMarker") == "first-load"  # swapped by htmx, no page load
    assert "Saved. Here is the next pair." in page.inner_text("#label-panel")
    assert page.evaluate("document.querySelectorAll('#label-panel').length") == 1

    assignment = Assignment.objects.get(pk=int(first_id))
    annotation = Annotation.objects.get(assignment=assignment)
    assert annotation.annotator == users["alice"]
    assert annotation.preference == shown_to_canonical("LEFT_CLEARLY", assignment.order_shown)
    assert annotation.preference == ("A_CLEARLY" if assignment.order_shown == "AB" else "B_CLEARLY")
    assert annotation.task_category == "advice"
    assert (annotation.objectivity, annotation.controversiality) == ("opinion", "low")
    assert annotation.desired_attributes == ["accuracy"]
    assert annotation.guideline == "allows speculation"
    assert annotation.rationale == "Left is 2x more polite; 4 stars."
    assert annotation.time_spent_ms > 0
    # The browser's own count was sent (not the server's wall-time fallback).
    sent = [dict(part.split("=", 1) for part in body.split("&") if "=" in part) for body in posted]
    assert len(sent) == 1 and int(sent[0]["time_spent_ms"]) > 0

    # The second pair: an incomplete submit shows inline errors, still without a reload.
    second_id = page.input_value("#label-form input[name=assignment]")
    # The new pair starts with nothing focused, so the digit keys choose again.
    assert page.evaluate("document.activeElement === document.body")
    page.keyboard.press("4")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#label-errors")
    assert page.input_value("#label-form input[name=assignment]") == second_id
    assert page.is_checked("input[name=preference][value=RIGHT_CLEARLY]")  # kept
    assert page.evaluate("window.__testMarker") == "first-load"
    assert Annotation.objects.count() == 1
    assert page.js_errors == []
