"""A round with nothing to work on is warned about before it starts, and its page says what is missing."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from curation.charts import line_chart
from curation.models import CurationRound
from curation.round_checks import round_readiness
from tests.conftest import PASSWORD
from tests.curation.helpers import make_batch

pytestmark = pytest.mark.usefixtures("curation_urls")


def _form(base: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_model": base,
        "k_max": 8,
        "gold_val_fraction": 0.5,
        "num_epochs": 1,
        "learning_rate": 1e-4,
        "batch_size": 4,
        "max_length": 64,
        "max_steps": 4,
        **extra,
    }


def test_readiness_names_what_is_missing(project: Any) -> None:
    empty = round_readiness(project)
    assert not empty.ready and len(empty.missing) == 3  # no verified pairs, no training pairs, no pool
    make_batch(project, 4)
    ready = round_readiness(project)
    assert (ready.n_verified, ready.n_silver, ready.n_pool) == (0, 4, 4)
    assert len(ready.missing) == 1 and "No verified pairs" in ready.missing[0]


def test_starting_a_round_without_verified_pairs_needs_a_confirmation(
    client: Any, project: Any, users: dict[str, Any], tiny_base: str, django_capture_on_commit_callbacks: Any
) -> None:
    make_batch(project, 4)
    client.login(username="adam", password=PASSWORD)
    url = reverse("curation:round-list", args=[project.pk])
    page = client.get(url).content.decode()
    assert 'id="round-readiness" class="alert alert-warning"' in page and "No verified pairs" in page

    response = client.post(url, _form(tiny_base))
    assert response.status_code == 200 and "tick to start it anyway" in response.content.decode()
    assert not CurationRound.objects.exists()

    with (
        mock.patch("curation.tasks.curation_round_run_task.delay"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(url, _form(tiny_base, start_anyway="on"), follow=True)
    round_ = CurationRound.objects.get()
    html = response.content.decode()
    assert "GPU worker" not in html and "No verified pairs" in html  # the round page says what is missing

    CurationRound.objects.filter(pk=round_.pk).update(status=CurationRound.Status.DONE, metrics={"n_verified": 0})
    detail = client.get(reverse("curation:round-detail", args=[project.pk, round_.pk])).content.decode()
    assert 'id="round-shortfall"' in detail and "scored nothing and retrieved nothing" in detail


def test_the_last_time_label_of_a_chart_ends_inside_it() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    chart = line_chart({"alpha": [(t0, 0.5), (t0 + timedelta(hours=3), 0.9)]})
    svg = render_to_string("curation/partials/chart.html", {"chart": chart})
    anchors = [part.split('"')[0] for part in svg.split('text-anchor="')[1:]]
    x_labels = anchors[-len(chart.x_ticks) :]
    assert x_labels[-1] == "end" and set(x_labels[:-1]) == {"middle"}
