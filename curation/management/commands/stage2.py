from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from curation.stage2 import engine
from curation.stage2.models import Stage2Run


class Command(BaseCommand):
    help = (
        "Run stage 2 (consistency filtering and label recycling) over a project's unverified pool with its gold "
        "and current-best reward models, in this process (or --queue it to the workers); prints a JSON summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True)
        parser.add_argument("--policy", choices=["paper", "strict"], help="recycling: flip all not kept, or strict")
        parser.add_argument("--band", type=float, help="pairs with p_best within this of the threshold go to judges")
        parser.add_argument("--flip-margin", type=float, help="strict policy: how far below the threshold both must be")
        parser.add_argument("--shard-size", type=int)
        parser.add_argument("--benchmark", help="RewardBench-format JSONL file to decontaminate against (13-grams)")
        parser.add_argument("--config", help="JSON object of further stage-2 settings")
        parser.add_argument("--queue", action="store_true", help="queue the shards to the workers and return")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"no project named {options['project']!r}")
        try:
            config = json.loads(options["config"]) if options["config"] else {}
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise CommandError("--config must be a JSON object")
        for option, key in (("policy", "policy"), ("band", "band"), ("flip_margin", "flip_margin"), ("shard_size", "shard_size")):  # fmt: skip
            if options[option] is not None:
                config[key] = options[option]
        try:
            benchmark = None
            if options["benchmark"]:
                path = Path(options["benchmark"])
                if not path.is_file():
                    raise CommandError(f"--benchmark: no file {path}")
                benchmark = engine.benchmark_store(path=path)
            run = engine.stage2_run_create(
                project=project, config=config, benchmark=benchmark, enqueue=bool(options["queue"])
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items()) if hasattr(exc, "error_dict") else "; ".join(exc.messages)) from None  # fmt: skip
        if options["queue"]:
            self.stdout.write(
                json.dumps({"run": run.pk, "status": run.status, "n_pairs": run.n_pairs, "n_shards": run.n_shards})
            )
            return
        for shard_id in run.shards.order_by("index").values_list("pk", flat=True):
            engine.stage2_shard_run(shard_id=shard_id)
        engine.stage2_finalise(run_id=run.pk)
        run.refresh_from_db()
        self.stdout.write(
            json.dumps(
                {
                    "run": run.pk,
                    "status": run.status,
                    "error": run.error,
                    "dataset_version": run.dataset_version_id,
                    **run.summary,
                },
                default=str,
            )
        )
        if run.status != Stage2Run.Status.DONE:
            raise CommandError(f"stage-2 run {run.pk} {run.status}: {run.error}")
