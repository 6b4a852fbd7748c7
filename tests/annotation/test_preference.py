"""annotation.preference: the one owner of the preference code (pure, no database)."""

from __future__ import annotations

import pytest

from annotation.models import Preference
from annotation.preference import (
    CODES,
    DECIDED,
    SHOWN_VALUES,
    Label,
    build,
    canonical_to_shown,
    chosen_rejected,
    flip,
    other_side,
    parse,
    responses_in_order,
    shown_to_canonical,
    side_of,
    side_shown_on,
)


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
        (shown_to_canonical, "LEFT_clearly", "AB"),
        (canonical_to_shown, "LEFT_CLEARLY", "AB"),
        (canonical_to_shown, "C_CLEARLY", "BA"),
    ],
)
def test_unknown_values_raise(func: object, value: str, order: str) -> None:
    with pytest.raises(ValueError):
        func(value, order)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("A_CLEARLY", Label("A", "clearly")),
        ("A_SLIGHTLY", Label("A", "slightly")),
        ("B_SLIGHTLY", Label("B", "slightly")),
        ("B_CLEARLY", Label("B", "clearly")),
        ("UNDECIDABLE", Label(None, None)),
    ],
)
def test_parse_and_build_round_trip(code: str, label: Label) -> None:
    assert parse(code) == label
    assert side_of(code) == label.side
    if label.side is not None and label.strength is not None:
        assert build(label.side, label.strength) == code
        assert build(label.side, label.strength.upper()) == code  # the code's own spelling is accepted too


def test_the_model_choices_are_the_module_codes() -> None:
    assert tuple(Preference.values) == CODES


@pytest.mark.parametrize("bad", ["a_clearly", "A_MAYBE", "C_CLEARLY", "A", "", "LEFT_CLEARLY", None, 3])
def test_parse_rejects_anything_else_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match="preference must be one of"):
        parse(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("side", "strength"), [("C", "clearly"), ("a", "clearly"), ("A", "very"), ("A", "")])
def test_build_rejects_bad_parts(side: str, strength: str) -> None:
    with pytest.raises(ValueError):
        build(side, strength)


@pytest.mark.parametrize(
    ("code", "flipped"),
    [
        ("A_CLEARLY", "B_CLEARLY"),
        ("A_SLIGHTLY", "B_SLIGHTLY"),
        ("B_SLIGHTLY", "A_SLIGHTLY"),
        ("UNDECIDABLE", "UNDECIDABLE"),
    ],
)
def test_flip_swaps_sides_and_keeps_strength(code: str, flipped: str) -> None:
    assert flip(code) == flipped
    assert flip(flip(code)) == code


def test_other_side_and_chosen_rejected() -> None:
    assert (other_side("A"), other_side("B")) == ("B", "A")
    assert chosen_rejected("a", "b", "A") == ("a", "b")
    assert chosen_rejected("a", "b", "B") == ("b", "a")
    with pytest.raises(ValueError):
        other_side("X")
    with pytest.raises(ValueError):
        chosen_rejected("a", "b", "UNDECIDABLE")


@pytest.mark.parametrize("order", ["AB", "BA"])
def test_flipping_the_order_shown_flips_the_code(order: str) -> None:
    other = "BA" if order == "AB" else "AB"
    for code in DECIDED:
        assert canonical_to_shown(code, order) == canonical_to_shown(flip(code), other)


def test_side_shown_on() -> None:
    assert (side_shown_on("LEFT", "AB"), side_shown_on("RIGHT", "AB")) == ("A", "B")
    assert (side_shown_on("LEFT", "BA"), side_shown_on("RIGHT", "BA")) == ("B", "A")
    with pytest.raises(ValueError):
        side_shown_on("MIDDLE", "AB")
