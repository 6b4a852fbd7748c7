from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _curation_settings(settings: Any) -> None:
    settings.CURATION_AGREEMENT_DEBOUNCE_S = 0
    # Retest draws are random: a test that counts verified pairs or offers must not depend on a
    # 5% draw. Tests of the retest itself set a rate (and a seeded RNG) explicitly.
    settings.CURATION_RETEST_RATE = 0.0


@pytest.fixture
def trio(users: dict[str, Any]) -> list[Any]:
    return [users["alice"], users["bob"], users["carol"]]


@pytest.fixture
def curation_urls(settings: Any) -> None:
    """Serve curation under /curation/ whether or not config/urls.py includes it yet."""
    settings.ROOT_URLCONF = "tests.curation.urls"


@pytest.fixture
def no_broker() -> Any:
    """For transactional tests that commit labels but run no worker: send no task anywhere."""
    from unittest import mock

    with mock.patch("celery.app.task.Task.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def curated(project: Any, trio: list[Any]) -> dict[str, Any]:
    """A passing batch with one dispute (can't decide) and a flagged batch with one (strength split)."""
    from curation.agreement_refresh import project_refresh
    from curation.models import Dispute
    from tests.curation.helpers import FAILING, WITH_MISSING, label_matrix, make_batch, settle

    _, good = make_batch(project, 3, "good.jsonl")
    _, bad = make_batch(project, 3, "bad.jsonl")
    label_matrix(project, trio, list(zip(good + bad, WITH_MISSING + FAILING, strict=True)))
    ok_gate = settle(project, good)
    flagged_gate = settle(project, bad)
    project_refresh(project_id=project.pk)
    return {
        "ok": ok_gate,
        "flagged": flagged_gate,
        "dispute": Dispute.objects.get(pair=good[2]),
        "flagged_dispute": Dispute.objects.get(pair=bad[2]),
    }
