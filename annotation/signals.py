"""Signals the annotation app sends, so apps above it (curation) can react without being imported here.

Both are sent after the submitting transaction commits.
"""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: annotation_id, pair_id, project_id, is_retest
annotation_submitted = Signal()
# kwargs: pair_id, project_id: the pair now has all its N labels
pair_completed = Signal()
