"""Translate between what an annotator saw (left/right) and the canonical A/B label. No Django imports.

Each assignment shows the pair's two responses in its own random order (``Assignment.order_shown``):
"AB" puts response A on the left, "BA" puts response B on the left. Annotators only ever see and
answer in left/right terms, so they cannot learn which response the source file preferred (that
one is always stored as A); the label is stored in canonical A/B terms.
"""

from __future__ import annotations

ORDERS = ("AB", "BA")

LEFT_CLEARLY = "LEFT_CLEARLY"
LEFT_SLIGHTLY = "LEFT_SLIGHTLY"
RIGHT_SLIGHTLY = "RIGHT_SLIGHTLY"
RIGHT_CLEARLY = "RIGHT_CLEARLY"
UNDECIDABLE = "UNDECIDABLE"

# (value, label) in the order a form offers them, like Django's ``choices``.
SHOWN_CHOICES: tuple[tuple[str, str], ...] = (
    (LEFT_CLEARLY, "Left is clearly better"),
    (LEFT_SLIGHTLY, "Left is slightly better"),
    (RIGHT_SLIGHTLY, "Right is slightly better"),
    (RIGHT_CLEARLY, "Right is clearly better"),
    (UNDECIDABLE, "Can't decide"),
)
SHOWN_VALUES: tuple[str, ...] = tuple(value for value, _label in SHOWN_CHOICES)

_STRENGTHS = ("CLEARLY", "SLIGHTLY")


def _check_order(order_shown: str) -> None:
    if order_shown not in ORDERS:
        raise ValueError(f"order_shown must be one of {', '.join(ORDERS)}, got {order_shown!r}")


def _letter_on(side: str, order_shown: str) -> str:
    """The canonical letter shown on ``side`` ("LEFT" or "RIGHT")."""
    return order_shown[0] if side == "LEFT" else order_shown[1]


def shown_to_canonical(choice: str, order_shown: str) -> str:
    """``LEFT_CLEARLY`` with order "BA" -> ``B_CLEARLY``; ``UNDECIDABLE`` stays ``UNDECIDABLE``.

    Raises ValueError for an unknown choice or order.
    """
    _check_order(order_shown)
    if choice == UNDECIDABLE:
        return UNDECIDABLE
    side, _, strength = choice.partition("_")
    if side not in ("LEFT", "RIGHT") or strength not in _STRENGTHS:
        raise ValueError(f"choice must be one of {', '.join(SHOWN_VALUES)}, got {choice!r}")
    return f"{_letter_on(side, order_shown)}_{strength}"


def canonical_to_shown(preference: str, order_shown: str) -> str:
    """Inverse of :func:`shown_to_canonical`: ``B_SLIGHTLY`` with order "BA" -> ``LEFT_SLIGHTLY``.

    Raises ValueError for an unknown preference or order.
    """
    _check_order(order_shown)
    if preference == UNDECIDABLE:
        return UNDECIDABLE
    letter, _, strength = preference.partition("_")
    if letter not in ("A", "B") or strength not in _STRENGTHS:
        raise ValueError(f"unknown canonical preference {preference!r}")
    side = "LEFT" if _letter_on("LEFT", order_shown) == letter else "RIGHT"
    return f"{side}_{strength}"


def responses_in_order(response_a: str, response_b: str, order_shown: str) -> tuple[str, str]:
    """The (left, right) texts for an assignment shown in ``order_shown``."""
    _check_order(order_shown)
    return (response_a, response_b) if order_shown == "AB" else (response_b, response_a)
