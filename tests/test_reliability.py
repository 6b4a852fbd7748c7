"""Background work never sticks: the shared job lifecycle (config/jobs.py) under injected faults.

Faults: the broker unreachable (the web side points at a closed port), a worker killed with
SIGKILL mid-import and mid-code-run (a real Celery worker process), messages lost between a
label and curation. See docs/reliability.md for what the user sees and what is kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from annotation.jobs import IMPORT
from annotation.models import ImportBatch, Pair
from annotation.services import ServiceError, import_batch_create, import_batch_run
from annotation.tools.jobs import CODE_RUN
from annotation.tools.models import CodeRun
from annotation.tools.services import code_run_create, sandbox_cgroups_left
from config import jobs
from tests.conftest import PASSWORD, REQUIRE_SERVICES, wait_for

ROOT = Path(__file__).resolve().parent.parent
CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


def _reset_connections(app: Any) -> None:
    """Drop Celery's cached connection and producer pools so a new broker URL applies."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The web side's broker points at a closed port for the test (the outage), then comes back."""
    pytest.importorskip("redis", reason="the outage is simulated with a redis:// URL to a closed port")
    from config.celery import app

    names = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport_options")
    saved = {name: app.conf[name] for name in names}
    app.conf.update(
        broker_url=CLOSED_PORT_BROKER,
        broker_read_url=CLOSED_PORT_BROKER,
        broker_write_url=CLOSED_PORT_BROKER,
        broker_transport_options={},
    )
    _reset_connections(app)
    try:
        yield
    finally:
        app.conf.update(saved)
        _reset_connections(app)


def _pairs_file(path: Path, n: int, tag: str = "p") -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            record = {
                "prompt": f"\n\nHuman: Question {tag}-{i}: what is {i} plus {i}?\n\nAssistant:",
                "chosen": f"It is {2 * i}.",
                "rejected": f"It is {2 * i + 1}.",
            }
            out.write(json.dumps(record) + "\n")
    return path


def _age(kind: jobs.JobKind, pk: int, **fields_seconds_ago: float) -> None:
    now = timezone.now()
    kind.objects.filter(pk=pk).update(**{k: now - timedelta(seconds=s) for k, s in fields_seconds_ago.items()})


# --- broker down on the web side -------------------------------------------------------------------


def test_an_upload_while_the_broker_is_down_is_queued_with_a_note_and_sent_when_it_is_back(
    client: Any,
    users: dict[str, Any],
    project: Any,
    demo_slice: Path,
    broker_down: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.login(username="adam", password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("annotation:import-create"),
            {"project": project.pk, "file": SimpleUploadedFile("slice.jsonl", demo_slice.read_bytes())},
        )
    assert response.status_code == 302, response.content.decode()[:500]
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.dispatched_at, batch.dispatch_note) == ("queued", None, jobs.BROKER_NOTE)
    page = client.get(reverse("annotation:import-detail", args=[batch.pk]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200 and "will run when the worker is back" in page.content.decode()
    # The broker comes back: the maintenance pass sends it (a dispatch in flight gets 10 s first).
    with mock.patch("annotation.tasks.import_batch_run_task.delay") as delay:
        assert jobs.reap(IMPORT)["resent"] == 0
        _age(IMPORT, batch.pk, queued_at=30)
        counts = jobs.reap(IMPORT)
    assert counts["resent"] == 1 and delay.call_args.kwargs == {"batch_id": batch.pk}
    batch.refresh_from_db()
    assert batch.dispatched_at is not None and batch.dispatch_note == ""


def test_a_code_run_while_the_broker_is_down_is_a_message_not_a_500_and_stuck_runs_never_lock_out(
    client: Any,
    users: dict[str, Any],
    project: Any,
    settings: Any,
    broker_down: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.annotation.tools.conftest import claim

    pair = Pair.objects.create(
        project=project,
        conversation=[{"role": "user", "content": "hi"}],
        response_a="a",
        response_b="b",
        content_hash="h",
    )
    assignment = claim(pair, users["alice"])
    client.login(username="alice", password=PASSWORD)
    url = reverse("annotation:tools:code", args=[assignment.pair_id])
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"code": "print(1)", "language": "python"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
    runs = list(CodeRun.objects.all())
    assert len(runs) == 3 and all(r.status == "queued" and r.dispatch_note == jobs.BROKER_NOTE for r in runs)
    polled = client.get(reverse("annotation:tools:code-run", args=[runs[0].pk]), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "will run when the worker is back" in polled.content.decode()
    with pytest.raises(ServiceError, match="wait for your earlier requests"):
        code_run_create(pair=pair, user=users["alice"], code="print(2)", language="python")
    # No worker took them within TOOLS_QUEUED_TIMEOUT_S: they are no longer live, the annotator may run
    # code again, and the maintenance pass ends them with a message.
    for run in runs:
        _age(CODE_RUN, run.pk, queued_at=settings.TOOLS_QUEUED_TIMEOUT_S + 1)
    with django_capture_on_commit_callbacks(execute=True):
        fourth = code_run_create(pair=pair, user=users["alice"], code="print(2)", language="python")
    assert jobs.reap(CODE_RUN)["expired"] == 3
    ended = CodeRun.objects.exclude(pk=fourth.pk)
    assert all(r.status == "failed" and "No worker picked this up" in r.error for r in ended)


# --- a worker that dies: reaper, redelivery, ownership ---------------------------------------------


def test_a_dead_import_is_requeued_once_then_fails_and_its_upload_is_deleted(
    project: Any, demo_slice: Path, settings: Any
) -> None:
    with mock.patch("annotation.tasks.import_batch_run_task.delay"):
        batch = import_batch_create(project=project, upload=demo_slice.open("rb"), filename="slice.jsonl")
    upload = Path(batch.path)
    assert upload.exists()
    assert jobs.claim(IMPORT, batch.pk) == 1
    _age(IMPORT, batch.pk, heartbeat_at=settings.JOBS_STALE_AFTER_S + 1)
    with mock.patch("annotation.tasks.import_batch_run_task.delay") as delay:
        assert jobs.reap(IMPORT)["requeued"] == 1
    delay.assert_called_once_with(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == "queued" and "attempt 2 of 2" in batch.dispatch_note and upload.exists()
    assert jobs.claim(IMPORT, batch.pk) == 2
    _age(IMPORT, batch.pk, heartbeat_at=settings.JOBS_STALE_AFTER_S + 1)
    assert jobs.reap(IMPORT)["failed"] == 1
    batch.refresh_from_db()
    assert batch.status == "failed" and "worker lost" in batch.errors[0]["message"] and batch.finished_at
    assert not upload.exists() and batch.path == ""
    assert Pair.objects.count() == 0


def test_a_redelivered_message_takes_over_only_a_silent_row_and_imports_once(
    project: Any, demo_slice: Path, settings: Any
) -> None:
    with mock.patch("annotation.tasks.import_batch_run_task.delay"):
        batch = import_batch_create(project=project, upload=demo_slice.open("rb"), filename="slice.jsonl")
    assert jobs.claim(IMPORT, batch.pk) == 1  # the worker that will "die"
    assert import_batch_run(batch_id=batch.pk) is None  # a duplicate while it still beats: nothing
    _age(IMPORT, batch.pk, heartbeat_at=settings.JOBS_STALE_AFTER_S + 1)
    done = import_batch_run(batch_id=batch.pk)  # the redelivered message after the kill
    assert done is not None and done.status == "done" and done.attempts == 2
    assert Pair.objects.filter(batch=batch).count() == 20 and done.path == ""
    assert not jobs.finish(IMPORT, batch.pk, 1, "failed", errors=[])  # the dead attempt cannot overwrite it
    assert ImportBatch.objects.get(pk=batch.pk).status == "done"


def test_poll_stops_only_htmx_requests_of_finished_rows(rf: Any) -> None:
    from django.http import HttpResponse

    htmx = rf.get("/", HTTP_HX_REQUEST="true")
    htmx.htmx = True
    plain = rf.get("/")
    plain.htmx = False
    assert jobs.poll(htmx, HttpResponse("x"), finished=True).status_code == 286
    assert jobs.poll(htmx, HttpResponse("x"), finished=False).status_code == 200
    assert jobs.poll(plain, HttpResponse("x"), finished=True).status_code == 200


def test_every_background_model_is_maintained() -> None:
    keys = {kind.model for kind in jobs.kinds()}
    assert keys == {
        "annotation.ImportBatch",
        "tools.CodeRun",
        "tools.AIQuery",
        "tools.Corpus",
        "rewardmodel.TrainingJob",
        "rewardmodel.EvaluationRun",
        "curation.CurationRound",
        "curation.Stage2Shard",
        "judges.JudgeShard",
    }
    # Whatever model gains a heartbeat later must be registered too, or its rows could stick.
    from django.apps import apps

    beating = {m._meta.label for m in apps.get_models() if any(f.name == "heartbeat_at" for f in m._meta.fields)}
    assert beating == keys
    from django.conf import settings

    assert any(e["task"] == "config.jobs.maintain" for e in settings.CELERY_BEAT_SCHEDULE.values())


# --- labels while the broker is down: the sweep finds every lost verdict ------------------------------


def test_labels_saved_while_the_broker_is_down_get_their_verdicts_from_the_sweep(
    users: dict[str, Any], project: Any, settings: Any, broker_down: None, django_capture_on_commit_callbacks: Any
) -> None:
    from curation.agreement_refresh import agreement_sweep, batch_refresh
    from curation.models import BatchGate, Dispute, VerifiedPair
    from curation.sweep import pairs_missing_verdict
    from tests.curation.helpers import label_matrix, make_batch

    settings.CURATION_GATE_MIN_UNITS = 1
    settings.CURATION_ALPHA_THRESHOLD = -1.0  # the gate opens whatever the alpha of three pairs
    settings.CURATION_RETEST_RATE = 0.0
    trio = [users["alice"], users["bob"], users["carol"]]
    batch, (clean, split, other) = make_batch(project, 3)
    with django_capture_on_commit_callbacks(execute=True):  # every curation message fails to send
        label_matrix(
            project,
            trio,
            [
                (clean, ["A_CLEARLY", "A_CLEARLY", "A_CLEARLY"]),
                (split, ["A_CLEARLY", "B_CLEARLY", "UNDECIDABLE"]),
                (other, ["B_SLIGHTLY", "B_SLIGHTLY", "B_SLIGHTLY"]),
            ],
        )
    assert Pair.objects.filter(status="complete").count() == 3  # the labels were saved
    assert not Dispute.objects.exists() and not BatchGate.objects.exists()  # curation never heard of them
    assert {p for p, _, _ in pairs_missing_verdict()} == {clean.pk, split.pk, other.pk}
    with django_capture_on_commit_callbacks(execute=True):
        agreement_sweep()  # still no broker: it computes what it can here and records the rest
    assert Dispute.objects.filter(pair=split).exists()
    gate = BatchGate.objects.get(batch_key=f"import:{batch.pk}")
    assert gate.requested_seq > gate.computed_seq  # the refresh stays requested until it can be sent
    batch_refresh(project_id=project.pk, batch_key=gate.batch_key)  # what the re-sent task runs
    assert set(VerifiedPair.objects.values_list("pair_id", flat=True)) == {clean.pk, other.pk}
    assert pairs_missing_verdict() == []


# --- a real worker process killed with SIGKILL -----------------------------------------------------


def _database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    """``celery worker --pool solo`` in its own process group, on this test's queues and database."""

    def __init__(self, tmp_path: Path, queues: dict[str, str]) -> None:
        self.var = tmp_path / "worker-var"
        self.queues = queues
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / "worker.log"

    def start(self) -> None:
        from config.celery import app

        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "VAR_DIR": str(self.var),
            "SYNPREF_DEV": "1",
            "CELERY_BROKER_URL": str(app.conf.broker_url),
            "JOBS_HEARTBEAT_S": "0.5",
            "CELERY_VISIBILITY_TIMEOUT": "2",
            "SANDBOX_WALL_SECONDS": "60",
            "SANDBOX_CPU_SECONDS": "60",
        }
        cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-l", "INFO"]
        cmd += [
            "-Q",
            ",".join(self.queues.values()),
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"h3-{os.getpid()}@%h",
        ]
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(
            self.proc.pid, signal.SIGKILL
        )  # the worker's main process only: its children are orphaned as in a crash
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def worker_process(transactional_db: Any, tmp_path: Path, settings: Any) -> Iterator[WorkerProcess]:
    from config.celery import app
    from tests.conftest import _reset_routing

    suffix = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}-{time.monotonic_ns()}"
    queues = {name: f"kill-{name}-{suffix}" for name in ("celery", "sandbox")}
    saved = (app.conf.task_default_queue, app.conf.task_routes, app.conf.broker_transport_options)
    app.conf.task_default_queue = queues["celery"]
    app.conf.task_routes = {"annotation.tools.tasks.code_run*": {"queue": queues["sandbox"]}}
    worker = WorkerProcess(tmp_path, queues)
    if str(app.conf.broker_url).startswith("filesystem://"):  # share the worker's folders
        folders = {sub: worker.var / "broker" / sub for sub in ("in", "processed", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(folders["in"]),
            "data_folder_out": str(folders["in"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        }
        _reset_connections(app)
    _reset_routing(app)
    settings.JOBS_STALE_AFTER_S = 3
    try:
        yield worker
    finally:
        worker.stop()
        app.conf.task_default_queue, app.conf.task_routes, app.conf.broker_transport_options = saved
        _reset_connections(app)
        _reset_routing(app)
        if worker.log.exists() and os.environ.get("SHOW_WORKER_LOG"):
            sys.stderr.write(worker.log.read_text(errors="replace")[-5000:])


@pytest.mark.worker
def test_kill_9_mid_import_leaves_nothing_half_imported_and_the_batch_finishes_after_restart(
    worker_process: WorkerProcess, project: Any, tmp_path: Path
) -> None:
    n = 40000
    source = _pairs_file(tmp_path / "big.jsonl", n)
    worker_process.start()
    batch = import_batch_create(project=project, upload=source.open("rb"), filename="big.jsonl")
    upload = Path(batch.path)
    wait_for(lambda: ImportBatch.objects.filter(pk=batch.pk, status="running").exists(), timeout=120, interval=0.02)
    worker_process.kill()
    assert ImportBatch.objects.get(pk=batch.pk).status == "running"
    assert Pair.objects.filter(batch=batch).count() == 0  # one transaction: nothing half imported
    time.sleep(3.5)  # the heartbeat goes stale (JOBS_STALE_AFTER_S=3 here)
    assert jobs.reap(IMPORT)["requeued"] == 1  # and sent again; a redelivered message may race it: either wins once
    worker_process.start()
    done = wait_for(lambda: ImportBatch.objects.filter(pk=batch.pk, status__in=["done", "failed"]).first(), timeout=240)
    assert done.status == "done", done.errors
    assert done.attempts == 2 and Pair.objects.filter(batch=batch).count() == n == done.n_imported
    assert not upload.exists() and done.path == ""


@pytest.mark.worker
def test_kill_9_mid_code_run_ends_the_run_failed_with_a_message(
    worker_process: WorkerProcess, users: dict[str, Any], project: Any, settings: Any
) -> None:
    from annotation.tools import sandbox
    from tests.annotation.tools.conftest import claim

    problem = sandbox.sandbox_problem(settings.SANDBOX_MODE)
    if problem:
        if REQUIRE_SERVICES:
            pytest.fail(f"the code runner cannot run here and REQUIRE_SERVICES=1: {problem}")
        pytest.skip(f"the code runner cannot run here: {problem}")
    pair = Pair.objects.create(
        project=project,
        conversation=[{"role": "user", "content": "hi"}],
        response_a="a",
        response_b="b",
        content_hash="k",
    )
    claim(pair, users["alice"])
    worker_process.start()
    run = code_run_create(pair=pair, user=users["alice"], code="import time\ntime.sleep(50)", language="python")
    started = wait_for(lambda: CodeRun.objects.filter(pk=run.pk).exclude(status="queued").first(), timeout=120)
    if started.status == "refused":
        if REQUIRE_SERVICES:
            pytest.fail(f"the sandbox refused to run code with REQUIRE_SERVICES=1: {started.error}")
        pytest.skip(f"the sandbox refused to run code here: {started.error}")
    wait_for(lambda: CodeRun.objects.filter(pk=run.pk, status="running").exists(), timeout=60)
    assert worker_process.proc is not None
    dead_pid = worker_process.proc.pid  # the solo pool runs the sandbox in the worker's main process
    from annotation.tools import cgroups

    if settings.SANDBOX_USE_CGROUP and cgroups.detect(settings.SANDBOX_CGROUP_PARENT).usable:
        # Runs get a cgroup here: the live run has one (no cleanup touches a live worker's cgroups;
        # once it is dead, any worker starting, even another test's, may remove it at once).
        wait_for(lambda: sandbox_cgroups_left(owners=[dead_pid]) != [], timeout=30)
    worker_process.kill()
    time.sleep(3.5)
    assert jobs.reap(CODE_RUN)["failed"] == 1
    ended = CodeRun.objects.get(pk=run.pk)
    assert ended.status == "failed" and "worker lost" in ended.error and ended.finished_at
    # Never re-run automatically: a restarted worker that gets the redelivered message does nothing.
    worker_process.start()
    time.sleep(4)
    assert CodeRun.objects.get(pk=run.pk).status == "failed"
    # The dead worker's run cgroup is gone (a worker's start-up cleanup; beat repeats it every 5 minutes).
    wait_for(lambda: sandbox_cgroups_left(owners=[dead_pid]) == [], timeout=30)
