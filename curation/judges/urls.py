from __future__ import annotations

from django.urls import path

from curation.judges import views

app_name = "judges"

urlpatterns = [
    path("", views.judge_list, name="judge-list"),
    path("new/", views.judge_edit, name="judge-new"),
    path("<int:judge_id>/edit/", views.judge_edit, name="judge-edit"),
    path("<int:judge_id>/test/", views.judge_test, name="judge-test"),
    path("projects/<int:project_id>/", views.project_judges, name="project"),
    path("projects/<int:project_id>/measure/", views.judge_eval_start, name="measure"),
    path("projects/<int:project_id>/propose/", views.attributes_propose_start, name="propose"),
    path("projects/<int:project_id>/pairs/<int:pair_id>/ask/", views.judge_ask_view, name="ask"),
    path("projects/<int:project_id>/runs/<int:run_id>/", views.run_status, name="run-status"),
    path("projects/<int:project_id>/runs/<int:run_id>/resume/", views.run_resume, name="run-resume"),
]
