from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.exporting import FORMATS, export_to
from annotation.models import Project


class Command(BaseCommand):
    help = "Export fully labelled pairs (majority label) as JSON Lines for TRL's RewardTrainer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="output .jsonl path, or - for standard output")
        parser.add_argument("--project", required=True)
        parser.add_argument("--format", choices=FORMATS, default="conversational")
        parser.add_argument(
            "--with-evidence",
            action="store_true",
            help="add each pair's tool evidence (searches, code runs, AI questions)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"no project named {options['project']!r}")
        out = options["out"]
        if out == "-":
            stats = export_to(sys.stdout, project, options["format"], include_evidence=options["with_evidence"])
        else:
            path = Path(out)
            tmp = path.with_name(path.name + ".partial")
            with tmp.open("w", encoding="utf-8") as handle:
                stats = export_to(handle, project, options["format"], include_evidence=options["with_evidence"])
            tmp.replace(path)  # never leave a half-written export under the real name
        self.stderr.write(f"exported {stats.exported} pairs; {stats.no_majority} without a majority left out")
