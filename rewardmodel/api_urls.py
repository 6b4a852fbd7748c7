"""Reward-model API, mounted at /api/ (namespace "rewardmodel_api"); admins only."""

from __future__ import annotations

from django.urls import path

from rewardmodel import apis, server_apis

app_name = "rewardmodel_api"
urlpatterns = [
    path("data-files/", apis.DatasetFileListApi.as_view(), name="data-file-list"),
    path("training-jobs/", apis.TrainingJobListApi.as_view(), name="training-job-list"),
    path("training-jobs/<int:job_id>/", apis.TrainingJobDetailApi.as_view(), name="training-job-detail"),
    path("training-jobs/<int:job_id>/cancel/", apis.TrainingJobCancelApi.as_view(), name="training-job-cancel"),
    path("training-jobs/<int:job_id>/resume/", apis.TrainingJobResumeApi.as_view(), name="training-job-resume"),
    path("model-versions/", apis.ModelVersionListApi.as_view(), name="model-version-list"),
    path("model-versions/<int:version_id>/", apis.ModelVersionDetailApi.as_view(), name="model-version-detail"),
    path(
        "model-versions/<int:version_id>/promote/",
        apis.ModelVersionPromoteApi.as_view(),
        name="model-version-promote",
    ),
    path(
        "model-versions/<int:version_id>/evaluations/",
        apis.EvaluationCreateApi.as_view(),
        name="model-version-evaluations",
    ),
    path("evaluations/<int:run_id>/", apis.EvaluationDetailApi.as_view(), name="evaluation-detail"),
    path("scoring-servers/", server_apis.ScoringServerListApi.as_view(), name="scoring-server-list"),
    path(
        "scoring-servers/<int:server_id>/ping/", server_apis.ScoringServerPingApi.as_view(), name="scoring-server-ping"
    ),
    path(
        "model-versions/<int:version_id>/scoring-server/",
        server_apis.ModelVersionScoringServerApi.as_view(),
        name="model-version-scoring-server",
    ),
]
