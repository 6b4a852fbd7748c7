from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from curation.export import DEFAULT_SELECTION, EXPORT_FORMATS, SELECTIONS, export_to


class Command(BaseCommand):
    help = (
        "Export a project's curated pairs as JSON Lines for TRL's RewardTrainer: verified pairs (D_gold) "
        "with their final label by default; --selection all|disputed|discarded for the others."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="output .jsonl path, or - for standard output")
        parser.add_argument("--project", required=True)
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="conversational")
        parser.add_argument(
            "--selection",
            choices=list(SELECTIONS),
            default=DEFAULT_SELECTION,
            help="; ".join(f"{k}: {v}" for k, v in SELECTIONS.items()),
        )
        parser.add_argument("--with-labels", action="store_true", help="add every annotator's label")
        parser.add_argument(
            "--with-evidence",
            action="store_true",
            help="add each pair's tool evidence (searches, code runs, AI questions)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"no project named {options['project']!r}")
        export = {
            "fmt": options["format"],
            "selection": options["selection"],
            "include_labels": True if options["with_labels"] else None,
            "include_evidence": options["with_evidence"],
        }
        out = options["out"]
        try:
            if out == "-":
                stats = export_to(sys.stdout, project, **export)
            else:
                path = Path(out)
                tmp = path.with_name(path.name + ".partial")
                try:
                    with tmp.open("w", encoding="utf-8") as handle:
                        stats = export_to(handle, project, **export)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
                tmp.replace(path)  # never leave a half-written export under the real name
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(stats.summary())
