"""RewardTrainingConfig: JSON round trip and validation errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardmodel.ml.config import ConfigError, RewardTrainingConfig


def test_json_round_trip_keeps_every_field(tmp_path: Path) -> None:
    config = RewardTrainingConfig(
        model_name_or_path="/models/qwen3-0.6b",
        learning_rate=3e-6,
        lr_scheduler="linear",
        warmup_ratio=0.05,
        gradient_accumulation_steps=4,
        attn_implementation="sdpa",
        extra={"dataset_version": 7},
    )
    assert RewardTrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    config.to_json(tmp_path / "cfg.json")
    assert RewardTrainingConfig.from_json(tmp_path / "cfg.json") == config
    assert RewardTrainingConfig.from_json(config.to_json()) == config


def test_missing_keys_take_defaults_and_ints_are_accepted_for_floats() -> None:
    config = RewardTrainingConfig.from_dict({"learning_rate": 1, "batch_size": 4})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.max_length == RewardTrainingConfig().max_length


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"learning_rte": 1e-5}, "learning_rte"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"bf16": 1}, "bf16"),
        ({"epochs": 1}, "epochs"),
        ({"lr_scheduler": "cosine"}, "lr_scheduler"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"save_every": -1}, "save_every"),
        ({"model_dtype": "int4"}, "model_dtype"),
        ({"output_dir": ""}, "output_dir"),
    ],
)
def test_bad_field_raises_error_naming_it(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        RewardTrainingConfig.from_dict(data)
    assert info.value.field == field
    assert field in str(info.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        RewardTrainingConfig(gradient_accumulation_steps=0)


def test_paper_recipe_has_the_skywork_values() -> None:
    config = RewardTrainingConfig.paper_recipe(output_dir="x")
    assert (config.learning_rate, config.lr_scheduler, config.num_epochs, config.max_length) == (
        3e-6,
        "constant",
        1,
        16384,
    )
    assert config.effective_batch_size * 64 == 10240
