"""The human-agreement table (Table 19): the pure function, and the run's check on D_gold pairs."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any, cast
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from annotation.models import Pair
from curation.models import VerifiedPair
from curation.stage2 import engine, rules
from curation.stage2.report import AgreementRow, agreement_table
from tests.conftest import PASSWORD
from tests.curation.stage2.conftest import store_scores
from tests.factories import PairFactory

# label agrees with the human?, p_best, p_gold, the rule's outcome (threshold 0.5, paper policy)
ROWS = [
    AgreementRow(True, 0.9, 0.9, "kept"),
    AgreementRow(True, 0.2, 0.8, "flipped"),
    AgreementRow(False, 0.1, 0.2, "flipped"),
    AgreementRow(False, 0.7, 0.3, "flipped"),
    AgreementRow(False, 0.8, 0.9, "kept"),
]


def cells(table: dict[str, Any], name: str) -> tuple[tuple[int, int], tuple[int, int], int]:
    row = table["filters"][name]
    return (row["kept"]["n"], row["kept"]["agree"]), (row["flipped"]["n"], row["flipped"]["agree"]), row["discarded"]


def test_table_counts_agreement_of_kept_and_flipped_per_filter() -> None:
    table = agreement_table(ROWS)
    assert table["n"] == 5
    # best+gold (the outcomes given): kept rows 1, 5 (1 right); flipped 2, 3, 4 (3 and 4 were wrong labels).
    assert cells(table, "best+gold") == ((2, 1), (3, 2), 0)
    # gold only: kept where p_gold > 0.5 (1, 2, 5: 1 and 2 right); flipped 3, 4 (both right).
    assert cells(table, "gold only") == ((3, 2), (2, 2), 0)
    # best only: kept 1, 4, 5 (only 1 right); flipped 2, 3 (3 right).
    assert cells(table, "best only") == ((3, 1), (2, 1), 0)
    assert table["filters"]["best+gold"]["kept"]["agreement"] == pytest.approx(0.5)
    assert table["filters"]["gold only"]["flipped"]["agreement"] == pytest.approx(1.0)
    assert table["filters"]["best only"]["kept"]["agreement"] == pytest.approx(1 / 3)


def test_strict_policy_discards_single_model_pairs_inside_the_margin() -> None:
    config = rules.FilterConfig(policy="strict", flip_margin=0.2)
    rows = [
        AgreementRow(False, 0.1, 0.4, "discarded"),  # gold 0.4 is within the margin: discarded; best 0.1 flips
        AgreementRow(False, 0.1, 0.1, "flipped"),
        AgreementRow(True, 0.6, 0.6, "kept"),
    ]
    table = agreement_table(rows, config)
    assert cells(table, "best+gold") == ((1, 1), (1, 1), 1)
    assert cells(table, "gold only") == ((1, 1), (1, 1), 1)
    assert cells(table, "best only") == ((1, 1), (2, 2), 0)


def test_empty_cells_have_no_agreement_and_bad_rows_are_named() -> None:
    table = agreement_table([AgreementRow(True, 0.9, 0.9, "kept")])
    assert table["filters"]["best+gold"]["flipped"] == {"n": 0, "agree": 0, "agreement": None}
    assert agreement_table([])["n"] == 0
    with pytest.raises(ValueError, match="outcome"):
        agreement_table([AgreementRow(True, 0.9, 0.9, "dropped")])
    with pytest.raises(ValueError, match="p_gold"):
        agreement_table([AgreementRow(True, 0.9, 1.5, "kept")])


# --- the run's check on D_gold pairs ----------------------------------------------------------------


def gold_pair(project: Any, source: str, human: str) -> Pair:
    pair = cast(Pair, PairFactory(project=project, source_label=source))
    VerifiedPair.objects.create(
        pair=pair, project=project, batch_key="x", side=human, strength="clearly", via="majority",
        verified_at=timezone.now(),
    )  # fmt: skip
    return pair


@pytest.fixture
def known(project: Any, pool: dict[str, Any]) -> list[Pair]:
    """Four D_gold pairs (source A) with stored margins, and one without a source label (ignored)."""
    g1 = gold_pair(project, "A", "A")  # both agree -> kept, right
    g2 = gold_pair(project, "A", "B")  # both disagree -> flipped, right
    g3 = gold_pair(project, "A", "B")  # both agree -> kept, wrong
    g4 = gold_pair(project, "A", "A")  # best disagrees, gold agrees -> flipped, wrong
    gold_pair(project, "", "A")
    store_scores(pool["best"], {g1.pk: 2.0, g2.pk: -2.0, g3.pk: 2.0, g4.pk: -2.0})
    store_scores(pool["gold"], {g1.pk: 2.0, g2.pk: -2.0, g3.pk: 2.0, g4.pk: 2.0})
    return [g1, g2, g3, g4]


def finished(project: Any) -> Any:
    run = engine.stage2_run_create(project=project, enqueue=False)
    with mock.patch("rewardmodel.scoring.pairs_score", side_effect=AssertionError("stored scores are reused")):
        for shard_id in run.shards.values_list("pk", flat=True):
            engine.stage2_shard_run(shard_id=shard_id)
    run.refresh_from_db()
    return run


@pytest.mark.django_db
def test_run_summary_holds_the_agreement_on_d_gold_pairs(project: Any, known: list[Pair]) -> None:
    run = finished(project)
    assert run.status == "done"
    table = run.summary["agreement"]
    assert table["n"] == 4  # the D_gold pair without a source label is not in it; pool pairs neither
    assert cells(table, "best+gold") == ((2, 1), (2, 1), 0)
    assert cells(table, "gold only") == ((3, 2), (1, 1), 0)
    assert cells(table, "best only") == ((2, 1), (2, 1), 0)


@pytest.mark.django_db
def test_no_agreement_without_known_labels(project: Any, pool: dict[str, Any]) -> None:
    assert finished(project).summary["agreement"] is None


@pytest.mark.django_db
@pytest.mark.usefixtures("curation_urls")
def test_page_and_command_show_the_agreement(project: Any, known: list[Pair], users: dict[str, Any]) -> None:
    out = StringIO()
    with mock.patch("rewardmodel.scoring.pairs_score", side_effect=AssertionError("stored scores are reused")):
        call_command("stage2", "--project", project.name, stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["agreement"]["filters"]["gold only"]["kept"] == {"n": 3, "agree": 2, "agreement": 2 / 3}
    client = Client()
    assert client.login(username=users["lena"].username, password=PASSWORD)
    page = client.get(f"/curation/projects/{project.pk}/stage2/{summary['run']}/").content.decode()
    assert 'id="stage2-agreement"' in page and "gold only" in page and "67%" in page


# --- the result upsert (one statement per chunk on PostgreSQL, bulk_create elsewhere) -------------


@pytest.mark.django_db
def test_results_upsert_replaces_a_pairs_row_and_keeps_json_detail(project: Any, pool: dict[str, Any]) -> None:
    from curation.stage2.models import Stage2Result

    run = engine.stage2_run_create(project=project, enqueue=False)
    first, second = pool["pairs"][:2]
    engine.results_upsert(
        [
            Stage2Result(run=run, pair=first, outcome="kept", p_best=0.9, p_gold=0.8),
            Stage2Result(run=run, pair=second, outcome="dropped", reason="contaminated", detail={"ngram": "a b ü"}),
        ]
    )
    engine.results_upsert([Stage2Result(run=run, pair=first, outcome="flipped", to_judges=True, judges="tie", p_best=0.2, p_gold=None)])  # fmt: skip
    rows = {r.pair_id: r for r in Stage2Result.objects.filter(run=run)}
    assert len(rows) == 2
    assert (rows[first.pk].outcome, rows[first.pk].to_judges, rows[first.pk].judges) == ("flipped", True, "tie")
    assert rows[first.pk].p_best == pytest.approx(0.2) and rows[first.pk].p_gold is None
    assert rows[second.pk].detail == {"ngram": "a b ü"} and rows[second.pk].reason == "contaminated"
    engine.results_upsert([])
    assert Stage2Result.objects.filter(run=run).count() == 2
