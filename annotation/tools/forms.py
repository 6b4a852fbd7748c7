"""Forms of the annotator tools: they validate input; writes happen in annotation.tools.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from annotation.tools import sandbox
from annotation.tools.search import available_backends
from annotation.tools.services import MAX_NOTE_CHARS, MAX_QUERY_CHARS, MAX_QUESTION_CHARS, MAX_SNIPPET_CHARS

BACKEND_LABELS = {"corpus": "Reference corpus", "web": "Web"}


class SearchForm(forms.Form):
    query = forms.CharField(max_length=MAX_QUERY_CHARS, strip=True)
    backend = forms.ChoiceField(choices=(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        backend = self.fields["backend"]
        assert isinstance(backend, forms.ChoiceField)
        backend.choices = [(b, BACKEND_LABELS[b]) for b in available_backends()]

    def clean_backend(self) -> str:
        return self.cleaned_data.get("backend") or "corpus"


class SnippetForm(forms.Form):
    text = forms.CharField(max_length=MAX_SNIPPET_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 4}))
    note = forms.CharField(
        max_length=MAX_NOTE_CHARS, required=False, strip=True, widget=forms.Textarea(attrs={"rows": 2})
    )


class CodeForm(forms.Form):
    language = forms.ChoiceField(choices=())
    code = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        language = self.fields["language"]
        assert isinstance(language, forms.ChoiceField)
        language.choices = [(lang.key, lang.label) for lang in sandbox.LANGUAGES.values()]

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if not code.strip():
            raise forms.ValidationError("There is no code to run.")
        if len(code.encode("utf-8")) > settings.SANDBOX_MAX_CODE_BYTES:
            raise forms.ValidationError(f"At most {settings.SANDBOX_MAX_CODE_BYTES} bytes.")
        return code


class AIQuestionForm(forms.Form):
    question = forms.CharField(max_length=MAX_QUESTION_CHARS, strip=True, widget=forms.Textarea(attrs={"rows": 3}))


class CorpusUploadForm(forms.Form):
    name = forms.CharField(max_length=200, strip=True)
    licence = forms.CharField(max_length=500, strip=True, help_text="The corpus's licence, e.g. CC BY-SA 4.0.")
    source = forms.CharField(max_length=500, required=False, strip=True, help_text="Where it came from (URL, package).")
    file = forms.FileField(help_text='JSON Lines: one {"title", "text", "source_url"} object per line.')

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > settings.MAX_CORPUS_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {settings.MAX_CORPUS_UPLOAD_BYTES // (1024 * 1024)} MiB."
            )
        return upload
