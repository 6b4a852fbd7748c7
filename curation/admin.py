from __future__ import annotations

from django.contrib import admin

from curation.models import (
    AgreementSnapshot,
    BatchGate,
    CurationSettings,
    Dispute,
    DisputeResolution,
    PairScore,
    RetestResult,
    VerifiedPair,
)


@admin.register(CurationSettings)
class CurationSettingsAdmin(admin.ModelAdmin):
    list_display = ["project", "alpha_threshold", "gate_min_units", "retest_rate", "split_rule", "updated_at"]
    raw_id_fields = ["project"]


@admin.register(BatchGate)
class BatchGateAdmin(admin.ModelAdmin):
    list_display = ["batch_key", "project", "status", "alpha", "threshold", "n_complete", "n_pairs", "computed_at"]
    list_filter = ["status"]
    raw_id_fields = ["project", "import_batch", "accepted_by"]


@admin.register(AgreementSnapshot)
class AgreementSnapshotAdmin(admin.ModelAdmin):
    list_display = ["project", "scope", "scope_key", "n_units", "n_labels", "computed_at"]
    list_filter = ["scope"]
    raw_id_fields = ["project"]


class DisputeResolutionInline(admin.TabularInline):
    model = DisputeResolution
    extra = 0
    raw_id_fields = ["lead"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # the history is append-only


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = ["pair", "project", "reason", "status", "created_at"]
    list_filter = ["status", "reason"]
    raw_id_fields = ["pair", "project"]
    inlines = [DisputeResolutionInline]


@admin.register(VerifiedPair)
class VerifiedPairAdmin(admin.ModelAdmin):
    list_display = ["pair", "project", "side", "strength", "via", "pool", "retest_status", "verified_at"]
    list_filter = ["via", "pool", "retest_status"]
    raw_id_fields = ["pair", "project", "verified_by", "retest_offered_to"]


@admin.register(RetestResult)
class RetestResultAdmin(admin.ModelAdmin):
    list_display = ["pair", "annotator", "retest_preference", "verified_side", "agrees", "created_at"]
    list_filter = ["agrees"]
    raw_id_fields = ["project", "pair", "annotator", "annotation"]


@admin.register(PairScore)
class PairScoreAdmin(admin.ModelAdmin):
    list_display = ["pair", "model_version", "r_a", "r_b", "p", "scored_at"]
    raw_id_fields = ["pair", "model_version"]
