"""`manage.py agreement --project NAME` prints the dashboard's figures as one JSON object."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from curation.models import AgreementSnapshot, BatchGate, VerifiedPair
from tests.curation.helpers import FAILING, PASSING, label_matrix, make_batch, package_alpha, settle


def run(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("agreement", *args, stdout=out)
    return json.loads(out.getvalue())


def test_prints_project_batches_annotators_and_retest(project: Any, trio: list[Any]) -> None:
    first_batch, first = make_batch(project, 3, "one.jsonl")
    second_batch, second = make_batch(project, 3, "two.jsonl")
    label_matrix(project, trio, list(zip(first + second, PASSING + FAILING, strict=True)))
    settle(project, first)
    settle(project, second)

    data = run("--project", project.name)

    assert set(data) == {"project", "batches", "annotators", "retest"}
    assert data["project"]["name"] == project.name
    assert data["project"]["preference"] == pytest.approx(package_alpha(PASSING + FAILING), abs=1e-12)
    assert (data["project"]["n_units"], data["project"]["n_labels"]) == (6, 18)
    assert data["project"]["alpha_threshold"] == 0.85
    assert (data["project"]["verified"], data["project"]["disputes_open"], data["project"]["waiting_for_gate"]) == (
        3,
        1,
        2,
    )
    assert set(data["project"]["desired_attributes"]) == set(project.desired_attributes)

    batches = {b["batch"]: b for b in data["batches"]}
    one, two = batches[f"import:{first_batch.pk}"], batches[f"import:{second_batch.pk}"]
    assert one["preference"] == pytest.approx(889 / 1017, abs=1e-12)
    assert (one["name"], one["gate"]["status"], one["gate"]["below_threshold"]) == ("one.jsonl", "ok", False)
    assert two["preference"] == pytest.approx(739 / 999, abs=1e-12)
    assert (two["gate"]["status"], two["gate"]["below_threshold"]) == ("flagged", True)
    # the same figures the workers stored
    stored = BatchGate.objects.get(batch_key=f"import:{second_batch.pk}")
    assert two["preference"] == pytest.approx(stored.alpha, abs=1e-12)

    assert set(data["annotators"]) == {"alice", "bob", "carol"}
    assert data["annotators"]["alice"]["agreement_rate"] == pytest.approx(8 / 12)
    assert data["annotators"]["carol"]["retest"]["n"] == 0
    assert data["retest"] == {
        "n": 0,
        "agree": 0,
        "agree_strength": 0,
        "rate": None,
        "offered": 0,
        "pending": 0,
        "no_annotator": 0,
    }


def test_refresh_computes_and_stores(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    assert not VerifiedPair.objects.exists()  # no worker ran

    data = run("--project", project.name, "--refresh", "--indent", "0")

    assert data["batches"][0]["gate"]["status"] == "ok"
    assert VerifiedPair.objects.count() == 3
    assert AgreementSnapshot.objects.filter(project=project, scope="project").count() == 1


def test_empty_project_prints_undefined_alpha(project: Any) -> None:
    data = run("--project", project.name)
    assert data["project"]["preference"] is None and data["batches"] == [] and data["annotators"] == {}


def test_unknown_project_is_an_error(db: Any) -> None:
    with pytest.raises(CommandError, match="no project named"):
        run("--project", "nope")
