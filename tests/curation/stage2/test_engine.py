"""The stage-2 engine, worked synchronously: shards, claims, results, pause/resume/cancel, finaliser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotation.models import Pair
from config import jobs
from curation.models import DatasetVersion, PairScore, VerifiedPair
from curation.stage2 import engine
from curation.stage2.jobs import SHARD
from curation.stage2.models import Stage2Result, Stage2Run, Stage2Shard
from tests.factories import PairFactory

pytestmark = pytest.mark.django_db


def run_all(run: Stage2Run) -> None:
    for shard_id in run.shards.order_by("index").values_list("pk", flat=True):
        engine.stage2_shard_run(shard_id=shard_id)


def outcomes(run: Stage2Run) -> dict[int, str]:
    return dict(Stage2Result.objects.filter(run=run).values_list("pair_id", "outcome"))


def test_run_splits_the_pool_into_disjoint_shards(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"shard_size": 5}, enqueue=False)
    shards = list(run.shards.order_by("index"))
    assert [s.n_pairs for s in shards] == [5, 5, 2]
    ids = [p.pk for p in pool["pairs"]]
    assert shards[0].first_pair_id == ids[0] and shards[-1].last_pair_id == ids[-1]
    assert all(a.last_pair_id < b.first_pair_id for a, b in zip(shards, shards[1:], strict=False))
    assert run.n_pairs == 12 and run.n_shards == 3


def test_paper_policy_keeps_and_flips_by_the_rule(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"shard_size": 5}, enqueue=False)
    run_all(run)
    got = outcomes(run)
    ids = [p.pk for p in pool["pairs"]]
    assert [got[i] for i in ids] == ["kept"] * 6 + ["flipped"] * 6
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.DONE
    assert run.summary["outcomes"] == {"kept": 6, "flipped": 6}
    assert run.summary["to_judges"] == 4  # best disagrees on pairs 8-11
    assert run.summary["judges"] == {"none": 4}
    assert run.summary["by_source"]["src-x"] == {"kept": 3, "flipped": 3}


def test_strict_policy_discards_where_the_models_split(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"policy": "strict"}, enqueue=False)
    run_all(run)
    ids = [p.pk for p in pool["pairs"]]
    got = outcomes(run)
    assert [got[i] for i in ids] == ["kept"] * 6 + ["discarded"] * 2 + ["flipped"] * 2 + ["discarded"] * 2


def test_result_becomes_a_dataset_version_with_flipped_labels(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, enqueue=False)
    run_all(run)
    run.refresh_from_db()
    version = DatasetVersion.objects.get(pk=run.dataset_version_id)
    assert version.filters["kind"] == "stage2" and version.counts == {"stage2_kept": 6, "stage2_flipped": 6}
    lines = [json.loads(x) for x in Path(version.train_data.path).read_text().splitlines()]
    by_id = {line["pair_id"]: line for line in lines}
    kept, flipped = pool["pairs"][0], pool["pairs"][8]
    assert by_id[kept.pk]["chosen"] == kept.response_a and by_id[kept.pk]["via"] == "filter"
    assert by_id[flipped.pk]["chosen"] == flipped.response_b and by_id[flipped.pk]["rejected"] == flipped.response_a
    assert {line["pool"] for line in lines} == {"silver"}


def test_the_dataset_version_reads_pairs_in_bulk_and_writes_what_the_record_builder_gives(
    project: Any, pool: dict[str, Any]
) -> None:
    """Pairs load with RECORD_FIELDS only: no per-record read of another field, and the same lines."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from curation.stage2.dataset import stage2_dataset_freeze
    from curation.verdicts import attribute_majorities, filter_verdict, pair_record

    run = engine.stage2_run_create(project=project, enqueue=False)
    run_all(run)
    run.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        version = stage2_dataset_freeze(run=run)
    pair_reads = [q["sql"] for q in queries.captured_queries if 'FROM "annotation_pair"' in q["sql"]]
    assert len(pair_reads) == 1, pair_reads  # one chunk of 12 pairs, nothing per record
    by_id = {line["pair_id"]: line for line in map(json.loads, Path(version.train_data.path).read_text().splitlines())}
    for pair, side, split in ((pool["pairs"][0], "A", "stage2_kept"), (pool["pairs"][8], "B", "stage2_flipped")):
        full = Pair.objects.get(pk=pair.pk)  # every field loaded
        expected = pair_record(
            full, filter_verdict(full, side), fmt="messages", dataset_version=version.name, split=split
        )
        assert by_id[pair.pk] == json.loads(json.dumps(expected))
    # No labels behind a filter's verdict: the short cut gives what the majority rules give for none.
    from curation.majority import attribute_mode, desired_majority

    none = attribute_mode([])
    assert attribute_majorities(()) == {
        "task_category": none, "objectivity": none, "controversiality": none,
        "desired_attributes": desired_majority([]), "guidelines": [],
    }  # fmt: skip


