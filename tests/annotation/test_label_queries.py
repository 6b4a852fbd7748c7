"""The labelling page's SQL budget: submit-and-next at most 10 queries, tool panels never fetched with a pair.

Counted with pytest-django's ``django_assert_max_num_queries`` (``connection.queries``), under
``transactional_db`` so that the services' ``atomic`` blocks are real transactions as in production
(inside a test transaction they would add SAVEPOINT statements that production never sends).
Transaction control (BEGIN/COMMIT, which Django logs for both backends) is not counted against the
budget: two transactions (the submit, the claim) add four such statements.
The first GET claims a pair and fills the caches (session, progress figures), as the page load
before any submit does.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from annotation.models import Annotation, Assignment, Project
from tests.annotation.test_views import HX, client_for, hidden_assignment_id, label_data, label_url, open_claim

pytestmark = pytest.mark.django_db(transaction=True)

SUBMIT_AND_NEXT_BUDGET = 10
#: BEGIN + COMMIT of the submit's and of the claim's transaction.
TRANSACTION_CONTROL = 4


def _is_transaction_control(sql: str) -> bool:
    return sql.split(None, 1)[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def test_submit_and_next_costs_at_most_ten_queries(
    loaded_project: Project, users: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    for _ in range(3):  # every pair of a sitting, not just the first
        assignment = open_claim(loaded_project, users["alice"])
        with django_assert_max_num_queries(SUBMIT_AND_NEXT_BUDGET + TRANSACTION_CONTROL) as captured:
            response = client.post(label_url(loaded_project), label_data(assignment.pk), **HX)
        statements = [q["sql"] for q in captured.captured_queries if not _is_transaction_control(q["sql"])]
        assert len(statements) <= SUBMIT_AND_NEXT_BUDGET, statements
        html = response.content.decode()
        assert response.status_code == 200 and "Saved. Here is the next pair." in html
        assert Annotation.objects.filter(assignment=assignment).exists()
        assert hidden_assignment_id(html) == open_claim(loaded_project, users["alice"]).pk != assignment.pk


def test_the_next_pair_fetches_no_tool_panel(loaded_project: Project, users: dict[str, Any]) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    html = client.post(label_url(loaded_project), label_data(assignment.pk), **HX).content.decode()
    # Panels are fetched when their tab is opened (label.js sends "tool-open"), never on load.
    assert 'hx-trigger="load"' not in html
    pair_id = open_claim(loaded_project, users["alice"]).pair_id
    assert html.count('hx-trigger="tool-open once"') >= 3
    assert reverse("annotation:tools:search", args=[pair_id]) in html


def test_progress_moves_with_each_label_without_recounting(
    loaded_project: Project, users: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = client_for(users["alice"])
    first = client.get(label_url(loaded_project), **HX).content.decode()
    assert '<strong data-progress="session">0</strong>' in first
    total = loaded_project.pairs.count()
    # 20 pairs, alice holds one: 19 more could be given to her.
    assert f'<strong data-progress="remaining">{total - 1}</strong>' in first
    assignment = open_claim(loaded_project, users["alice"])
    html = client.post(label_url(loaded_project), label_data(assignment.pk), **HX).content.decode()
    assert '<strong data-progress="session">1</strong>' in html
    assert f'<strong data-progress="remaining">{total - 2}</strong>' in html
    # A new log-in session starts again at 0; the queue figure is the annotator's, whatever the session.
    other = client_for(users["alice"])
    again = other.get(label_url(loaded_project), **HX).content.decode()
    assert '<strong data-progress="session">0</strong>' in again
    assert f'<strong data-progress="remaining">{total - 2}</strong>' in again
    assert Assignment.objects.filter(annotator=users["alice"], status=Assignment.Status.CLAIMED).count() == 1
