from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from annotation.exporting import export_lines, majority_label
from annotation.models import Pair
from annotation.services import annotation_submit, assignment_claim_next
from tests.annotation.test_assignment import label
from tests.factories import PairFactory


@pytest.mark.parametrize(
    ("preferences", "side", "strength"),
    [
        (["A_CLEARLY", "A_SLIGHTLY", "B_CLEARLY"], "A", "slightly"),
        (["A_CLEARLY", "A_CLEARLY", "B_CLEARLY"], "A", "clearly"),
        (["B_CLEARLY", "B_CLEARLY", "B_SLIGHTLY"], "B", "clearly"),
        (["A_CLEARLY", "B_CLEARLY", "UNDECIDABLE"], None, None),
        (["A_CLEARLY", "UNDECIDABLE", "UNDECIDABLE"], None, None),
        (["UNDECIDABLE"] * 3, None, None),
        ([], None, None),
    ],
)
def test_majority_label(preferences: list[str], side: str | None, strength: str | None) -> None:
    majority = majority_label(preferences)
    assert (majority.side, majority.strength) == (side, strength)


def label_pair(project: Any, users: dict[str, Any], prefs: dict[str, str], **attrs: Any) -> None:
    for name, preference in prefs.items():
        assignment = assignment_claim_next(project=project, annotator=users[name])
        annotation_submit(assignment_id=assignment.pk, annotator=users[name], data=label(preference, **attrs))


def test_export_uses_the_majority_and_skips_incomplete_and_tied(
    project: Any, users: dict[str, Any], tmp_path: Path
) -> None:
    flipped, tied, partial = PairFactory.create_batch(3, project=project)
    label_pair(project, users, {"alice": "B_CLEARLY", "bob": "B_SLIGHTLY", "carol": "A_SLIGHTLY"})
    label_pair(project, users, {"alice": "A_CLEARLY", "bob": "B_CLEARLY", "carol": "UNDECIDABLE"})
    label_pair(project, users, {"alice": "A_CLEARLY"})
    out = tmp_path / "out.jsonl"
    call_command("export_pairs", str(out), "--project", project.name)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["pair_id"] for r in rows] == [flipped.pk]
    row = rows[0]
    # The annotators overturned the source label: B becomes chosen.
    assert row["chosen"] == [{"role": "assistant", "content": flipped.response_b}]
    assert row["rejected"] == [{"role": "assistant", "content": flipped.response_a}]
    assert row["prompt"] == flipped.conversation
    assert row["votes"] == {"chosen": 2, "rejected": 1, "undecidable": 0}
    assert row["strength"] == "slightly" and row["n_annotators"] == 3
    assert row["agrees_with_source"] is False
    assert row["attributes"]["task_category"] == "advice"
    assert row["attributes"]["desired_attributes"] == ["helpfulness"]
    assert len(row["labels"]) == 3 and {lbl["rationale"] for lbl in row["labels"]} == {"A answers the question."}


def test_standard_format_is_strings(project: Any, users: dict[str, Any]) -> None:
    pair = PairFactory(project=project)
    label_pair(project, users, {"alice": "A_CLEARLY", "bob": "A_CLEARLY", "carol": "A_SLIGHTLY"})
    (row,) = [json.loads(x) for x in export_lines(project, "standard")]
    assert row["prompt"] == f"\n\nHuman: {pair.conversation[0]['content']}\n\nAssistant:"
    assert (row["chosen"], row["rejected"], row["strength"]) == (pair.response_a, pair.response_b, "clearly")


def test_export_loads_as_a_trl_preference_dataset(project: Any, users: dict[str, Any], tmp_path: Path) -> None:
    import datasets
    from trl.data_utils import is_conversational

    PairFactory.create_batch(2, project=project)
    for _ in range(2):
        label_pair(project, users, {"alice": "A_CLEARLY", "bob": "A_SLIGHTLY", "carol": "B_SLIGHTLY"})
    out = tmp_path / "trl.jsonl"
    call_command("export_pairs", str(out), "--project", project.name)
    dataset = datasets.load_dataset("json", data_files=str(out), split="train")
    assert dataset.num_rows == 2 and {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert is_conversational(dataset[0])


def test_export_command_errors(project: Any, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no project named"):
        call_command("export_pairs", str(tmp_path / "x.jsonl"), "--project", "missing")
    assert Pair.objects.count() == 0


@pytest.mark.slow
def test_trl_reward_trainer_trains_on_the_export(project: Any, users: dict[str, Any], tmp_path: Path) -> None:
    """The exported file goes into TRL's RewardTrainer as is (tiny Qwen3-shaped model, one step)."""
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rewardmodel.ml.backbones import build_tiny_decoder

    pairs = PairFactory.create_batch(4, project=project)
    for _ in pairs:
        label_pair(project, users, {"alice": "A_CLEARLY", "bob": "A_SLIGHTLY", "carol": "B_SLIGHTLY"})
    out = tmp_path / "trl.jsonl"
    call_command("export_pairs", str(out), "--project", project.name)
    texts = [p.conversation[0]["content"] + " " + p.response_a + " " + p.response_b for p in pairs]
    model_dir = build_tiny_decoder(tmp_path / "tiny", texts)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    before = [p.detach().clone() for p in model.parameters()]
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
        train_dataset=datasets.load_dataset("json", data_files=str(out), split="train"),
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0
    assert any(not (a == b).all() for a, b in zip(before, model.parameters(), strict=True))
