"""The demo project with a seeded history: built through the services, idempotent, Demo untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from annotation.models import Annotation, Assignment, KnownAnswer, Project
from curation.demo_history import PROJECT_NAME
from curation.models import BatchGate, CurationRound, Dispute, VerifiedPair

DEMO = Path(__file__).resolve().parents[2] / "demo" / "pairs.jsonl"


@pytest.fixture
def small_demo(tmp_path: Path) -> Path:
    """60 demo pairs: 30 summaries and 30 conversations."""
    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    summaries = [r for r in rows if "summarize" in r["source"]][:30]
    conversations = [r for r in rows if "summarize" not in r["source"]][:30]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in summaries + conversations), encoding="utf-8")
    return path


def _state(project: Project) -> tuple[int, ...]:
    return (
        Annotation.objects.filter(pair__project=project).count(),
        Dispute.objects.filter(project=project).count(),
        VerifiedPair.objects.filter(pair__project=project).count(),
        CurationRound.objects.filter(project=project).count(),
    )


def test_seeds_a_lived_in_project_once_and_leaves_demo_fresh(db: Any, small_demo: Path) -> None:
    call_command("seed_demo", "--file", str(small_demo))
    call_command("seed_demo_history", "--file", str(small_demo), "--train", "skip")
    project = Project.objects.get(name=PROJECT_NAME)
    assert "seeded history" in project.description and "No model was trained" in project.description
    labels = Annotation.objects.filter(pair__project=project, is_retest=False)
    assert labels.values("annotator").distinct().count() == 5
    assert labels.count() >= 0.8 * 60 * project.annotators_per_pair
    assert len({a.preference for a in labels}) >= 4  # noise: both sides, both strengths
    gates = dict(BatchGate.objects.filter(project=project).values_list("batch_key", "status"))
    # the summaries pass the alpha gate, the harder conversations are flagged
    assert sorted(gates.values()) == [BatchGate.Status.FLAGGED, BatchGate.Status.OK]
    disputes = Dispute.objects.filter(project=project)
    assert disputes.filter(status=Dispute.Status.OPEN).exists()
    assert disputes.exclude(status=Dispute.Status.OPEN).exists()
    assert VerifiedPair.objects.filter(pair__project=project).exists()
    assert KnownAnswer.objects.filter(project=project, purpose="attention").exists()
    assert Assignment.objects.filter(project=project, kind=Assignment.Kind.ATTENTION).exists()
    # The Demo project stays fresh for alice to label.
    assert not Annotation.objects.filter(pair__project__name="Demo").exists()
    before = _state(project)
    call_command("seed_demo_history", "--file", str(small_demo), "--train", "skip")
    assert _state(project) == before


def test_an_interrupted_seeding_is_built_again(db: Any, small_demo: Path) -> None:
    call_command("seed_demo", "--file", str(small_demo))
    from curation.demo_history import BUILDING

    Project.objects.create(name=PROJECT_NAME, description=BUILDING)
    call_command("seed_demo_history", "--file", str(small_demo), "--train", "skip")
    project = Project.objects.get(name=PROJECT_NAME)
    assert project.description != BUILDING and project.pairs.count() == 60
