"""rewardmodel/ml is pure: no Django and no import of the annotation / curation apps."""

from __future__ import annotations

import ast
from pathlib import Path

import rewardmodel.ml

FORBIDDEN = ("django", "annotation", "curation", "rest_framework", "celery")


def test_ml_package_imports_no_django_or_other_apps() -> None:
    root = Path(rewardmodel.ml.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_every_module_starts_with_future_annotations() -> None:
    root = Path(rewardmodel.ml.__file__).parent
    for path in root.rglob("*.py"):
        assert "from __future__ import annotations" in path.read_text(encoding="utf-8"), path.name
