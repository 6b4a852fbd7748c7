"""Export (curation.export) and its one record builder: verified data by default, the other selections on request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotation.models import Pair
from curation.disputes import dispute_resolve
from curation.export import export_lines, export_records
from curation.gate import batch_gate_accept
from curation.models import BatchGate, Dispute, VerifiedPair
from tests.curation.helpers import A_CLEARLY, FAILING, UNDECIDABLE, WITH_MISSING, label_matrix, make_batch, settle


@pytest.fixture
def curated(project: Any, users: dict[str, Any], trio: list[Any]) -> dict[str, Any]:
    """Batch 1 passes its gate: pairs 1-2 verified by majority, pair 3 disputed then resolved by the lead
    as "A clearly" (the annotators said B slightly). Batch 2 is flagged: pairs 4-5 wait for the gate,
    pair 6 has an open dispute. Batch 3: pair 7, all "can't decide", discarded by the rule."""
    _, first = make_batch(project, 3, "one.jsonl")
    _, second = make_batch(project, 3, "two.jsonl")
    _, third = make_batch(project, 1, "three.jsonl")
    label_matrix(
        project,
        trio,
        list(zip(first, WITH_MISSING, strict=True))
        + list(zip(second, FAILING, strict=True))
        + [(third[0], [UNDECIDABLE] * 3)],
    )
    gate_one, gate_two = settle(project, first), settle(project, second)
    settle(project, third)
    assert gate_one is not None and gate_one.status == BatchGate.Status.OK
    assert gate_two is not None and gate_two.status == BatchGate.Status.FLAGGED
    dispute = Dispute.objects.get(pair=first[2])
    dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision=A_CLEARLY, note="A cites the source.")
    pairs = [*first, *second, *third]
    return {"pairs": pairs, "gate_two": gate_two, "ids": [p.pk for p in pairs]}


def records(project: Any, **options: Any) -> dict[int, dict[str, Any]]:
    return {json.loads(line)["pair_id"]: json.loads(line) for line in export_lines(project, **options)}


def test_default_export_is_verified_data_with_the_leads_label(project: Any, curated: dict[str, Any]) -> None:
    p1, p2, p3, p4, p5, p6, p7 = curated["pairs"]
    rows = records(project)

    assert sorted(rows) == [p1.pk, p2.pk, p3.pk]  # waiting for the gate (4, 5), disputed (6), discarded (7): absent
    lead = rows[p3.pk]
    assert (lead["label"], lead["strength"], lead["via"], lead["pool"]) == ("A_CLEARLY", "clearly", "lead", "gold")
    assert lead["verified"] is True and lead["state"] == "verified"
    assert lead["majority"] == "B_SLIGHTLY"  # what the annotators said, overruled
    assert lead["chosen"] == [{"role": "assistant", "content": p3.response_a}]
    assert lead["rejected"] == [{"role": "assistant", "content": p3.response_b}]
    assert lead["votes"] == {"chosen": 0, "rejected": 2, "undecidable": 1}
    assert lead["dispute_reason"] == "undecidable"
    majority = rows[p2.pk]
    assert (majority["label"], majority["via"], majority["verified"]) == ("B_CLEARLY", "majority", True)
    assert majority["chosen"][0]["content"] == p2.response_b and majority["agrees_with_source"] is False
    assert majority["votes"] == {"chosen": 3, "rejected": 0, "undecidable": 0}
    assert majority["attributes"]["task_category"] == "advice"
    assert majority["attributes"]["desired_attributes"] == ["helpfulness"]
    assert majority["dataset_version"] is None and majority["n_annotators"] == 3
    assert "labels" not in majority and "evidence" not in majority


def test_accepting_the_flagged_batch_brings_its_pairs_into_the_export(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    p4, p5 = curated["pairs"][3:5]
    batch_gate_accept(gate_id=curated["gate_two"].pk, lead=users["adam"], note="Checked each pair.")
    rows = records(project)
    assert {p4.pk, p5.pk} <= set(rows) and curated["pairs"][5].pk not in rows
    assert rows[p4.pk]["via"] == "majority" and rows[p4.pk]["label"] == "A_CLEARLY"


def test_all_selection_marks_raw_majorities_unverified(project: Any, curated: dict[str, Any]) -> None:
    p1, p2, p3, p4, p5, p6, p7 = curated["pairs"]
    rows = records(project, selection="all")

    assert sorted(rows) == [p1.pk, p2.pk, p3.pk, p4.pk, p5.pk, p6.pk]  # pair 7 has no majority at all
    assert all(rows[p.pk]["verified"] for p in (p1, p2, p3))
    assert rows[p3.pk]["label"] == "A_CLEARLY"  # verified: the final label, not the raw majority
    waiting = rows[p4.pk]
    assert (waiting["verified"], waiting["state"], waiting["via"], waiting["label"]) == (
        False,
        "pending",
        "majority",
        "A_CLEARLY",
    )
    disputed = rows[p6.pk]
    assert (disputed["verified"], disputed["state"], disputed["label"]) == (False, "disputed", "B_SLIGHTLY")
    assert disputed["chosen"][0]["content"] == p6.response_b


def test_disputed_and_discarded_selections_carry_no_label(project: Any, curated: dict[str, Any]) -> None:
    p6, p7 = curated["pairs"][5], curated["pairs"][6]
    (disputed,) = records(project, selection="disputed").values()
    assert disputed["pair_id"] == p6.pk and disputed["state"] == "disputed" and disputed["verified"] is False
    assert "chosen" not in disputed and (disputed["response_a"], disputed["response_b"]) == (
        p6.response_a,
        p6.response_b,
    )
    assert disputed["label"] is None and disputed["dispute_reason"] == "strength_split"
    assert [lbl["preference"] for lbl in disputed["labels"]] == FAILING[2]  # labels on by default for review
    (discarded,) = records(project, selection="discarded").values()
    assert (discarded["pair_id"], discarded["state"], discarded["label"]) == (p7.pk, "discarded", None)
    assert discarded["votes"] == {"A": 0, "B": 0, "undecidable": 3}


def test_labels_on_request_and_standard_format(project: Any, curated: dict[str, Any]) -> None:
    p1 = curated["pairs"][0]
    row = records(project, include_labels=True, fmt="standard")[p1.pk]
    assert row["prompt"].endswith("Assistant:") and row["chosen"] == p1.response_a
    assert [lbl["preference"] for lbl in row["labels"]] == WITH_MISSING[0]
    assert {lbl["order_shown"] for lbl in row["labels"]} <= {"AB", "BA"}
    assert records(project, include_labels=False, selection="disputed")[curated["pairs"][5].pk].get("labels") is None


def test_a_discard_after_verification_removes_the_pair(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    p3 = curated["pairs"][2]
    dispute = Dispute.objects.get(pair=p3)
    dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision="DISCARD", note="Both are wrong.")
    assert p3.pk not in records(project)
    assert p3.pk in records(project, selection="discarded")


def test_latest_lead_decision_wins(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    p3 = curated["pairs"][2]
    dispute = Dispute.objects.get(pair=p3)
    dispute_resolve(dispute_id=dispute.pk, lead=users["adam"], decision="B_SLIGHTLY", note="On reflection, B.")
    row = records(project)[p3.pk]
    assert (row["label"], row["via"]) == ("B_SLIGHTLY", "lead")
    assert row["chosen"][0]["content"] == p3.response_b


def test_bad_options_raise_naming_the_field(project: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        list(export_records(project, fmt="csv"))
    assert "format" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        list(export_records(project, selection="everything"))
    assert "selection" in caught.value.message_dict


def test_export_command(project: Any, curated: dict[str, Any], tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "gold.jsonl"
    call_command("export_pairs", str(out), "--project", project.name)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["pair_id"] for r in rows} == set(VerifiedPair.objects.values_list("pair_id", flat=True))
    assert "exported 3 pairs" in capsys.readouterr().err
    call_command(
        "export_pairs", str(out), "--project", project.name, "--selection", "discarded", "--format", "standard"
    )
    assert [json.loads(x)["state"] for x in out.read_text().splitlines()] == ["discarded"]
    with pytest.raises(CommandError, match="no project named"):
        call_command("export_pairs", str(tmp_path / "x.jsonl"), "--project", "missing")
    assert not (tmp_path / "x.jsonl").exists()


def test_verified_export_loads_as_a_trl_preference_dataset(
    project: Any, curated: dict[str, Any], tmp_path: Path
) -> None:
    import datasets
    from trl.data_utils import is_conversational

    out = tmp_path / "trl.jsonl"
    call_command("export_pairs", str(out), "--project", project.name)
    dataset = datasets.load_dataset("json", data_files=str(out), split="train")
    assert dataset.num_rows == 3 and {"prompt", "chosen", "rejected", "verified", "via"} <= set(dataset.column_names)
    assert is_conversational(dataset[0])


@pytest.mark.slow
def test_trl_reward_trainer_trains_on_the_verified_export(
    project: Any, curated: dict[str, Any], tmp_path: Path
) -> None:
    """The verified export goes into TRL's RewardTrainer as is (tiny Qwen3-shaped model, one step)."""
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rewardmodel.ml.backbones import build_tiny_decoder

    out = tmp_path / "trl.jsonl"
    call_command("export_pairs", str(out), "--project", project.name)
    pairs = list(Pair.objects.filter(project=project))
    texts = [p.conversation[0]["content"] + " " + p.response_a + " " + p.response_b for p in pairs]
    model_dir = build_tiny_decoder(tmp_path / "tiny", texts)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    before = [p.detach().clone() for p in model.parameters()]
    train = datasets.load_dataset("json", data_files=str(out), split="train")
    assert train.num_rows == 3 and all(train["verified"])
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(
            output_dir=str(tmp_path / "trl-out"),
            max_steps=1,
            per_device_train_batch_size=2,
            report_to=[],
            logging_steps=1,
            save_strategy="no",
            use_cpu=True,
        ),
        train_dataset=train,
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0
    assert any(not (a == b).all() for a, b in zip(before, model.parameters(), strict=True))
