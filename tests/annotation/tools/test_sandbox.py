"""The code runner's sandbox: each escape is contained, reported, and the worker keeps serving."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from annotation.models import CodeRun
from annotation.tools import sandbox
from annotation.tools.services import code_run_create, code_run_execute
from tests.conftest import wait_for

LIMITS = sandbox.Limits(cpu_seconds=1, wall_seconds=3.0, memory_mb=256, processes=32, disk_mb=8, output_bytes=16 * 1024)


def run(
    code: str, *, language: str = "python", limits: sandbox.Limits = LIMITS, mode: str = sandbox.MODE_BWRAP
) -> sandbox.RunResult:
    return sandbox.run(code, language=language, limits=limits, mode=mode)


@pytest.fixture(autouse=True)
def _needs_sandbox(require_sandbox: None) -> None:
    pass


def test_runs_python_and_reports_output_exit_status_and_time() -> None:
    result = run("import sys\nprint('hello', 6 * 7)\nprint('oops', file=sys.stderr)\nsys.exit(3)")
    assert result.stdout == "hello 42\n"
    assert result.stderr == "oops\n"
    assert (result.exit_code, result.signal, result.limit_hit) == (3, None, None)
    assert 0 < result.wall_seconds < 3
    assert result.sandbox == sandbox.MODE_BWRAP
    assert any(layer.startswith("bubblewrap") for layer in result.layers)


def test_runs_bash() -> None:
    result = run('echo "sum: $((2 + 3))"; pwd', language="bash")
    assert (result.stdout, result.exit_code) == ("sum: 5\n/tmp\n", 0)


def test_unknown_language_is_refused_before_running() -> None:
    with pytest.raises(ValueError, match="unknown language"):
        run("x", language="cobol")


def test_no_network_not_even_the_hosts_loopback() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    accepted: list[Any] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    code = f"""
import socket
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("example.com", 80)]:
    try:
        socket.create_connection((host, port), timeout=2)
        print("CONNECTED", host)
    except OSError as exc:
        print("blocked", host, type(exc).__name__)
"""
    result = run(code)
    thread.join()
    listener.close()
    assert "CONNECTED" not in result.stdout
    assert result.stdout.count("blocked") == 3, result.stderr
    assert accepted == []  # the host's listener never saw a connection


def test_cannot_read_the_apps_files_settings_or_etc_shadow() -> None:
    settings_file = Path(django_settings.BASE_DIR) / "config" / "settings.py"
    code = f"""
import os
for path in [{str(settings_file)!r}, "/etc/shadow", "/etc/passwd", {str(django_settings.BASE_DIR)!r}, "/work", "/root"]:
    try:
        with open(path) as handle:
            print("READ", path, handle.read(40))
    except OSError as exc:
        print("denied", path, type(exc).__name__)
print(sorted(os.listdir("/")))
"""
    result = run(code)
    assert "READ" not in result.stdout, result.stdout
    assert result.stdout.count("denied") == 6
    root = json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))
    assert "work" not in root and "root" not in root and "home" not in root


def test_environment_holds_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNPREF_SECRET_CANARY", "s3cret-canary")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:s3cret-canary@db/x")
    result = run("import os, json\nprint(json.dumps(dict(os.environ)))\nprint(open('/proc/1/environ').read())")
    env = json.loads(result.stdout.splitlines()[0])
    assert set(env) <= {"PATH", "HOME", "LANG", "PWD", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "LC_CTYPE"}
    assert "s3cret-canary" not in result.stdout + result.stderr


def test_writes_only_in_a_fresh_temporary_directory(tmp_path: Path) -> None:
    host_target = Path("/tmp") / f"synpref-escape-{uuid.uuid4().hex}"
    code = f"""
