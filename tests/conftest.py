"""Shared fixtures: a project with three annotators, a lead, an admin and an outsider."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from annotation.models import Role
from annotation.services import import_file, project_create, user_create

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEMO_FILE = Path(__file__).resolve().parent.parent / "demo" / "pairs.jsonl"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Skip GPU tests without CUDA. In CI (REQUIRE_SERVICES=1) a postgres test never skips."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


@pytest.fixture(autouse=True, scope="session")
def _private_broker_folders(tmp_path_factory: pytest.TempPathFactory) -> None:
    """On the filesystem broker, tests publish into their own folders, never into the dev queue."""
    from config.celery import app

    if str(app.conf.broker_url).startswith("filesystem://"):
        base = tmp_path_factory.mktemp("broker")
        for sub in ("in", "processed", "control"):
            (base / sub).mkdir()
        app.conf.broker_transport_options = {
            "data_folder_in": str(base / "in"),
            "data_folder_out": str(base / "in"),
            "processed_folder": str(base / "processed"),
            "control_folder": str(base / "control"),
            "store_processed": False,
        }


@pytest.fixture(autouse=True)
def _fast_settings(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.MODEL_STORE_DIR = tmp_path / "models"
    from django.core.cache import cache

    cache.clear()  # log-in lockout and API throttle counts start at zero in every test


@pytest.fixture
def require_postgres(db: Any) -> None:
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("this test needs PostgreSQL and REQUIRE_SERVICES=1 is set")
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/synpref")


PASSWORD = "pw-for-tests-1"


@pytest.fixture
def users(db: Any) -> dict[str, Any]:
    """alice, bob, carol (annotators), dave (annotator not in the project), lena (lead), adam (admin)."""
    spec = {
        "alice": [Role.ANNOTATOR],
        "bob": [Role.ANNOTATOR],
        "carol": [Role.ANNOTATOR],
        "dave": [Role.ANNOTATOR],
        "lena": [Role.LEAD],
        "adam": [Role.ADMIN],
    }
    return {
        name: user_create(username=name, password=PASSWORD, roles=[r.value for r in roles])
        for name, roles in spec.items()
    }


@pytest.fixture
def project(users: dict[str, Any]) -> Any:
    p = project_create(name="Test project", created_by=users["adam"], guidelines="# Be careful\n\nCheck facts.")
    p.members.add(users["alice"], users["bob"], users["carol"], users["lena"])
    return p


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def demo_slice(tmp_path: Path) -> Path:
    """The first 20 demo pairs (real data)."""
    lines = DEMO_FILE.read_text(encoding="utf-8").splitlines()[:20]
    return write_jsonl(tmp_path / "slice.jsonl", lines)


@pytest.fixture
def loaded_project(project: Any, demo_slice: Path) -> Any:
    import_file(project=project, path=demo_slice)
    return project


@pytest.fixture
def celery_worker(transactional_db: Any) -> Any:
    """A real Celery worker (in a thread of this process) on the configured broker.

    In CI the broker is Redis; on a laptop it is the filesystem transport. Queue names are made
    unique per test process so parallel test processes never take each other's tasks.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    suffix = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
    queues = {name: f"test-{name}-{suffix}" for name in ("celery", "gpu", "sandbox")}
    saved = (app.conf.task_default_queue, app.conf.task_routes)
    app.conf.task_default_queue = queues["celery"]
    app.conf.task_routes = {
        "rewardmodel.tasks.*": {"queue": queues["gpu"]},
        "curation.tasks.curation_round_run": {"queue": queues["gpu"]},
        "curation.tasks.pool_embed": {"queue": queues["gpu"]},
        "annotation.tools.tasks.code_run*": {"queue": queues["sandbox"]},
    }
    _reset_routing(app)
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=list(queues.values()),
            shutdown_timeout=60,
        ):
            yield app
    finally:
        app.conf.task_default_queue, app.conf.task_routes = saved
        _reset_routing(app)


def _reset_routing(app: Any) -> None:
    """Celery caches its router and queue declarations on first send; drop them so new routes apply."""
    amqp = app.amqp
    for name in ("router", "queues", "default_queue"):
        amqp.__dict__.pop(name, None)
    amqp._rtable = None


def wait_for(predicate: Any, timeout: float = 180.0, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout:.0f}s")


# --- tiny reward models (built in-process, nothing downloaded) ---------------------------------


@pytest.fixture(scope="session")
def rm_records() -> list[dict[str, Any]]:
    """48 synthetic hh-form pairs with a learnable signal (polite chosen, rude rejected)."""
    from tests.rewardmodel.ml.conftest import make_records

    return make_records(48, seed=3)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, rm_records: list[dict[str, Any]]) -> Path:
    from rewardmodel.ml.backbones import build_tiny_bert
    from tests.rewardmodel.ml.conftest import corpus

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), corpus(rm_records))


@pytest.fixture
def tiny_base(settings: Any, tiny_model_dir: Path) -> str:
    """Register the tiny model as a configured base model and return its value for forms/services."""
    settings.RM_BASE_MODELS = [f"tiny={tiny_model_dir}"]
    return str(tiny_model_dir)