def test_judges_agreeing_rescue_pairs_the_best_model_doubts(project: Any, pool: dict[str, Any], settings: Any) -> None:
    asked: list[list[int]] = []

    def judges(pair_ids: list[int]) -> dict[int, str]:
        asked.append(sorted(pair_ids))
        return dict.fromkeys(pair_ids, "A")

    with mock.patch("curation.stage2.judging.judge_function", return_value=judges):
        run = engine.stage2_run_create(project=project, enqueue=False)
        run_all(run)
    ids = [p.pk for p in pool["pairs"]]
    assert asked == [sorted(ids[8:])]  # only the pairs the best model does not confirm
    got = outcomes(run)
    assert [got[i] for i in ids[10:]] == ["kept", "kept"]  # gold agrees too
    assert [got[i] for i in ids[8:10]] == ["flipped", "flipped"]  # gold disagrees


def test_failing_judges_count_as_best_disagrees(project: Any, pool: dict[str, Any]) -> None:
    def judges(pair_ids: list[int]) -> dict[int, str]:
        raise ConnectionError("judge server down")

    with mock.patch("curation.stage2.judging.judge_function", return_value=judges):
        run = engine.stage2_run_create(project=project, enqueue=False)
        run_all(run)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.DONE and run.summary["judges"] == {"failed": 4}


def test_preprocessing_drops_empty_and_contaminated_pairs_with_a_report(
    project: Any, pool: dict[str, Any], tmp_path: Path, settings: Any
) -> None:
    settings.VAR_DIR = tmp_path / "var"
    leaked = "please write a haiku about the quiet harbour at dawn with three boats and one gull"
    dirty = PairFactory(project=project, conversation=[{"role": "user", "content": "Hi! " + leaked.upper()}])
    empty = PairFactory(project=project, response_b="   \n")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"prompt": leaked, "id": "rb-7", "subset": "alpacaeval"}) + "\n")
    stored = engine.benchmark_store(path=bench, name="rewardbench.jsonl")
    run = engine.stage2_run_create(project=project, benchmark=stored, enqueue=False)
    run_all(run)
    rows = {r.pair_id: r for r in Stage2Result.objects.filter(run=run)}
    assert rows[dirty.pk].outcome == "dropped" and rows[dirty.pk].reason == "contaminated"
    assert rows[dirty.pk].detail == {
        "benchmark_id": "rb-7",
        "benchmark_subset": "alpacaeval",
        "ngram": " ".join(leaked.split()[:13]),
    }
    assert rows[empty.pk].reason == "empty"
    run.refresh_from_db()
    assert run.summary["dropped_by_reason"] == {"contaminated": 1, "empty": 1}
    assert not PairScore.objects.filter(pair_id__in=[dirty.pk, empty.pk]).exists()


