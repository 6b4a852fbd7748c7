"""annotation.ordering: left/right as shown <-> canonical A/B (pure, no database)."""

from __future__ import annotations

import pytest

from annotation.models import Preference
from annotation.ordering import SHOWN_VALUES, canonical_to_shown, responses_in_order, shown_to_canonical


@pytest.mark.parametrize(
    ("choice", "order", "canonical"),
    [
        ("LEFT_CLEARLY", "AB", "A_CLEARLY"),
        ("LEFT_SLIGHTLY", "AB", "A_SLIGHTLY"),
        ("RIGHT_SLIGHTLY", "AB", "B_SLIGHTLY"),
        ("RIGHT_CLEARLY", "AB", "B_CLEARLY"),
        ("LEFT_CLEARLY", "BA", "B_CLEARLY"),
        ("LEFT_SLIGHTLY", "BA", "B_SLIGHTLY"),
        ("RIGHT_SLIGHTLY", "BA", "A_SLIGHTLY"),
        ("RIGHT_CLEARLY", "BA", "A_CLEARLY"),
        ("UNDECIDABLE", "AB", "UNDECIDABLE"),
        ("UNDECIDABLE", "BA", "UNDECIDABLE"),
    ],
)
def test_shown_maps_to_canonical_and_back(choice: str, order: str, canonical: str) -> None:
    assert shown_to_canonical(choice, order) == canonical
    assert canonical_to_shown(canonical, order) == choice


@pytest.mark.parametrize("order", ["AB", "BA"])
def test_mapping_covers_every_canonical_preference(order: str) -> None:
    assert {shown_to_canonical(c, order) for c in SHOWN_VALUES} == set(Preference.values)


def test_responses_in_order() -> None:
    assert responses_in_order("a", "b", "AB") == ("a", "b")
    assert responses_in_order("a", "b", "BA") == ("b", "a")


@pytest.mark.parametrize(
    ("func", "value", "order"),
    [
        (shown_to_canonical, "A_CLEARLY", "AB"),
        (shown_to_canonical, "LEFT_MAYBE", "AB"),
        (shown_to_canonical, "LEFT_CLEARLY", "XY"),
        (canonical_to_shown, "LEFT_CLEARLY", "AB"),
        (canonical_to_shown, "C_CLEARLY", "BA"),
    ],
)
def test_unknown_values_raise(func: object, value: str, order: str) -> None:
    with pytest.raises(ValueError):
        func(value, order)  # type: ignore[operator]
