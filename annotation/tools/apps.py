from __future__ import annotations

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    """The annotator tools: a Django app of its own inside the annotation package.

    Label ``tools``: its models are ``tools.Corpus``, ``tools.CodeRun``, ... (their tables keep the
    ``annotation_*`` names they had before the carve). It may import ``annotation`` (pairs,
    assignments); ``annotation`` reaches it only to mount its page parts (urls, the AI settings).
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "annotation.tools"
    label = "tools"
    verbose_name = "Annotator tools"