def test_bad_benchmark_file_is_refused_and_nothing_is_kept(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path / "var"
    bench = tmp_path / "bench.jsonl"
    bench.write_text('{"prompt": "ok"}\n{"chosen": "no prompt"}\n')
    with pytest.raises(ValidationError, match="line 2: missing field 'prompt'"):
        engine.benchmark_store(path=bench)
    assert not any((tmp_path / "var").rglob("*.jsonl"))


def test_only_missing_scores_are_computed_and_stored(project: Any, pool: dict[str, Any]) -> None:
    new = PairFactory(project=project)
    calls: list[int] = []
    lengths: list[int | None] = []

    def fake_score(
        *, model_path: str, items: list[Any], batch_size: int, max_length: int | None = None
    ) -> list[tuple[float, float]]:
        calls.append(len(items))
        lengths.append(max_length)
        return [(1.0, 0.0)] * len(items)

    with mock.patch("rewardmodel.scoring.pairs_score", side_effect=fake_score):
        run = engine.stage2_run_create(project=project, enqueue=False)
        run_all(run)
        assert calls == [1, 1]  # one new pair, once per model (the pool's scores are stored)
        assert lengths == [1024, 1024]  # the run's max length (the default) reaches the scorer
        again = engine.stage2_run_create(project=project, enqueue=False)
        run_all(again)
        assert calls == [1, 1]  # the second run, same length, reuses every stored score
        # Another length is another score: every pair is scored again, and each row is replaced, not doubled.
        shorter = engine.stage2_run_create(project=project, enqueue=False, config={"max_length": 96})
        run_all(shorter)
        assert calls == [1, 1, 13, 13]
        assert lengths[2:] == [96, 96]
    assert PairScore.objects.filter(pair=new).count() == 2
    assert set(PairScore.objects.filter(pair=new).values_list("max_length", flat=True)) == {96}
    assert PairScore.objects.filter(max_length=1024).count() == 0
    assert outcomes(again)[new.pk] == "kept"


def test_the_stored_default_length_is_the_scorers() -> None:
    from curation.models import SCORE_MAX_LENGTH
    from rewardmodel.ml.infer import DEFAULT_MAX_LENGTH

    assert SCORE_MAX_LENGTH == DEFAULT_MAX_LENGTH


def test_verified_and_disputed_pairs_are_not_in_the_pool(project: Any, pool: dict[str, Any]) -> None:
    first = pool["pairs"][0]
    VerifiedPair.objects.create(
        pair=first,
        project=project,
        batch_key="x",
        side="A",
        strength="clearly",
        via="majority",
        verified_at=timezone.now(),
    )
    PairFactory(project=project, source_label="")
    run = engine.stage2_run_create(project=project, enqueue=False)
    assert run.n_pairs == 11
    run_all(run)
    assert first.pk not in outcomes(run)


def test_a_duplicate_message_does_nothing(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, enqueue=False)
    shard = run.shards.get()
    assert engine.stage2_shard_run(shard_id=shard.pk) == "done"
    assert engine.stage2_shard_run(shard_id=shard.pk) is None
    assert Stage2Result.objects.filter(run=run).count() == 12


def test_a_shard_whose_worker_died_is_reclaimed_and_counts_each_pair_once(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"chunk_size": 4}, enqueue=False)
    shard = run.shards.get()
    attempt = jobs.claim(SHARD, shard.pk)
    # The dead attempt wrote its first chunk, then stopped beating.
    first = list(engine.pool_queryset(project).order_by("pk")[:4])
    Stage2Result.objects.bulk_create(engine.chunk_results(run, first, engine.filter_config(run.config), None))
    Stage2Shard.objects.filter(pk=shard.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    with mock.patch.object(jobs, "dispatch") as dispatch:
        assert jobs.reap(SHARD)["requeued"] == 1
    dispatch.assert_called_once()
    assert engine.stage2_shard_run(shard_id=shard.pk) == "done"
    shard.refresh_from_db()
    assert shard.attempts == attempt + 1 and shard.n_done == 12
    assert Stage2Result.objects.filter(run=run).count() == 12
    run.refresh_from_db()
    assert run.summary["n_results"] == 12


def test_pause_stops_between_chunks_and_resume_finishes(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"shard_size": 5}, enqueue=False)
    engine.stage2_run_pause(run=run)
    assert set(run.shards.values_list("status", flat=True)) == {"paused"}
    first = run.shards.order_by("index").first()
    assert first is not None and engine.stage2_shard_run(shard_id=first.pk) is None  # paused: nothing to claim
    with mock.patch.object(jobs, "dispatch") as dispatch:
        engine.stage2_run_resume(run=run)
    assert dispatch.call_count == 0  # after commit (the test's transaction never commits)
    run_all(run)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.DONE and run.summary["n_results"] == 12


