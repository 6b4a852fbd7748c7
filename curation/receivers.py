"""Reactions to the annotation app's signals (connected in ``CurationConfig.ready``).

The signals are sent after the submitting transaction commits, in the web process: a receiver
only enqueues a task. ``robust=True``: a broker outage must not turn an annotator's saved label
into an error page; the label is stored, and the beat sweep or the next label catches up.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def on_annotation_submitted(sender: Any, *, annotation_id: int, pair_id: int, is_retest: bool, **kwargs: Any) -> None:
    from curation.tasks import agreement_request_task, retest_record_task

    if is_retest:
        transaction.on_commit(lambda: retest_record_task.delay(annotation_id=annotation_id), robust=True)
    else:
        transaction.on_commit(lambda: agreement_request_task.delay(pair_id=pair_id), robust=True)


def on_pair_completed(sender: Any, *, pair_id: int, **kwargs: Any) -> None:
    from curation.tasks import pair_completed_task

    transaction.on_commit(lambda: pair_completed_task.delay(pair_id=pair_id), robust=True)


def verified_pair_ids(sender: Any, *, pair_ids: list[int], **kwargs: Any) -> set[int]:
    """Answer annotation's ``pair_labels_locked``: the given pairs that are verified (their labels are final).

    Once curation holds a pair's verdict, an annotator can no longer edit their label on it.
    """
    from curation.models import VerifiedPair

    return set(VerifiedPair.objects.filter(pair_id__in=pair_ids).values_list("pair_id", flat=True))
