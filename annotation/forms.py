"""Forms of the web UI. They validate input; the writes happen in :mod:`annotation.services`."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from annotation import preference as codes
from annotation.models import Controversiality, Objectivity, Project, Role

# --- preference as shown (left/right) ----------------------------------------------------------

# The annotator answers in sides of the screen; annotation.preference maps that to canonical A/B (the
# same module the REST API uses, so both speak the same values).
# Keyboard shortcut per choice (static/js/label.js reads data-key on each radio).
SHOWN_PREFERENCE_KEYS = {
    codes.LEFT_CLEARLY: "1",
    codes.LEFT_SLIGHTLY: "2",
    codes.RIGHT_SLIGHTLY: "3",
    codes.RIGHT_CLEARLY: "4",
    codes.UNDECIDABLE: "0",
}
_SHOWN_LABELS = dict(codes.SHOWN_CHOICES)


def shown_preference_label(preference: str, order_shown: str) -> str:
    """How a stored (canonical) label looked to its annotator: "Left is clearly better"."""
    return _SHOWN_LABELS[codes.canonical_to_shown(preference, order_shown)]


# --- labelling ---------------------------------------------------------------------------------


class LabelForm(forms.Form):
    """One label, in the terms the annotator saw (left/right); the view maps it to A/B."""

    assignment = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    time_spent_ms = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0, max_value=2**31 - 1)
    preference = forms.ChoiceField(
        choices=codes.SHOWN_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the better response (or “Can't decide”)."},
    )
    task_category = forms.ChoiceField(label="Task category", error_messages={"required": "Choose the task category."})
    objectivity = forms.ChoiceField(
        choices=Objectivity.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose how objective the request is."},
    )
    controversiality = forms.ChoiceField(
        choices=Controversiality.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose how controversial the request is."},
    )
    desired_attributes = forms.MultipleChoiceField(
        label="Desired attributes", required=False, widget=forms.CheckboxSelectMultiple
    )
    guideline = forms.CharField(
        label="Guideline for this pair",
        required=False,
        max_length=2000,
        widget=forms.TextInput(
            attrs={
                "list": "guideline-suggestions",
                "placeholder": "e.g. requires authoritative sources",
                "autocomplete": "off",
            }
        ),
    )
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Why is this response better? One or two sentences."}),
        max_length=10000,
        error_messages={"required": "Write a short rationale: why is this response better?"},
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        cast(forms.ChoiceField, self.fields["task_category"]).choices = [("", "— choose —")] + [
            (c, c) for c in project.taxonomy
        ]
        cast(forms.MultipleChoiceField, self.fields["desired_attributes"]).choices = [
            (a, a) for a in project.desired_attributes
        ]

    def clean_rationale(self) -> str:
        rationale = self.cleaned_data["rationale"].strip()
        if not rationale:
            raise ValidationError(self.fields["rationale"].error_messages["required"])
        return rationale

    @property
    def error_summary(self) -> list[str]:
        """Each error once, in field order, for the banner above the form."""
        out: list[str] = []
        for name, errors in self.errors.items():
            label = "" if name == NON_FIELD_ERRORS else (self.fields[name].label or name.replace("_", " ").capitalize())
            for error in errors:
                # Our own messages are sentences; a service's ("must be one of ...") needs the field name.
                out.append(f"{label}: {error}" if label and str(error)[:1].islower() else str(error))
        return out


class SkipForm(forms.Form):
    assignment = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


# --- projects ----------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


class _MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        names = sorted(g.name for g in obj.groups.all())
        if obj.is_superuser and Role.ADMIN.value not in names:
            names.append(Role.ADMIN.value)
        if not obj.is_active:
            names.append("inactive")
        return f"{obj.username} ({', '.join(names)})" if names else obj.username


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "class": "mono"}),
        required=False,
        help_text="Markdown. Annotators open it with one click (or the g key) from every pair.",
    )
    annotators_per_pair = forms.IntegerField(min_value=1, max_value=15, initial=settings.ANNOTATORS_PER_PAIR)
    claim_timeout_minutes = forms.IntegerField(
        min_value=1,
        max_value=7 * 24 * 60,
        initial=settings.CLAIM_TIMEOUT_MINUTES,
        help_text="An unsubmitted claim returns to the pool after this long.",
    )
    taxonomy = forms.CharField(
        label="Task categories",
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="One per line.",
    )
    desired_attributes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="One per line.",
    )
    members = _MemberChoiceField(
        queryset=get_user_model().objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Inactive users are listed too: leaving them out would drop them from the project on save.
        cast(forms.ModelMultipleChoiceField, self.fields["members"]).queryset = (
            get_user_model().objects.prefetch_related("groups").order_by("username")
        )

    @classmethod
    def initial_for(cls, project: Project) -> dict[str, Any]:
        return {
            "name": project.name,
            "description": project.description,
            "guidelines": project.guidelines,
            "annotators_per_pair": project.annotators_per_pair,
            "claim_timeout_minutes": project.claim_timeout_minutes,
            "taxonomy": "\n".join(project.taxonomy),
            "desired_attributes": "\n".join(project.desired_attributes),
            "members": list(project.members.all()),
        }

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("This field is required.")
        return name

    def clean_taxonomy(self) -> list[str]:
        values = _lines(self.cleaned_data["taxonomy"])
        if not values:
            raise ValidationError("Name at least one task category.")
        return values

    def clean_desired_attributes(self) -> list[str]:
        values = _lines(self.cleaned_data["desired_attributes"])
        if not values:
            raise ValidationError("Name at least one desired attribute.")
        return values

    def service_fields(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("members")
        return data


# --- import / export ---------------------------------------------------------------------------


class ImportForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none(), empty_label="— choose a project —")
    file = forms.FileField(
        help_text="JSON Lines: one pair per line with prompt and chosen/rejected (or response_a/response_b).",
    )

    def __init__(self, *args: Any, projects: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["project"]).queryset = projects

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = int(settings.MAX_IMPORT_UPLOAD_BYTES)
        if upload.size > limit:
            raise ValidationError(f"The file is larger than the limit of {limit // (1024 * 1024)} MiB.")
        if upload.size == 0:
            raise ValidationError("The file is empty.")
        return upload


# --- users -------------------------------------------------------------------------------------

ROLE_CHOICES = [(r.value, r.label) for r in Role]


class _ProjectChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.name


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}), strip=False
    )
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False)
    projects = _ProjectChoiceField(queryset=Project.objects.none(), required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["projects"]).queryset = Project.objects.order_by("name")

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError("A user with that username already exists.")
        return username

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        password = data.get("password")
        if password:
            candidate = get_user_model()(username=data.get("username", ""))
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return data


class UserEditForm(forms.Form):
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False)
    projects = _ProjectChoiceField(queryset=Project.objects.none(), required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, editing_self: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing_self = editing_self
        cast(forms.ModelMultipleChoiceField, self.fields["projects"]).queryset = Project.objects.order_by("name")

    def clean_roles(self) -> list[str]:
        roles = self.cleaned_data["roles"]
        if self.editing_self and Role.ADMIN.value not in roles:
            raise ValidationError("You cannot remove your own admin role.")
        return roles
