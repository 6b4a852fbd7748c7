from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rewardmodel.models import TrainingJob
from rewardmodel.services import dataset_file_register, training_job_create, training_job_run


class Command(BaseCommand):
    help = "Train a Bradley-Terry reward model on a JSONL file of pairs (in this process, or queued with --queue)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True, type=Path, help="training pairs: prompt, chosen, rejected")
        parser.add_argument("--eval", type=Path, help="D_gold pairs: picks the best checkpoint")
        parser.add_argument("--base", default="default", help="checkpoint directory (default: packaged MiniLM)")
        parser.add_argument("--name", default="reward-model")
        parser.add_argument("--scope", default="")
        parser.add_argument("--config", help="JSON object of RewardTrainingConfig fields")
        parser.add_argument("--max-steps", type=int)
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--max-length", type=int)
        parser.add_argument("--queue", action="store_true", help="queue on the gpu worker instead of training here")

    def handle(self, *args: Any, **options: Any) -> None:
        config: dict[str, Any] = {}
        if options["config"]:
            try:
                config = json.loads(options["config"])
            except json.JSONDecodeError as exc:
                raise CommandError(f"--config is not valid JSON: {exc}") from None
        for option, field in (
            ("max_steps", "max_steps"),
            ("epochs", "num_epochs"),
            ("lr", "learning_rate"),
            ("batch_size", "batch_size"),
            ("max_length", "max_length"),
        ):
            if options[option] is not None:
                config[field] = options[option]
        try:
            for key in ("data", "eval"):
                if options[key] is not None and not options[key].is_file():
                    raise ValidationError(f"{options[key]}: no such file")
            train = dataset_file_register(path=options["data"], name=options["data"].name, scope=options["scope"])
            gold = (
                dataset_file_register(path=options["eval"], name=options["eval"].name, scope=options["scope"])
                if options["eval"]
                else None
            )
            job = training_job_create(
                name=options["name"],
                train_data=train,
                eval_data=gold,
                base_model=options["base"],
                config=config,
                scope=options["scope"],
                enqueue=options["queue"],
                any_base_model=True,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if options["queue"]:
            self.stdout.write(f"queued training job {job.pk}")
            return
        done = training_job_run(job_id=job.pk)
        assert done is not None
        self.stdout.write(done.log)
        if done.status != TrainingJob.Status.SUCCEEDED:
            raise CommandError(f"training job {job.pk} {done.status}: {done.error}")
        version = done.model_version
        if version is None:
            raise CommandError(f"training job {job.pk} registered no model")
        self.stdout.write(f"model version {version.name} at {version.path}")
        self.stdout.write(
            json.dumps({"job": job.pk, "model": version.name, "path": version.path, "metrics": version.metrics})
        )
