from __future__ import annotations

from django.urls import path

from rewardmodel import server_views, views

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
    path("servers/", server_views.server_list, name="server-list"),
    path("servers/new/", server_views.server_edit, name="server-new"),
    path("servers/<int:server_id>/", server_views.server_edit, name="server-edit"),
    path("servers/<int:server_id>/ping/", server_views.server_ping, name="server-ping"),
    path("servers/<int:server_id>/delete/", server_views.server_delete, name="server-delete"),
    path("versions/<int:version_id>/server/", server_views.version_attach_server, name="version-attach-server"),
]
