from __future__ import annotations

from django.apps import AppConfig


class CurationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from annotation.signals import annotation_submitted, pair_completed
        from curation import receivers
        from curation.datasets import training_sources
        from rewardmodel.sources import source_provider_register

        annotation_submitted.connect(receivers.on_annotation_submitted, dispatch_uid="curation.annotation_submitted")
        pair_completed.connect(receivers.on_pair_completed, dispatch_uid="curation.pair_completed")
        # The Models page offers each project's D_gold and dataset versions as training data.
        source_provider_register(training_sources)
