"""The project's URLs with the tools mounted where annotation/urls.py mounts them (``annotation:tools:``).

Until annotation/urls.py includes ``annotation.tools_urls`` itself, tests use this URLconf.
"""

from __future__ import annotations

from django.urls import include, path

import annotation.urls as annotation_urls
from config.urls import urlpatterns as project_patterns

_has_tools = any(getattr(p, "namespace", None) == "tools" for p in annotation_urls.urlpatterns)
if _has_tools:
    urlpatterns = list(project_patterns)
else:
    _annotation = ([*annotation_urls.urlpatterns, path("tools/", include("annotation.tools_urls"))], "annotation")
    urlpatterns = [p for p in project_patterns if getattr(p, "namespace", None) != "annotation"]
    urlpatterns.append(path("", include(_annotation)))