def test_a_running_shard_hands_back_when_the_run_is_paused(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"chunk_size": 4}, enqueue=False)
    shard = run.shards.get()
    real = engine.chunk_results
    calls = {"n": 0}

    def pause_after_first(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            Stage2Run.objects.filter(pk=run.pk).update(status=Stage2Run.Status.PAUSED)
        return real(*args)

    with mock.patch.object(engine, "chunk_results", side_effect=pause_after_first):
        assert engine.stage2_shard_run(shard_id=shard.pk) == "paused"
    shard.refresh_from_db()
    assert shard.status == "paused" and shard.n_done == 4
    assert Stage2Result.objects.filter(run=run).count() == 4


def test_cancel_ends_waiting_shards_and_keeps_results(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"shard_size": 5}, enqueue=False)
    first = run.shards.order_by("index").first()
    assert first is not None
    engine.stage2_shard_run(shard_id=first.pk)
    engine.stage2_run_cancel(run=run)
    assert sorted(run.shards.values_list("status", flat=True)) == ["cancelled", "cancelled", "done"]
    assert Stage2Result.objects.filter(run=run).count() == 5
    with pytest.raises(ValidationError, match="only a paused or failed run"):
        engine.stage2_run_resume(run=run)


def test_a_failing_shard_fails_the_run_and_resume_reruns_it(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"shard_size": 6}, enqueue=False)
    first, second = run.shards.order_by("index")
    engine.stage2_shard_run(shard_id=first.pk)
    with mock.patch.object(engine, "chunk_results", side_effect=RuntimeError("model file missing")):
        assert engine.stage2_shard_run(shard_id=second.pk) == "failed"
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.FAILED and "shard 1: RuntimeError: model file missing" in run.error
    engine.stage2_run_resume(run=run)
    engine.stage2_shard_run(shard_id=second.pk)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.DONE and run.summary["n_results"] == 12


def test_finaliser_waits_for_every_shard(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, config={"shard_size": 6}, enqueue=False)
    assert engine.stage2_finalise(run_id=run.pk) is None
    first = run.shards.order_by("index").first()
    assert first is not None
    engine.stage2_shard_run(shard_id=first.pk)
    run.refresh_from_db()
    assert run.status == Stage2Run.Status.RUNNING
    assert engine.stage2_finalise_all() == 0


def test_one_unfinished_run_per_project(project: Any, pool: dict[str, Any]) -> None:
    engine.stage2_run_create(project=project, enqueue=False)
    with pytest.raises(ValidationError, match="still running"):
        engine.stage2_run_create(project=project, enqueue=False)


def test_missing_models_and_bad_settings_are_named(project: Any, pool: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as err:
        engine.stage2_run_create(project=project, config={"policy": "lenient"}, enqueue=False)
    assert "policy" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        engine.stage2_run_create(project=project, config={"shards": 3}, enqueue=False)
    assert "shards" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        engine.stage2_run_create(project=project, config={"shard_size": 0}, enqueue=False)
    assert "shard_size" in err.value.message_dict
    for bad in (8, "128", True):
        with pytest.raises(ValidationError) as err:
            engine.stage2_run_create(project=project, config={"max_length": bad}, enqueue=False)
        assert "max_length" in err.value.message_dict
    pool["gold"].is_gold = False
    pool["gold"].save()
    with pytest.raises(ValidationError) as err:
        engine.stage2_run_create(project=project, enqueue=False)
    assert "gold_model" in err.value.message_dict
    assert not Stage2Run.objects.exists()


def test_category_comes_from_the_pair_attribute_else_its_subset(project: Any, pool: dict[str, Any]) -> None:
    first, second = pool["pairs"][0], pool["pairs"][1]
    first.metadata = {"attributes": {"task_category": "coding"}}
    first.save()
    second.subset = "summaries"
    second.save()
    run = engine.stage2_run_create(project=project, enqueue=False)
    run_all(run)
    run.refresh_from_db()
    by_category = run.summary["by_category"]
    assert by_category["coding"] == {"kept": 1} and by_category["summaries"] == {"kept": 1}
    assert sum(sum(row.values()) for row in by_category.values()) == 12


def test_a_finaliser_that_died_is_taken_over_once_stale(project: Any, pool: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, enqueue=False)
    shard = run.shards.get()
    attempt = jobs.claim(SHARD, shard.pk)
    assert attempt is not None
    jobs.finish(SHARD, shard.pk, attempt, "done")  # no results: simulate a finaliser killed mid-way
    Stage2Run.objects.filter(pk=run.pk).update(status="finalising", finalising_at=timezone.now())
    assert engine.stage2_finalise(run_id=run.pk) is None  # a live finaliser is left alone
    Stage2Run.objects.filter(pk=run.pk).update(finalising_at=timezone.now() - timezone.timedelta(hours=1))
    closed = engine.stage2_finalise(run_id=run.pk)
    assert closed is not None and closed.status == "done" and closed.dataset_version_id is None
