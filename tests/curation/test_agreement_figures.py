"""Agreement figures computed now from the labels (regular labels only; retests never count)."""

from __future__ import annotations

from typing import Any

import pytest

from curation.agreement_figures import agreement_figures
from tests.curation.helpers import PASSING, label_matrix, make_batch


def test_agreement_figures_selector_counts_regular_labels_only(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    figures = agreement_figures(project)
    assert (figures.n_units, figures.n_labels) == (3, 9)
    assert figures.preference == pytest.approx(889 / 1017)
