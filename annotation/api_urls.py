"""JSON API, mounted at /api/ (namespace "api"). Schema at /api/schema/ (config/urls.py)."""

from __future__ import annotations

from django.urls import path

from annotation import apis, auth

app_name = "api"
urlpatterns = [
    path("auth/token/", auth.TokenObtainApi.as_view(), name="token"),
    path("users/<int:user_id>/token/", auth.UserTokenRevokeApi.as_view(), name="user-token"),
    path("projects/", apis.ProjectListApi.as_view(), name="project-list"),
    path("projects/<int:project_id>/", apis.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<int:project_id>/progress/", apis.ProjectProgressApi.as_view(), name="project-progress"),
    path("projects/<int:project_id>/pairs/", apis.PairListApi.as_view(), name="pair-list"),
    path("projects/<int:project_id>/import/", apis.ProjectImportApi.as_view(), name="project-import"),
    path("projects/<int:project_id>/next/", apis.ProjectNextApi.as_view(), name="project-next"),
    path("pairs/<int:pair_id>/", apis.PairDetailApi.as_view(), name="pair-detail"),
    path("imports/<int:batch_id>/", apis.ImportBatchDetailApi.as_view(), name="import-detail"),
    path("assignments/<int:assignment_id>/submit/", apis.AssignmentSubmitApi.as_view(), name="assignment-submit"),
    path("assignments/<int:assignment_id>/release/", apis.AssignmentReleaseApi.as_view(), name="assignment-release"),
]
