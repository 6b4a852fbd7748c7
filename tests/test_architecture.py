"""Import direction: annotation <- curation -> rewardmodel; pure modules import no Django/torch; rooms by noun.

annotation/tools/ is a room of its own (the Django app ``tools``): it may import annotation (pairs,
assignments), and annotation reaches it only where the labelling page mounts it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("annotation", "curation", "rewardmodel")
FORBIDDEN = {
    "annotation": {"curation", "rewardmodel"},
    "rewardmodel": {"annotation", "curation"},
    "curation": set(),
}
PURE = [
    "curation/agreement.py",
    "curation/sampling.py",
    "curation/retrieval.py",
    "curation/embedding_store.py",
    "curation/charts.py",
    "rewardmodel/charts.py",
    "annotation/formats.py",
    "annotation/preference.py",
    "curation/majority.py",
    "curation/stage2/decontam.py",
    "curation/stage2/rules.py",
    "curation/stage2/estimate.py",
    "annotation/tools/sandbox.py",
    "annotation/tools/cgroups.py",
    "annotation/tools/seccomp.py",
    "annotation/tools/llm.py",
    "annotation/tools/searxng.py",
    "annotation/tools/highlight.py",
    "annotation/tools/corpus.py",
    "annotation/tools/codeblocks.py",
    "curation/judges/prompt.py",
    "curation/judges/voting.py",
    "curation/judges/examples.py",
    "curation/judges/client.py",
    "rewardmodel/remote.py",
]
TORCH_OK = "rewardmodel/ml"
TOOLS = "annotation/tools"
# annotation's modules that may import the tools: the labelling page shows whether AI assist is on.
# (annotation/urls.py mounts the tools' urls by name, ``include("annotation.tools.urls")``.)
ANNOTATION_MAY_IMPORT_TOOLS = {"annotation/views.py"}


def imports_of(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def app_files(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


def dotted_imports_of(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name (``from a import b`` gives ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_annotation_reaches_tools_only_for_the_page() -> None:
    bad = {}
    for path in app_files("annotation"):
        name = str(path.relative_to(ROOT))
        if name.startswith(f"{TOOLS}/") or name in ANNOTATION_MAY_IMPORT_TOOLS:
            continue
        hits = {m for m in dotted_imports_of(path) if m == "annotation.tools" or m.startswith("annotation.tools.")}
        if hits:
            bad[name] = hits
    assert bad == {}


def test_tools_parts_live_in_the_tools_room() -> None:
    """The tools app's models, tasks, urls, job kinds and template tags are its own files, not the parent's."""
    from django.apps import apps

    config = apps.get_app_config("tools")
    assert Path(config.path) == ROOT / TOOLS
    assert {model.__module__ for model in config.get_models()} == {"annotation.tools.models"}
    for part in ("models.py", "tasks.py", "urls.py", "jobs.py", "templatetags/tools_extras.py"):
        assert (ROOT / TOOLS / part).is_file(), part
    assert not (ROOT / "annotation/tools_urls.py").exists()
    assert not (ROOT / "annotation/templatetags/tools_extras.py").exists()


@pytest.mark.parametrize("app", APPS)
def test_no_upward_imports(app: str) -> None:
    bad = {str(p.relative_to(ROOT)): imports_of(p) & FORBIDDEN[app] for p in app_files(app)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_ml_imports_no_django() -> None:
    ml = ROOT / TORCH_OK
    bad = [str(p.relative_to(ROOT)) for p in ml.rglob("*.py") if imports_of(p) & {"django", "rest_framework", "celery"}]
    assert bad == []


def test_pure_modules_import_no_django_or_torch() -> None:
    bad = {}
    for name in PURE:
        path = ROOT / name
        if path.exists():
            hit = imports_of(path) & {"django", "torch", "transformers", "rest_framework"}
            if hit:
                bad[name] = hit
    assert bad == {}


def test_torch_is_imported_only_in_ml_or_inside_functions() -> None:
    """The web process never loads torch: outside rewardmodel/ml, torch appears only in function bodies."""
    bad = []
    for app in APPS:
        for path in app_files(app):
            if TORCH_OK in str(path.relative_to(ROOT)):
                continue
            if imports_of(path, top_level_only=True) & {"torch", "transformers", "onnxruntime"}:
                bad.append(str(path.relative_to(ROOT)))
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rewardmodel.ml"):
                    bad.append(f"{path.relative_to(ROOT)} imports {node.module} at module level")
    assert bad == []


# curation's modules every Django app has; every other curation module is a room the README names.
CURATION_PLUMBING = {"__init__", "apps", "admin", "models", "urls", "tasks", "receivers", "jobs", "forms"}


def readme_layout_block(top: str) -> str:
    """The lines of README's layout section that describe ``top`` (its line and the indented ones after it)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1].split("```", 2)[1]
    block: list[str] = []
    for line in section.splitlines():
        if line.startswith(top) or block and line.startswith(" "):
            block.append(line)
        elif block:
            break
    return "\n".join(block)


def test_curation_is_cut_by_noun() -> None:
    """No catch-all services/selectors/views module: each noun is its own module (see README's layout)."""
    for name in ("services.py", "selectors.py", "views.py"):
        assert not (ROOT / "curation" / name).exists(), name


def test_readme_layout_names_every_curation_room() -> None:
    import re

    block = readme_layout_block("curation/")
    assert block, "README's layout section has no curation/ entry"
    modules = {p.stem for p in (ROOT / "curation").glob("*.py")} - CURATION_PLUMBING
    missing = sorted(m for m in modules if not re.search(rf"\b{re.escape(m)}\b", block))
    assert missing == []


def test_curation_reaches_the_model_code_through_rewardmodel_services() -> None:
    """Rounds, judges and stage 2 ask rewardmodel.services (or rewardmodel.scoring), never rewardmodel.ml."""
    bad = {}
    for path in app_files("curation"):
        hits = {m for m in dotted_imports_of(path) if m == "rewardmodel.ml" or m.startswith("rewardmodel.ml.")}
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}
