"""Stage-2 URLs, included in the ``curation`` namespace by ``curation/urls.py``."""

from __future__ import annotations

from django.urls import path

from curation.stage2 import views

urlpatterns = [
    path("projects/<int:project_id>/stage2/", views.stage2_list, name="stage2-list"),
    path("projects/<int:project_id>/stage2/<int:run_id>/", views.stage2_detail, name="stage2-detail"),
    path("projects/<int:project_id>/stage2/<int:run_id>/<str:action>/", views.stage2_action, name="stage2-action"),
]
