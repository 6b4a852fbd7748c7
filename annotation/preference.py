"""The preference code: its one spelling, parsing, building, flipping, and the order shown. No Django imports.

A label is stored in canonical A/B terms: ``A_CLEARLY``, ``A_SLIGHTLY``, ``B_SLIGHTLY``, ``B_CLEARLY``
or ``UNDECIDABLE`` (response A is always the one the source file preferred). Every other spelling
in the code base (curation's ``side``/``strength`` columns, an LLM judge's answer, a dispute
decision) is parsed and built here, never split by hand.

Each assignment shows the pair's two responses in its own random order (``Assignment.order_shown``):
"AB" puts response A on the left, "BA" puts response B on the left. Annotators only ever see and
answer in left/right terms, so they cannot learn which response the source preferred. The
left/right to A/B translation (:func:`shown_to_canonical`) is called once, by the service that
holds the order shown (``annotation.services.annotation_submit`` and the API/page that feed it).
"""

from __future__ import annotations

from typing import NamedTuple

# --- canonical codes -----------------------------------------------------------------------------

A = "A"
B = "B"
SIDES: tuple[str, ...] = (A, B)
#: Strength words, lower-case as curation stores them and the export writes them.
CLEARLY = "clearly"
SLIGHTLY = "slightly"
STRENGTHS: tuple[str, ...] = (CLEARLY, SLIGHTLY)

A_CLEARLY = "A_CLEARLY"
A_SLIGHTLY = "A_SLIGHTLY"
B_SLIGHTLY = "B_SLIGHTLY"
B_CLEARLY = "B_CLEARLY"
UNDECIDABLE = "UNDECIDABLE"
#: The decided codes in ordinal order (A strongly ... B strongly), as agreement's ordinal scale needs.
DECIDED: tuple[str, ...] = (A_CLEARLY, A_SLIGHTLY, B_SLIGHTLY, B_CLEARLY)
CODES: tuple[str, ...] = (*DECIDED, UNDECIDABLE)


class Label(NamedTuple):
    """A parsed code: ``side`` "A"/"B" and ``strength`` "clearly"/"slightly"; both None for can't decide."""

    side: str | None
    strength: str | None


def parse(code: str) -> Label:
    """``"B_SLIGHTLY"`` -> ``Label("B", "slightly")``; ``"UNDECIDABLE"`` -> ``Label(None, None)``.

    Raises ValueError naming the code when it is not one of :data:`CODES`.
    """
    if code == UNDECIDABLE:
        return Label(None, None)
    if not isinstance(code, str) or code not in DECIDED:
        raise ValueError(f"preference must be one of {', '.join(CODES)}, got {code!r}")
    side, _, strength = code.partition("_")
    return Label(side, strength.lower())


def build(side: str, strength: str) -> str:
    """``build("A", "clearly")`` -> ``"A_CLEARLY"`` (strength in either case). Raises ValueError on bad parts."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    word = strength.lower() if isinstance(strength, str) else strength
    if word not in STRENGTHS:
        raise ValueError(f"strength must be one of {', '.join(STRENGTHS)}, got {strength!r}")
    return f"{side}_{word.upper()}"


def side_of(code: str) -> str | None:
    """ "A", "B", or None for can't decide."""
    return parse(code).side


def other_side(side: str) -> str:
    """ "A" -> "B" and back. Raises ValueError for anything else."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    return B if side == A else A


def flip(code: str) -> str:
    """The same judgement with A and B swapped: ``A_CLEARLY`` -> ``B_CLEARLY``; can't decide stays."""
    side, strength = parse(code)
    if side is None or strength is None:
        return UNDECIDABLE
    return build(other_side(side), strength)


def chosen_rejected(response_a: str, response_b: str, side: str) -> tuple[str, str]:
    """The (chosen, rejected) texts when ``side`` won."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    return (response_a, response_b) if side == A else (response_b, response_a)


# --- the order shown -----------------------------------------------------------------------------

ORDERS = ("AB", "BA")
LEFT = "LEFT"
RIGHT = "RIGHT"

LEFT_CLEARLY = "LEFT_CLEARLY"
LEFT_SLIGHTLY = "LEFT_SLIGHTLY"
RIGHT_SLIGHTLY = "RIGHT_SLIGHTLY"
RIGHT_CLEARLY = "RIGHT_CLEARLY"

# (value, label) in the order a form offers them, like Django's ``choices``.
SHOWN_CHOICES: tuple[tuple[str, str], ...] = (
    (LEFT_CLEARLY, "Left is clearly better"),
    (LEFT_SLIGHTLY, "Left is slightly better"),
    (RIGHT_SLIGHTLY, "Right is slightly better"),
    (RIGHT_CLEARLY, "Right is clearly better"),
    (UNDECIDABLE, "Can't decide"),
)
SHOWN_VALUES: tuple[str, ...] = tuple(value for value, _label in SHOWN_CHOICES)


def _check_order(order_shown: str) -> None:
    if order_shown not in ORDERS:
        raise ValueError(f"order_shown must be one of {', '.join(ORDERS)}, got {order_shown!r}")


def side_shown_on(screen_side: str, order_shown: str) -> str:
    """The canonical letter shown on ``screen_side`` ("LEFT" or "RIGHT") in ``order_shown``."""
    _check_order(order_shown)
    if screen_side not in (LEFT, RIGHT):
        raise ValueError(f"screen side must be LEFT or RIGHT, got {screen_side!r}")
    return order_shown[0] if screen_side == LEFT else order_shown[1]


def shown_to_canonical(choice: str, order_shown: str) -> str:
    """``LEFT_CLEARLY`` with order "BA" -> ``B_CLEARLY``; ``UNDECIDABLE`` stays ``UNDECIDABLE``.

    Raises ValueError for an unknown choice or order.
    """
    _check_order(order_shown)
    if choice == UNDECIDABLE:
        return UNDECIDABLE
    screen_side, _, strength = choice.partition("_") if isinstance(choice, str) else ("", "", "")
    if screen_side not in (LEFT, RIGHT) or strength.lower() not in STRENGTHS or strength != strength.upper():
        raise ValueError(f"choice must be one of {', '.join(SHOWN_VALUES)}, got {choice!r}")
    return build(side_shown_on(screen_side, order_shown), strength)


def canonical_to_shown(code: str, order_shown: str) -> str:
    """Inverse of :func:`shown_to_canonical`: ``B_SLIGHTLY`` with order "BA" -> ``LEFT_SLIGHTLY``.

    Raises ValueError for an unknown code or order.
    """
    _check_order(order_shown)
    side, strength = parse(code)
    if side is None or strength is None:
        return UNDECIDABLE
    screen_side = LEFT if side_shown_on(LEFT, order_shown) == side else RIGHT
    return f"{screen_side}_{strength.upper()}"


def responses_in_order(response_a: str, response_b: str, order_shown: str) -> tuple[str, str]:
    """The (left, right) texts for an assignment shown in ``order_shown``."""
    _check_order(order_shown)
    return (response_a, response_b) if order_shown == "AB" else (response_b, response_a)
