from __future__ import annotations

from django.urls import include, path
from django.views.generic import RedirectView

from annotation import check_views, views

app_name = "annotation"

urlpatterns = [
    path("", views.home, name="home"),
    path("tools/", include("annotation.tools.urls")),
    path("queue/", views.my_queue, name="my-queue"),
    path("projects/", views.project_list, name="project-list"),
    path("projects/new/", views.project_create_view, name="project-create"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path("projects/<int:project_id>/edit/", views.project_edit, name="project-edit"),
    path("projects/<int:project_id>/guidelines/", views.project_guidelines, name="project-guidelines"),
    path("projects/<int:project_id>/queue/", views.project_queue, name="project-queue"),
    path("projects/<int:project_id>/label/", views.pair_label, name="pair-label"),
    path("projects/<int:project_id>/label/skip/", views.pair_skip, name="pair-skip"),
    path(
        "projects/<int:project_id>/labels/<int:annotation_id>/edit/",
        views.annotation_edit_view,
        name="annotation-edit",
    ),
    # Export lives in curation (it reads verdicts); the old address keeps working.
    path(
        "projects/<int:project_id>/export/",
        RedirectView.as_view(pattern_name="curation:export", query_string=True, permanent=False),
        name="project-export",
    ),
    path("imports/new/", views.import_create, name="import-create"),
    path("imports/<int:batch_id>/", views.import_detail, name="import-detail"),
    path("users/", views.user_list, name="user-list"),
    path("users/new/", views.user_create_view, name="user-create"),
    path("users/<int:user_id>/edit/", views.user_edit, name="user-edit"),
    path("users/<int:user_id>/revoke-token/", views.user_token_revoke, name="user-token-revoke"),
    path("projects/<int:project_id>/checks/", check_views.project_checks, name="project-checks"),
    path(
        "projects/<int:project_id>/checks/settings/",
        check_views.project_checks_settings,
        name="project-checks-settings",
    ),
    path("projects/<int:project_id>/checks/add/", check_views.project_checks_add, name="project-checks-add"),
    path("projects/<int:project_id>/checks/remove/", check_views.project_checks_remove, name="project-checks-remove"),
    path(
        "projects/<int:project_id>/checks/annotator/",
        check_views.project_checks_annotator,
        name="project-checks-annotator",
    ),
]
