"""URLs of the annotator tools. Included by annotation/urls.py (the labelling page's parts) as

    path("tools/", include("annotation.tools.urls")),

so the names are ``annotation:tools:<name>`` (this module sets ``app_name = "tools"``).
"""

from __future__ import annotations

from django.urls import path

from annotation.tools import views

app_name = "tools"

urlpatterns = [
    path("pairs/<int:pair_id>/search/", views.search_panel, name="search"),
    path("searches/<int:search_id>/results/<int:rank>/open/", views.result_open, name="result-open"),
    path("searches/<int:search_id>/results/<int:rank>/attach/", views.snippet_attach, name="snippet-attach"),
    path("pairs/<int:pair_id>/code/", views.code_panel, name="code"),
    path("code-runs/<int:run_id>/", views.code_run_status, name="code-run"),
    path("pairs/<int:pair_id>/ai/", views.ai_panel, name="ai"),
    path("ai-queries/<int:query_id>/", views.ai_query_status, name="ai-query"),
    path("pairs/<int:pair_id>/evidence/", views.pair_evidence, name="pair-evidence"),
    path("corpora/", views.corpus_list, name="corpus-list"),
    path("corpora/<int:corpus_id>/delete/", views.corpus_delete, name="corpus-delete"),
]
