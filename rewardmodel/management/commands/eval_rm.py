from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rewardmodel.services import dataset_check, evaluate_file, json_safe, model_version_resolve


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


class Command(BaseCommand):
    help = "Evaluate a reward model on a RewardBench-format file: overall and per-subset accuracy, then a JSON line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="model version name or checkpoint directory")
        parser.add_argument("--data", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        data: Path = options["data"]
        if not data.is_file():
            raise CommandError(f"{data}: no such file")
        try:
            dataset_check(data, data.name)
            path, _version = model_version_resolve(options["model"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        metrics = evaluate_file(model_path=path, data_path=str(data))
        self.stdout.write(
            f"overall: accuracy {_fmt(metrics['accuracy'])} over {metrics['n']} pairs, "
            f"mean margin {_fmt(metrics['mean_margin'])}"
        )
        for name, row in sorted(metrics.get("per_subset", {}).items()):
            self.stdout.write(f"  {name}: accuracy {_fmt(row['accuracy'])} over {row['n']} pairs")
        if metrics.get("best_of_n_groups"):
            self.stdout.write(
                f"best-of-N accuracy: {_fmt(metrics['best_of_n_accuracy'])} over {metrics['best_of_n_groups']} prompts"
            )
        self.stdout.write(json.dumps({"model": options["model"], "data": str(data), **json_safe(metrics)}))
