from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.importing import ImportValidationError
from annotation.models import Project
from annotation.services import import_file


class Command(BaseCommand):
    help = "Import preference pairs from a JSON Lines file into a project (all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="project name")
        parser.add_argument("--create", action="store_true", help="create the project if it does not exist")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        project = Project.objects.filter(name=options["project"]).first()
        if project is None:
            if not options["create"]:
                raise CommandError(f"no project named {options['project']!r} (use --create to make it)")
            from annotation.services import project_create

            project = project_create(name=options["project"])
        try:
            result = import_file(project=project, path=path)
        except ImportValidationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{path}: {result.n_lines} lines, {result.n_imported} imported, "
            f"{result.n_duplicates} duplicates skipped (batch {result.batch_id})"
        )
