"""config.urls plus the curation app at /curation/ (used until config/urls.py includes it)."""

from __future__ import annotations

from django.urls import include, path

from config.urls import urlpatterns as base_patterns

_included = any(getattr(p, "namespace", None) == "curation" for p in base_patterns)
urlpatterns = list(base_patterns) + ([] if _included else [path("curation/", include("curation.urls"))])
