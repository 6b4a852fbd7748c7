"""Curation API, mounted at /api/ (namespace "curation_api"); leads and admins, admins start rounds and training."""

from __future__ import annotations

from django.urls import path

from curation import apis, export_apis

app_name = "curation_api"
P = "projects/<int:project_id>/"
urlpatterns = [
    path(P + "agreement/", apis.AgreementApi.as_view(), name="agreement"),
    path(P + "disputes/", apis.DisputeListApi.as_view(), name="dispute-list"),
    path(P + "disputes/<int:dispute_id>/", apis.DisputeDetailApi.as_view(), name="dispute-detail"),
    path(P + "disputes/<int:dispute_id>/resolve/", apis.DisputeResolveApi.as_view(), name="dispute-resolve"),
    path(P + "disputes/<int:dispute_id>/discard/", apis.DisputeDiscardApi.as_view(), name="dispute-discard"),
    path(P + "verified-pairs/", apis.VerifiedPairListApi.as_view(), name="verified-pair-list"),
    path(P + "pairs/<int:pair_id>/verdict/", apis.PairVerdictApi.as_view(), name="pair-verdict"),
    path(P + "export/", export_apis.ProjectExportApi.as_view(), name="project-export"),  # the path it always had
    path(P + "dataset-versions/", apis.DatasetVersionListApi.as_view(), name="dataset-version-list"),
    path(
        P + "dataset-versions/<int:version_id>/download/",
        apis.DatasetVersionDownloadApi.as_view(),
        name="dataset-version-download",
    ),
    path(
        P + "dataset-versions/<int:version_id>/train/",
        apis.DatasetVersionTrainApi.as_view(),
        name="dataset-version-train",
    ),
    path(P + "rounds/", apis.RoundListApi.as_view(), name="round-list"),
    path(P + "rounds/<int:round_id>/", apis.RoundDetailApi.as_view(), name="round-detail"),
]
