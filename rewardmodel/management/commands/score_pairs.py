from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rewardmodel.services import model_version_resolve


class Command(BaseCommand):
    help = "Score a JSONL file of pairs with a reward model: writes r_chosen, r_rejected and p per line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="model version name or checkpoint directory")
        parser.add_argument("--data", required=True, type=Path)
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--max-length", type=int, default=512)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["data"].is_file():
            raise CommandError(f"{options['data']}: no such file")
        try:
            path, _version = model_version_resolve(options["model"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        from rewardmodel.ml.infer import score_file

        try:
            summary = score_file(
                path,
                options["data"],
                options["out"],
                batch_size=options["batch_size"],
                max_length=options["max_length"],
            )
        except ValueError as exc:
            raise CommandError(f"{options['data']}: {exc}") from None
        self.stdout.write(json.dumps(summary, default=str))
