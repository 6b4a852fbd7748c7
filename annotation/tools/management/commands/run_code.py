"""Run a file through the code runner's sandbox and print one JSON object.

    manage.py run_code FILE [--language python]

Prints ``{"stdout", "stderr", "exit_code", "signal", "wall_seconds", "cpu_seconds", "limit_hit",
...}``; when no sandbox is available it prints ``{"refused": true, "error": "..."}`` and exits 2.
Limits and the sandbox mode come from the SANDBOX_* settings, as for annotators' runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.tools import sandbox
from annotation.tools.services import sandbox_limits


class Command(BaseCommand):
    help = "Run FILE in the code runner's sandbox; print stdout, stderr, exit status, time and the limit hit as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--language", default="python", choices=sorted(sandbox.LANGUAGES))

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            code = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        try:
            result = sandbox.run(
                code,
                language=options["language"],
                limits=sandbox_limits(),
                mode=settings.SANDBOX_MODE,
                uid_range=(settings.SANDBOX_UID_MIN, settings.SANDBOX_UID_MAX),
                use_cgroup=settings.SANDBOX_USE_CGROUP,
                cgroup_parent_v2=settings.SANDBOX_CGROUP_PARENT,
            )
        except sandbox.SandboxUnavailable as exc:
            self.stdout.write(json.dumps({"refused": True, "error": str(exc), "sandbox": settings.SANDBOX_MODE}))
            sys.exit(2)
        self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False))
