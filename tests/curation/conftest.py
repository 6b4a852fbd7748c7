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
