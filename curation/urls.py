from __future__ import annotations

from django.urls import path

from curation import browser_views, dashboard_views, dispute_views, export_views, round_views, settings_views

app_name = "curation"

urlpatterns = [
    path("projects/<int:project_id>/", dashboard_views.dashboard, name="dashboard"),
    path("projects/<int:project_id>/batches/<int:gate_id>/accept/", dashboard_views.batch_accept, name="batch-accept"),
    path("projects/<int:project_id>/disputes/", dispute_views.dispute_list, name="dispute-list"),
    path("projects/<int:project_id>/disputes/<int:dispute_id>/", dispute_views.dispute_review, name="dispute-review"),
    path("projects/<int:project_id>/settings/", settings_views.settings_edit, name="settings"),
    path("projects/<int:project_id>/pairs/", browser_views.pair_browser, name="pair-browser"),
    path("projects/<int:project_id>/pairs/export.jsonl", browser_views.pair_browser_export, name="pair-browser-export"),
    path("projects/<int:project_id>/pairs/<int:pair_id>/", browser_views.pair_detail, name="pair-detail"),
    path(
        "projects/<int:project_id>/annotators/<int:user_id>/", browser_views.annotator_detail, name="annotator-detail"
    ),
    path(
        "projects/<int:project_id>/disputes/<int:dispute_id>/comments/",
        browser_views.dispute_comment,
        name="dispute-comment",
    ),
    path("projects/<int:project_id>/my-disputes/", browser_views.my_disputes, name="my-disputes"),
    path("projects/<int:project_id>/rounds/", round_views.round_list, name="round-list"),
    path("projects/<int:project_id>/rounds/<int:round_id>/", round_views.round_detail, name="round-detail"),
    path("projects/<int:project_id>/rounds/<int:round_id>/resume/", round_views.round_resume_view, name="round-resume"),
    path("projects/<int:project_id>/export/", export_views.project_export, name="export"),
    path("projects/<int:project_id>/datasets/", export_views.dataset_versions, name="dataset-list"),
    path(
        "projects/<int:project_id>/datasets/freeze-gold/",
        export_views.dataset_version_freeze_gold_view,
        name="dataset-freeze-gold",
    ),
    path(
        "projects/<int:project_id>/datasets/<int:version_id>/train/",
        export_views.dataset_version_train_view,
        name="dataset-train",
    ),
    path(
        "projects/<int:project_id>/datasets/<int:version_id>/<str:part>.jsonl",
        round_views.dataset_version_download,
        name="dataset-download",
    ),
]

# Stage 2 (consistency filtering and label recycling)
from curation.stage2.urls import urlpatterns as stage2_urlpatterns  # noqa: E402

urlpatterns += stage2_urlpatterns
