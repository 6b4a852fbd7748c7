"""Signals the annotation app sends, so apps above it (curation) can react without being imported here.

``annotation_submitted`` and ``pair_completed`` are sent after the submitting transaction commits.
``pair_labels_locked`` is a question rather than news: its receivers answer which of the given pairs
have final labels (curation: verified), so annotators can no longer edit their labels on them.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: annotation_id, pair_id, project_id, is_retest, edited (True when an existing label was changed)
annotation_submitted = Signal()
# kwargs: pair_id, project_id: the pair now has all its N labels
pair_completed = Signal()
# kwargs: pair_ids (a list of ints). Each receiver returns the set of those pair ids whose labels are
# final; annotation.selectors.pair_ids_with_final_labels takes the union.
pair_labels_locked = Signal()
