from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Project
from curation.agreement_refresh import project_refresh_all
from curation.dashboard import agreement_summary


class Command(BaseCommand):
    help = (
        "Print a project's agreement as one JSON object: Krippendorff's alpha per dimension for the "
        "project and each batch (with its gate), per-annotator agreement, and retest results."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project name")
        parser.add_argument(
            "--refresh",
            action="store_true",
            help="also recompute and store the figures and apply every batch's gate now (as the workers do)",
        )
        parser.add_argument("--indent", type=int, default=2, help="JSON indent (0 for one line)")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            raise CommandError(f"no project named {options['project']!r}")
        if options["refresh"]:
            project_refresh_all(project=project)
        summary = agreement_summary(project)
        indent = options["indent"] or None
        self.stdout.write(json.dumps(summary, indent=indent, sort_keys=False, allow_nan=False))
