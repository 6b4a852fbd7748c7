"""``manage.py seed_demo_history``: the demo project with a seeded history (curation/demo_history.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.demo_history import PROJECT_NAME, TRAIN_MODES, seed_demo_history


class Command(BaseCommand):
    help = (
        f"Create the project {PROJECT_NAME!r}: simulated labels, agreement, disputes, retests, checks and "
        "a short CPU training round. Needs seed_demo's users. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=Path(settings.BASE_DIR) / "demo" / "pairs.jsonl")
        parser.add_argument(
            "--train",
            choices=TRAIN_MODES,
            default="worker",
            help="the demo's curation round: queued for the worker (default), run here, or skipped",
        )
        parser.add_argument("--max-steps", type=int, default=8, help="training steps of the demo round")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.contrib.auth import get_user_model

        if not get_user_model().objects.filter(username__in=["lena", "adam"]).count() == 2:
            raise CommandError("run `manage.py seed_demo` first (it creates the demo users)")
        if options["max_steps"] < 1:
            raise CommandError("--max-steps must be at least 1")
        report = seed_demo_history(
            pairs_file=options["file"],
            train=options["train"],
            max_steps=options["max_steps"],
            log=self.stdout.write,
        )
        if not report.created:
            self.stdout.write(f"demo project {PROJECT_NAME!r} already seeded")
            return
        figures = ", ".join(f"{k}: {v}" for k, v in report.figures.items())
        self.stdout.write(f"seeded {PROJECT_NAME!r} in {report.seconds:.1f} s ({figures})")
