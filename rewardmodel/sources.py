"""Training data that other apps offer on the Models page, without rewardmodel importing them.

rewardmodel trains on registered files and knows nothing of projects. An app that curates data
(curation) registers a :class:`SourceProvider` at start-up; the Models page lists its choices
("Demo: D_gold now", "Demo: round 3") and, when one is picked, asks the provider to resolve it into
registered files. The job records the provider's label in ``TrainingJob.data_source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ValidationError

from rewardmodel.models import DatasetFile


@dataclass(frozen=True)
class ResolvedSource:
    """Files to train on, the scope their models belong to, and what the job records as its source."""

    train_data: DatasetFile
    eval_data: DatasetFile | None
    scope: str
    label: str


class SourceProvider(Protocol):
    def choices(self) -> list[tuple[str, str]]:
        """(key, label) pairs; keys are unique across providers (prefix them)."""
        ...

    def resolve(self, key: str, *, created_by: Any = None) -> ResolvedSource | None:
        """Files for ``key`` (may freeze a snapshot now), or None when the key is not this provider's."""
        ...


_providers: list[SourceProvider] = []


def source_provider_register(provider: SourceProvider) -> None:
    """Called from an AppConfig.ready(); registering the same provider twice is a no-op."""
    if provider not in _providers:
        _providers.append(provider)


def source_choices() -> list[tuple[str, str]]:
    return [choice for provider in _providers for choice in provider.choices()]


def source_resolve(key: str, *, created_by: Any = None) -> ResolvedSource:
    """Resolve a picked source. Raises ValidationError on the ``source`` field when no provider knows it
    (or the provider cannot build it, e.g. a project with no verified pairs)."""
    for provider in _providers:
        try:
            resolved = provider.resolve(key, created_by=created_by)
        except ValidationError as exc:
            raise ValidationError({"source": exc.messages}) from None
        if resolved is not None:
            return resolved
    raise ValidationError({"source": f"unknown training data source {key!r}"})