for path in ["/escape", "/usr/escape", "/etc/escape", "/dev/shm/escape", {str(tmp_path / "escape")!r}, {str(Path(django_settings.BASE_DIR) / "escape")!r}]:
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, type(exc).__name__)
open({str(host_target)!r}, "w").write("inside the sandbox's own /tmp")
open("/tmp/left-behind", "w").write("x")
print("tmp ok")
"""
    result = run(code)
    assert "WROTE" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 6
    assert "tmp ok" in result.stdout
    assert not host_target.exists()  # the sandbox's /tmp is its own tmpfs
    assert not (tmp_path / "escape").exists()
    again = run("import os; print(os.listdir('/tmp'))")
    assert "left-behind" not in again.stdout  # every run starts with an empty /tmp


def test_fork_bomb_is_contained() -> None:
    before = len(os.listdir("/proc"))
    result = run("import os\nwhile True:\n    os.fork()")
    assert result.limit_hit == sandbox.LIMIT_PROCESSES
    assert result.wall_seconds < LIMITS.wall_seconds + 2
    assert len(os.listdir("/proc")) < before + 10  # nothing left running


def test_allocating_10_gb_hits_the_memory_limit() -> None:
    result = run("data = bytearray(10 * 1024 ** 3)\nprint('allocated')")
    assert result.limit_hit == sandbox.LIMIT_MEMORY
    assert "allocated" not in result.stdout
    assert result.exit_code != 0


def test_infinite_loop_hits_the_cpu_limit() -> None:
    result = run("while True:\n    pass")
    assert result.limit_hit in (sandbox.LIMIT_CPU, sandbox.LIMIT_WALL)
    assert result.exit_code is None and result.signal is not None
    assert result.wall_seconds < LIMITS.wall_seconds + 2


def test_sleeping_forever_hits_the_wall_clock_limit() -> None:
    limits = sandbox.Limits(cpu_seconds=5, wall_seconds=1.5)
    result = run("import time\nprint('started', flush=True)\ntime.sleep(600)", limits=limits)
    assert result.limit_hit == sandbox.LIMIT_WALL
    assert result.stdout == "started\n"  # output before the kill is kept
    assert 1.4 < result.wall_seconds < 4


def test_100_mb_of_output_is_cut_off() -> None:
    result = run("import sys\nchunk = 'x' * 1_000_000\nfor _ in range(100):\n    sys.stdout.write(chunk)")
    assert result.limit_hit == sandbox.LIMIT_OUTPUT
    assert result.stdout_truncated
    assert len(result.stdout) == LIMITS.output_bytes


def test_disk_written_is_limited() -> None:
    result = run("open('/tmp/big', 'wb').write(b'x' * (64 * 1024 * 1024))\nprint('written')")
    assert result.limit_hit == sandbox.LIMIT_DISK
    assert "written" not in result.stdout


def test_refuses_clearly_without_a_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bwrap_problem", lambda bwrap="bwrap": "bubblewrap (bwrap) is not installed")
    with pytest.raises(sandbox.SandboxUnavailable) as refused:
        run("print('should not run')")
    assert "bubblewrap (bwrap) is not installed" in str(refused.value)
    assert "SANDBOX_MODE=unsafe-rlimits-only" in str(refused.value)
    with pytest.raises(sandbox.SandboxUnavailable, match="switched off"):
        run("print(1)", mode=sandbox.MODE_OFF)


def test_unsafe_mode_is_an_explicit_weaker_choice_that_still_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNPREF_SECRET_CANARY", "s3cret-canary")
    result = run("import os\nprint(os.getcwd(), os.getuid())\nprint(dict(os.environ))", mode=sandbox.MODE_UNSAFE)
    assert result.sandbox == sandbox.MODE_UNSAFE
    assert "s3cret-canary" not in result.stdout
    cwd, uid = result.stdout.splitlines()[0].split()
    assert Path(cwd).name.startswith("synpref-run-") and not Path(cwd).exists()  # a fresh dir, removed after
    if os.geteuid() == 0:
        assert int(uid) >= 200_000  # never root
    looping = run("while True:\n    pass", mode=sandbox.MODE_UNSAFE)
    assert looping.limit_hit in (sandbox.LIMIT_CPU, sandbox.LIMIT_WALL)


# --- through the app: the run_code command, the service, and a real worker ---------------------------


def test_run_code_command_prints_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "loop.py"
    script.write_text("print('before')\nwhile True:\n    pass\n")
    call_command("run_code", str(script), "--language", "python")
    out = json.loads(capsys.readouterr().out)
    assert out["stdout"] == "before\n"
    assert out["limit_hit"] in ("cpu_time", "wall_time")
    assert {"stderr", "exit_code", "signal", "wall_seconds", "cpu_seconds", "limits"} <= set(out)


def test_run_code_command_refuses_without_a_sandbox(
    tmp_path: Path, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.SANDBOX_MODE = "off"
    script = tmp_path / "x.py"
    script.write_text("print(1)")
    with pytest.raises(SystemExit) as exited:
        call_command("run_code", str(script))
    assert exited.value.code == 2
    assert json.loads(capsys.readouterr().out)["refused"] is True


def test_a_refused_run_is_stored_with_the_reason(claimed: Any, users: dict[str, Any], settings: Any) -> None:
    settings.SANDBOX_MODE = "off"
    run_row = code_run_create(pair=claimed.pair, user=users["alice"], code="print(1)", language="python")
    done = code_run_execute(run_id=run_row.pk)
    assert done is not None and done.status == CodeRun.Status.REFUSED
    assert "switched off" in done.error and done.stdout == ""
    assert code_run_execute(run_id=run_row.pk) is None  # claimed once: a redelivered task does nothing


@pytest.mark.worker
def test_worker_contains_each_escape_and_keeps_serving(
    celery_worker: Any, claimed: Any, users: dict[str, Any], settings: Any
) -> None:
    """Escapes go through the real sandbox queue; a normal run afterwards still works."""
    alice = users["alice"]
    settings.TOOLS_MAX_PENDING_PER_USER = 10
    escapes = {
        "fork bomb": "import os\nwhile True:\n    os.fork()",
        "infinite loop": "while True:\n    pass",
        "huge output": "while True:\n    print('x' * 10000)",
    }
    ids = {
        name: code_run_create(pair=claimed.pair, user=alice, code=code, language="python").pk
        for name, code in escapes.items()
    }

    def finished() -> list[CodeRun] | None:
        rows = list(CodeRun.objects.filter(pk__in=ids.values()))
        return rows if all(r.is_finished for r in rows) else None

    rows = {r.pk: r for r in wait_for(finished, timeout=240)}
    assert rows[ids["fork bomb"]].limit_hit == "processes"
    assert rows[ids["infinite loop"]].limit_hit in ("cpu_time", "wall_time")
    assert rows[ids["huge output"]].limit_hit == "output" and rows[ids["huge output"]].stdout_truncated
    normal = code_run_create(pair=claimed.pair, user=alice, code="print(sum(range(10)))", language="python")
    done = wait_for(lambda: CodeRun.objects.filter(pk=normal.pk, status=CodeRun.Status.DONE).first(), timeout=120)
    assert (done.stdout, done.exit_code, done.limit_hit) == ("45\n", 0, "")


@pytest.mark.parametrize("use_cgroup", [True, False])
def test_an_interrupted_run_leaves_nothing_running(monkeypatch: pytest.MonkeyPatch, use_cgroup: bool) -> None:
    """Celery's soft time limit (or any error) while we wait must not orphan the program."""
    import random
    import selectors

    if os.geteuid() != 0:
        pytest.skip("tracks the run by its own uid, which needs a root worker")
    uid = random.randint(270_000, 280_000)
    monkeypatch.setattr(sandbox, "_pick_uid", lambda low, high: uid)
    real = selectors.DefaultSelector

    class Interrupted(real):  # type: ignore[misc,valid-type]
        calls = 0

        def select(self, timeout: float | None = None) -> Any:
            Interrupted.calls += 1
            if Interrupted.calls > 3:
                raise RuntimeError("soft time limit")
            return super().select(timeout)

    def processes_of_the_run() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                # a zombie (state Z) is not running; the container's init reaps it
                if (
                    entry.name.isdigit()
                    and entry.stat().st_uid == uid
                    and (entry / "stat").read_text().split(") ")[1][0] != "Z"
                ):
                    found.append(entry.name)
            except (OSError, IndexError):
                continue
        return found

    monkeypatch.setattr(selectors, "DefaultSelector", Interrupted)
    code = "import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.2)"
    with pytest.raises(RuntimeError, match="soft time limit"):
        sandbox.run(code, limits=sandbox.Limits(cpu_seconds=30, wall_seconds=30), use_cgroup=use_cgroup)
    assert Interrupted.calls > 3  # it was interrupted while the program ran
    # SIGKILLed processes may take a moment to go; the program itself would run for 20 s more.
    wait_for(lambda: processes_of_the_run() == [], timeout=3, interval=0.1)
