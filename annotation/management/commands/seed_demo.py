from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from annotation.models import Project, Role
from annotation.services import import_file, project_create, user_set_roles

DEMO_PASSWORD = "synpref-demo"
DEMO_USERS = {
    "alice": [Role.ANNOTATOR],
    "bob": [Role.ANNOTATOR],
    "carol": [Role.ANNOTATOR],
    "lena": [Role.LEAD],
    "adam": [Role.ADMIN],
}
DEMO_GUIDELINES = """# Labelling guidelines

1. **Read the whole conversation** first; the responses answer the *last* user turn.
2. **Verify before you judge**: use the fact-check search for claims, run code in the code
   runner, and ask the AI assist when stuck. The label is your call: never copy an AI's verdict.
3. **Choose** the better response and how much better (slightly / clearly). If you truly cannot
   decide, choose *can't decide*: the pair goes to a lead.
4. **Attributes**: pick the task category, how objective the request is, how controversial, and
   what the user needs most. Write an instance guideline when this pair needs a special rule
   (e.g. "requires authoritative sources", "allows speculation").
5. **Rationale**: one or two sentences on why.

Harmful requests: a safe refusal or safe redirection beats compliance, however helpful.

Keyboard: `1` left clearly, `2` left slightly, `3` right slightly, `4` right clearly,
`0` can't decide, `Ctrl+Enter` submit, `g` guidelines.
"""


class Command(BaseCommand):
    help = "Create the demo users (password 'synpref-demo') and the Demo project with 300 real pairs. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=Path(settings.BASE_DIR) / "demo" / "pairs.jsonl")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            users = []
            for username, roles in DEMO_USERS.items():
                user, created = user_model.objects.get_or_create(username=username)
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                user_set_roles(user=user, roles=[r.value for r in roles])
                users.append(user)
            admin = user_model.objects.get(username="adam")
            project = Project.objects.filter(name="Demo").first()
            if project is None:
                project = project_create(
                    name="Demo",
                    description="Real pairs from hh-rlhf (harmless-base) and summarize-from-feedback.",
                    guidelines=DEMO_GUIDELINES,
                    created_by=admin,
                )
            project.members.add(*users)
        if not project.pairs.exists():
            result = import_file(project=project, path=options["file"], created_by=admin)
            self.stdout.write(f"imported {result.n_imported} demo pairs")
        self.stdout.write(
            "demo users (password 'synpref-demo'): alice, bob, carol (annotators), lena (lead), adam (admin)"
        )
