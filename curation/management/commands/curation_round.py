from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from curation.models import CurationRound
from curation.rounds import round_create, round_run


class Command(BaseCommand):
    help = "Run a whole curation round for a project in this process (train, score, embed, retrieve, queue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument(
            "--config", help='JSON object of round settings, e.g. \'{"k_max": 8, "train": {"max_steps": 50}}\''
        )
        parser.add_argument("--base", help="base model: 'default' (packaged MiniLM) or a configured checkpoint path")
        parser.add_argument("--max-steps", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"no project named {options['project']!r}")
        try:
            config = json.loads(options["config"]) if options["config"] else {}
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from None
        if options["base"]:
            config["base_model"] = options["base"]
        if options["max_steps"] is not None:
            config.setdefault("train", {})["max_steps"] = options["max_steps"]
        try:
            round_ = round_create(project=project, config=config, enqueue=False)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        done = round_run(round_id=round_.pk)
        assert done is not None
        for row in done.step_rows():
            self.stdout.write(f"{row['key']:>8}: {row.get('status')} {row.get('detail', '')}")
        self.stdout.write(
            json.dumps({"round": done.number, "status": done.status, "metrics": done.metrics}, default=str)
        )
        if done.status != CurationRound.Status.DONE:
            raise CommandError(f"round {done.number} failed: {done.error}")
