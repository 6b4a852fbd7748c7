"""Where the judges are used: rounds label retrieved pairs into D_silver, the data browser's ask button."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from curation import rounds
from curation.datasets import dataset_version_freeze
from curation.judges import client, services
from curation.judges.models import JudgeRun, JudgeShard, JudgeVerdict
from curation.rounds import round_config, round_create
from tests.conftest import PASSWORD
from tests.curation.judges.conftest import content_judge, make_pair, verify

FAST = client.RetryPolicy(retries=0, base_s=0.0, cap_s=0.0)


def _lines(version: Any, part: str = "train") -> list[dict[str, Any]]:
    path = (version.train_data if part == "train" else version.eval_data).path
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_silver_from_judges_uses_their_verdicts_only(project: Any, stub: Any, make_judge: Any) -> None:
    gold = [make_pair(project, 100 + n) for n in range(3)]
    for pair in gold:
        verify(pair, "A")
    judged = [make_pair(project, n, right="B") for n in range(3)]
    unjudged = make_pair(project, 9, right="A")  # a source label, but no judge verdict
    judge = make_judge(stub(content_judge).url)
    run = services.judge_run_create(project=project, pair_ids=[p.pk for p in judged], purpose="silver", judges=[judge])
    services.judge_shard_run(shard_id=run.shards.get().pk, policy=FAST)
    # The judges decided "B" for each (the RIGHT answer is B); flip one source label so judge != source.
    judged[0].source_label = "A"
    judged[0].save(update_fields=["source_label"])

    version = dataset_version_freeze(project=project, name="r", gold_val_fraction=0.0, silver="judges")
    silver = [line for line in _lines(version) if line["split"] == "silver"]
    assert {line["pair_id"] for line in silver} == {p.pk for p in judged}
    assert unjudged.pk not in {line["pair_id"] for line in silver}
    assert all(line["via"] == "judge" and line["pool"] == "silver" for line in silver)
    assert all(line["chosen"].startswith("RIGHT") and not line["verified"] for line in silver)
    assert version.counts["silver"] == 3 == version.counts["silver_via_judge"]
    assert version.filters["silver_labels"] == "judges"

    by_source = dataset_version_freeze(project=project, name="s", gold_val_fraction=0.0)
    source_lines = {line["pair_id"]: line for line in _lines(by_source) if line["split"] == "silver"}
    assert unjudged.pk in source_lines and source_lines[judged[0].pk]["chosen"].startswith("wrong")
    assert by_source.counts["silver_via_source"] == len(source_lines)


def test_bad_silver_settings_are_refused_naming_the_field(project: Any) -> None:
    with pytest.raises(ValidationError) as info:
        round_config({"silver_labels": "crowd"})
    assert "silver_labels" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        dataset_version_freeze(project=project, name="x", gold_val_fraction=0.5, silver="crowd")
    assert "silver" in info.value.message_dict
    with pytest.raises(ValidationError) as info:  # judges wanted, none enabled
        round_create(project=project, config={"silver_labels": "judges"}, enqueue=False)
    assert "no LLM judge is enabled" in " ".join(info.value.message_dict["silver_labels"])


def test_a_judges_round_sends_its_retrieved_pairs_to_the_judges_once(
    project: Any, stub: Any, make_judge: Any, settings: Any, tmp_path: Any
) -> None:
    settings.MODEL_STORE_DIR = tmp_path
    judge = make_judge(stub(content_judge).url)
    verify(make_pair(project, 100), "A")
    retrieved = [make_pair(project, n, right="B" if n % 2 else "A") for n in range(4)]
    JudgeVerdict.objects.create(
        pair=retrieved[0], project=project, side="A", strength="clearly", decided_at="2025-01-01T00:00:00Z"
    )
    round_ = round_create(project=project, config={"silver_labels": "judges"}, enqueue=False)
    lines = [json.dumps({"pair_id": p.pk, "priority": 0.5, "sources": [1]}) for p in retrieved]
    (rounds._round_dir(round_) / "retrieved.jsonl").write_text("\n".join(lines) + "\n")

    with mock.patch("curation.judges.tasks.judge_shard_run_task.delay"):
        detail = rounds._step_queue(round_)
    run = JudgeRun.objects.get()
    assert run.purpose == "silver" and run.write_verdicts and list(run.judges.all()) == [judge]
    assert sorted(s for shard in run.shards.all() for s in shard.pair_ids) == sorted(p.pk for p in retrieved[1:])
    round_.refresh_from_db()
    assert round_.metrics["judge_run_id"] == run.pk and round_.metrics["n_sent_to_judges"] == 3
    assert "3 sent to the LLM judges" in detail

    done = services.judge_shard_run(shard_id=run.shards.get().pk, policy=FAST)
    assert done is not None and done.status == JudgeShard.Status.DONE
    assert dict(JudgeVerdict.objects.exclude(pair=retrieved[0]).values_list("pair_id", "side")) == {
        p.pk: p.source_label for p in retrieved[1:]
    }
    # The step runs again (a resumed round): no second run.
    with mock.patch("curation.judges.tasks.judge_shard_run_task.delay"):
        again = rounds._step_queue(round_)
    assert JudgeRun.objects.count() == 1 and f"judge run {run.pk} already" in again


def test_source_rounds_never_ask_the_judges(
    project: Any, stub: Any, make_judge: Any, settings: Any, tmp_path: Any
) -> None:
    settings.MODEL_STORE_DIR = tmp_path
    make_judge(stub(content_judge).url)
    pair = make_pair(project, 1)
    round_ = round_create(project=project, config={}, enqueue=False)
    assert round_.config["silver_labels"] == "source"
    (rounds._round_dir(round_) / "retrieved.jsonl").write_text(json.dumps({"pair_id": pair.pk, "priority": 0.4}) + "\n")
    rounds._step_queue(round_)
    assert not JudgeRun.objects.exists()


def test_the_pair_page_offers_the_judges_to_leads(
    client: Client, users: dict[str, Any], project: Any, stub: Any, make_judge: Any
) -> None:
    make_judge(stub(content_judge).url)
    pair = make_pair(project, 1)
    JudgeVerdict.objects.create(
        pair=pair, project=project, side="B", strength="slightly", decided_at="2025-01-01T00:00:00Z"
    )
    assert client.login(username=users["adam"].username, password=PASSWORD)
    page = client.get(f"/curation/projects/{project.pk}/pairs/{pair.pk}/").content.decode()
    assert f"/judges/projects/{project.pk}/pairs/{pair.pk}/ask/" in page
    assert "D_silver label by the judges: <strong>B slightly</strong>" in page
    with mock.patch("curation.judges.tasks.judge_shard_run_task.delay"):
        response = client.post(f"/judges/projects/{project.pk}/pairs/{pair.pk}/ask/")
    assert response.status_code == 200 and JudgeRun.objects.get().purpose == "ask"
    client.logout()
    assert client.login(username=users["alice"].username, password=PASSWORD)  # an annotator
    assert client.post(f"/judges/projects/{project.pk}/pairs/{pair.pk}/ask/").status_code == 403
