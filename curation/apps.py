from __future__ import annotations

from django.apps import AppConfig


class CurationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from annotation.signals import annotation_submitted, pair_completed, pair_labels_locked
        from curation import receivers
        from curation.datasets import training_sources
        from rewardmodel.sources import source_provider_register

        annotation_submitted.connect(receivers.on_annotation_submitted, dispatch_uid="curation.annotation_submitted")
        pair_completed.connect(receivers.on_pair_completed, dispatch_uid="curation.pair_completed")
        # A verified pair's labels are final: annotators can no longer edit them.
        pair_labels_locked.connect(receivers.verified_pair_ids, dispatch_uid="curation.pair_labels_locked")
        # The Models page offers each project's D_gold and dataset versions as training data.
        source_provider_register(training_sources)
