from __future__ import annotations

from django.urls import path

from rewardmodel import views

app_name = "rewardmodel"

urlpatterns = [
    path("", views.model_index, name="index"),
    path("jobs/new/", views.job_create, name="job-create"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/resume/", views.job_resume, name="job-resume"),
    path("versions/<int:version_id>/", views.version_detail, name="version-detail"),
    path("versions/<int:version_id>/promote/", views.version_promote, name="version-promote"),
    path("evaluations/<int:run_id>/", views.evaluation_detail, name="evaluation-detail"),
]
