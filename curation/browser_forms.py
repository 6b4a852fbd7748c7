"""Forms of the data browser, the per-annotator page and dispute comments (GET filters validated too)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from annotation.models import Project
from curation.batches import batch_keys, batch_name
from curation.browser import AGREEMENTS, MODEL_FILTERS, STATUSES, PairFilters, task_categories
from curation.export import FORMATS
from curation.review import COMMENT_MAX


class PairFilterForm(forms.Form):
    """The browser's GET parameters. An unknown value is a field error naming it; nothing is filtered then."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *STATUSES.items()])
    batch = forms.ChoiceField(required=False, choices=())
    agreement = forms.ChoiceField(required=False, choices=[("", "Any agreement"), *AGREEMENTS.items()])
    model = forms.ChoiceField(required=False, choices=[("", "Any model score"), *MODEL_FILTERS.items()])
    annotator = forms.TypedChoiceField(required=False, choices=(), coerce=int, empty_value=None)
    task_category = forms.ChoiceField(required=False, choices=())
    q = forms.CharField(required=False, max_length=200, label="Text")
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    FILTER_FIELDS = ("status", "batch", "agreement", "model", "annotator", "task_category", "q")

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].choices = [("", "Any batch"), *((k, batch_name(k)) for k in batch_keys(project))]  # type: ignore[attr-defined]
        people = (
            get_user_model()
            .objects.filter(annotations__pair__project=project, annotations__is_retest=False)
            .distinct()
            .order_by("username")
            .values_list("pk", "username")
        )
        self.fields["annotator"].choices = [("", "Any annotator"), *people]  # type: ignore[attr-defined]
        self.fields["task_category"].choices = [  # type: ignore[attr-defined]
            ("", "Any category"),
            *((c, c) for c in task_categories(project)),
        ]

    def filters(self) -> PairFilters:
        d = self.cleaned_data
        return PairFilters(
            status=d.get("status") or "",
            batch=d.get("batch") or "",
            agreement=d.get("agreement") or "",
            model=d.get("model") or "",
            annotator_id=d.get("annotator"),
            task_category=d.get("task_category") or "",
            q=d.get("q") or "",
        )

    def query_string(self, **changes: Any) -> str:
        """The current filters as a query string (for paging and export links)."""
        from urllib.parse import urlencode

        values = {name: self.data.get(name, "") for name in self.FILTER_FIELDS}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


class BrowseExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], required=False)


class CommentForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=COMMENT_MAX,
        label="Comment",
        error_messages={"required": "Write a comment first."},
    )


class LabelPageForm(forms.Form):
    before = forms.IntegerField(required=False, min_value=1)
