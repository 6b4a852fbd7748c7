"""The judges' side of stage 2: which pairs go to them and what their answer means for the filter.

Stage 2 calls one function, named by the ``STAGE2_JUDGE_FUNCTION`` setting (default
``curation.judges.services.judge_pairs``, issue 12): ``judge_pairs(pair_ids) -> {pair_id: answer}``
where an answer is the side the judges prefer (``"A"``/``"B"``), ``"tie"`` or ``"failed"``, or an
object with such a ``result``/``side``/``choice``/``outcome`` attribute (``curation.judges.voting.Outcome``).
When no judge function is installed, or its module's ``judges_enabled()`` returns none, every
pair's answer is :data:`rules.JUDGE_NONE`, which the filter treats as "best RM disagrees"
(issue 11: until judges exist).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from curation.stage2 import rules

logger = logging.getLogger(__name__)

JudgeFunction = Callable[[Sequence[int]], Mapping[int, Any]]


def judge_function() -> JudgeFunction | None:
    """The installed judge entry point, or None (not installed: stage 2 runs without judges)."""
    path = str(getattr(settings, "STAGE2_JUDGE_FUNCTION", "curation.judges.services.judge_pairs") or "")
    if not path:
        return None
    try:
        function = import_string(path)
    except ImportError:
        return None
    enabled = getattr(import_module(path.rsplit(".", 1)[0]), "judges_enabled", None)
    if callable(enabled) and not enabled():
        return None  # installed, but no judge is configured
    return function  # type: ignore[no-any-return]


def _side(answer: Any) -> str:
    for attr in ("result", "side", "choice", "outcome"):
        if not isinstance(answer, str) and hasattr(answer, attr):
            answer = getattr(answer, attr)
            break
    return str(answer) if answer is not None else ""


def to_outcome(answer: Any, label: str) -> str:
    """What an answer says about the original label ``label`` (``"A"``/``"B"``): agree, disagree, tie, failed."""
    side = _side(answer).strip()
    if side.upper() in ("A", "B"):
        return rules.JUDGE_AGREE if side.upper() == label else rules.JUDGE_DISAGREE
    if side.lower() == "tie":
        return rules.JUDGE_TIE
    if side.lower() in ("", "none"):
        return rules.JUDGE_NONE
    return rules.JUDGE_FAILED


def judge_outcomes(labels: Mapping[int, str], function: JudgeFunction | None = None) -> dict[int, str]:
    """The judges' outcome for each pair id in ``labels`` (pair id -> original label side).

    Never raises for a judge failure: an exception ends every asked pair as ``failed`` (the filter
    then treats them as "best RM disagrees") and is logged.
    """
    if not labels:
        return {}
    function = function if function is not None else judge_function()
    if function is None:
        return dict.fromkeys(labels, rules.JUDGE_NONE)
    try:
        answers = function(list(labels))
    except Exception:
        logger.exception("the judges failed on %s pairs; they count as not confirmed", len(labels))
        return dict.fromkeys(labels, rules.JUDGE_FAILED)
    return {pid: to_outcome(answers.get(pid), label) for pid, label in labels.items()}
