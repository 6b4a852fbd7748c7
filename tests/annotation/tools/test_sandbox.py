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

from annotation.tools import cgroups, sandbox
from annotation.tools.models import CodeRun
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


# --- whole-run ceilings (cgroups), the limits in force, nested namespaces and seccomp -----------------------

# Each child stays well below the per-process address-space limit; together they exceed the run's memory.
MANY_CHILDREN = """
import os, time
kids = []
for i in range({n}):
    pid = os.fork()
    if pid == 0:
        block = bytearray({mb} * 1024 * 1024)
        for at in range(0, len(block), 4096):
            block[at] = 1
        print("child", i, "holds its memory", flush=True)
        time.sleep(1.5)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
"""


def _machine_offers_a_writable_cgroup() -> str | None:
    """None when this machine lets the worker make memory+pids cgroups (checked without our code), else why not."""
    if not Path("/sys/fs/cgroup").exists():
        return "no /sys/fs/cgroup on this machine"
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") or [""]:
            own[controller] = path
    unified = Path("/sys/fs/cgroup") / own.get("", "/").lstrip("/")
    if (unified / "cgroup.controllers").exists():
        offered = set((unified / "cgroup.controllers").read_text().split())
        if {"memory", "pids"} <= offered and os.access(unified, os.W_OK):
            return None
    v1 = [Path("/sys/fs/cgroup") / c / own.get(c, "/").lstrip("/") for c in ("memory", "pids")]
    if all(p.is_dir() and os.access(p, os.W_OK) for p in v1) and all(c in own for c in ("memory", "pids")):
        return None
    return (
        "this machine offers the worker no writable cgroup with memory and pids "
        f"(/proc/self/cgroup: {Path('/proc/self/cgroup').read_text().strip()!r})"
    )


@pytest.fixture
def writable_cgroup() -> None:
    problem = _machine_offers_a_writable_cgroup()
    if problem:
        pytest.skip(problem)  # not a missing service: the machine cannot do it, CI included
    support = cgroups.detect("")
    assert support.usable, f"this machine offers a writable cgroup but the sandbox found none: {support.problem}"


def test_memory_limit_holds_for_the_whole_run(writable_cgroup: None) -> None:
    limits = sandbox.Limits(cpu_seconds=5, wall_seconds=20.0, memory_mb=256, processes=32)
    code = MANY_CHILDREN.format(n=6, mb=150)  # 6 x 150 MB: each child is allowed 256 MB of address space
    contained = sandbox.run(code, limits=limits)
    assert contained.limit_hit == sandbox.LIMIT_MEMORY
    assert contained.stdout.count("holds its memory") < 6
    whole_run = contained.limits["enforced"]["memory_whole_run"]
    assert whole_run["enforced"] is True and "256 MB" in whole_run["how"]
    # The same program without the cgroup: every child gets its memory (per-process limits do not add up).
    unlimited = sandbox.run(code, limits=limits, use_cgroup=False)
    assert unlimited.stdout.count("holds its memory") == 6, unlimited.stderr
    assert unlimited.limits["enforced"]["memory_whole_run"] == {
        "enforced": False,
        "how": "no cgroup: switched off (SANDBOX_USE_CGROUP=false)",
    }


FORK_AND_WAIT = """
import os, time
forked = 0
for _ in range(60):
    try:
        pid = os.fork()
    except OSError as exc:
        print("fork refused:", exc.strerror)
        break
    if pid == 0:
        time.sleep(1)
        os._exit(0)
    forked += 1
print("forked", forked)
"""


def test_process_limit_holds_for_the_whole_run_by_the_cgroup_alone(
    writable_cgroup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With RLIMIT_NPROC taken away, the cgroup's pids.max still holds the run to its process count."""
    real = sandbox._prlimit
    monkeypatch.setattr(sandbox, "_prlimit", lambda argv, limits: [a for a in real(argv, limits) if "--nproc" not in a])
    limits = sandbox.Limits(cpu_seconds=5, wall_seconds=20.0, processes=12)
    contained = sandbox.run(FORK_AND_WAIT, limits=limits)
    forked = int(contained.stdout.split("forked")[1])
    assert forked < 12 and "fork refused" in contained.stdout
    assert contained.limit_hit == sandbox.LIMIT_PROCESSES
    assert contained.limits["enforced"]["processes_whole_run"]["enforced"] is True
    free = sandbox.run(FORK_AND_WAIT, limits=limits, use_cgroup=False)
    assert "forked 60" in free.stdout, free.stdout + free.stderr


def test_the_result_says_which_limits_were_in_force() -> None:
    result = run("print(1)")
    enforced = result.limits["enforced"]
    assert list(enforced) == [key for key in sandbox.ENFORCEMENT_LABELS if key in enforced]
    for key in ("cpu_time", "wall_time", "output", "memory_per_process", "network", "filesystem", "disk"):
        assert enforced[key]["enforced"] is True, key
    assert {k: v for k, v in result.limits.items() if k != "enforced"} == LIMITS.as_dict()
    assert sandbox.Limits.from_dict(result.limits) == LIMITS  # a stored run's limits read back
    # Whole-run ceilings: in force exactly when this machine gives the worker a cgroup, and said either way.
    support = cgroups.detect("")
    for key in ("memory_whole_run", "processes_whole_run"):
        assert enforced[key]["enforced"] is support.usable
        if not support.usable:
            assert support.problem in enforced[key]["how"]
    if os.geteuid() == 0:
        assert enforced["own_uid"]["enforced"] is True
    else:
        assert enforced["own_uid"]["enforced"] is False and "not root" in enforced["own_uid"]["how"]


def test_a_cgroup_parent_without_memory_and_pids_is_reported_not_silently_ignored(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io\n")
    result = sandbox.run("print('ran')", limits=LIMITS, cgroup_parent_v2=str(tmp_path))
    assert result.stdout == "ran\n"  # the per-process limits still apply; the run goes ahead
    for key in ("memory_whole_run", "processes_whole_run"):
        entry = result.limits["enforced"][key]
        assert entry["enforced"] is False
        assert "does not offer the memory and pids controller(s)" in entry["how"] and "cpu io" in entry["how"]
    not_a_cgroup = sandbox.run("print('ran')", limits=LIMITS, cgroup_parent_v2=str(tmp_path / "nowhere"))
    assert "is not a cgroup v2 directory" in not_a_cgroup.limits["enforced"]["memory_whole_run"]["how"]


def test_cgroup_v2_parent_gets_the_ceilings_and_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The v2 path against a stand-in directory: which files get which values, and the run moved in.

    (A real v2 hierarchy enforces them: test_memory_limit_holds_for_the_whole_run on such a machine.)
    """
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.procs").write_text("")
    killed: list[Path] = []
    monkeypatch.setattr(cgroups, "_kill_members", killed.append)  # a stand-in lists dead pids: never signal them
    limits = sandbox.Limits(cpu_seconds=2, wall_seconds=5.0, memory_mb=200, processes=20)
    result = sandbox.run("print('inside')", limits=limits, cgroup_parent_v2=str(tmp_path))
    assert result.stdout == "inside\n"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"
    [run_dir] = cgroups.run_cgroups(str(tmp_path))
    assert run_dir.name.startswith(f"{cgroups.RUN_PREFIX}{os.getpid()}-")
    assert (run_dir / "memory.max").read_text() == str(200 * 1024 * 1024)
    assert (run_dir / "pids.max").read_text() == "20"
    assert (run_dir / "cgroup.procs").read_text().strip().isdigit()  # the run's first process moved itself in
    assert killed == [run_dir]  # everything in it is killed at the end
    entry = result.limits["enforced"]["memory_whole_run"]
    assert entry["enforced"] is True and entry["how"].startswith("cgroup v2 memory.max 200 MB")
    assert "swap not limited" in entry["how"]  # this stand-in has no memory.swap.max; a real one is set to 0


def test_cgroup_v2_own_cgroup_moves_the_worker_into_a_leaf(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.procs").write_text(f"{os.getpid()}\n")
    ready = cgroups.ensure_ready(cgroups.Support(version=2, bases={"unified": tmp_path}, leaf_from=tmp_path))
    assert ready.usable
    assert (tmp_path / cgroups.WORKER_LEAF / "cgroup.procs").read_text() == str(os.getpid())
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"


def test_a_cgroup_the_run_cannot_join_means_nothing_is_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "detect", lambda parent="": cgroups.Support(version=2, bases={"unified": tmp_path}))
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids")
    monkeypatch.setattr(cgroups, "_kill_members", lambda path: None)
    real_create = cgroups.RunCgroup.create

    def unjoinable(support: cgroups.Support, **kwargs: Any) -> cgroups.RunCgroup:
        cg = real_create(support, **kwargs)
        (cg.dirs["unified"] / "cgroup.procs").mkdir()  # writing to it now fails
        return cg

    monkeypatch.setattr(cgroups.RunCgroup, "create", staticmethod(unjoinable))
    # The shell that joins the cgroup exits before it execs anything: the program never starts.
    with pytest.raises(sandbox.SandboxUnavailable, match="could not move the run into its cgroup"):
        run("print('should not run')")


ESCAPES = r"""
import ctypes, errno, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    result = getattr(libc, name)(*args)
    print(name, "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()])
print("seccomp mode", open("/proc/self/status").read().split("Seccomp:")[1].split()[0])
done = subprocess.run(["unshare", "-r", "id", "-u"], capture_output=True, text=True)
print("unshare -r:", done.stdout.strip() or "failed")
call("unshare", 0x10000000)          # CLONE_NEWUSER
call("ptrace", 0, 0, 0, 0)           # PTRACE_TRACEME: allowed for anyone without the filter
call("syscall", 250, 0, -3, 0)       # keyctl(KEYCTL_GET_KEYRING_ID, session keyring)
call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork still works", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print("threads and subprocesses still work", subprocess.run(["true"]).returncode)
"""


def test_nested_user_namespaces_and_dangerous_system_calls_are_refused() -> None:
    result = run(ESCAPES)
    out = result.stdout
    assert result.exit_code == 0, result.stderr
    assert "seccomp mode 2" in out  # a filter is loaded
    assert "unshare -r: failed" in out  # today's escape: uid 0 in a nested user namespace
    for line in ("unshare EPERM", "ptrace EPERM", "syscall EPERM", "mount EPERM"):
        assert line in out, out
    assert "fork still works 7" in out and "threads and subprocesses still work 0" in out
    enforced = result.limits["enforced"]
    assert enforced["seccomp"]["enforced"] is True and "ptrace" in enforced["seccomp"]["how"]
    assert enforced["nested_user_namespaces"]["enforced"] is True


def test_without_those_layers_the_same_escapes_succeed() -> None:
    """The control for the test above: the refusals come from the layers, not from the machine."""
    if "disable-userns" not in sandbox.bwrap_features():
        pytest.skip("this bubblewrap has no --disable-userns (needs >= 0.8)")
    bare = sandbox.run(ESCAPES, limits=LIMITS, use_seccomp=False, block_userns=False)
    assert "seccomp mode 0" in bare.stdout
    assert "unshare -r: 0" in bare.stdout  # uid 0 inside a nested user namespace
    assert "ptrace ok" in bare.stdout and "syscall ok" in bare.stdout
    assert bare.limits["enforced"]["nested_user_namespaces"]["enforced"] is False
    # Each layer alone stops the nested user namespace.
    only_flag = sandbox.run(ESCAPES, limits=LIMITS, use_seccomp=False)
    assert "unshare -r: failed" in only_flag.stdout and "ptrace ok" in only_flag.stdout
    only_filter = sandbox.run(ESCAPES, limits=LIMITS, block_userns=False)
    assert "unshare -r: failed" in only_filter.stdout and "ptrace EPERM" in only_filter.stdout


def _owned_by(pid: int) -> list[Path]:
    return cgroups.run_cgroups("", owners=[pid])


@pytest.mark.parametrize("mode", [sandbox.MODE_BWRAP, sandbox.MODE_UNSAFE])
def test_a_killed_worker_leaves_no_cgroup_and_no_process_after_cleanup(writable_cgroup: None, mode: str) -> None:
    """kill -9 of the process running the sandbox: the cleanup kills what is left and removes the cgroup."""
    import subprocess
    import sys

    from tests.conftest import wait_for

    marker = f"synpref-orphan-{uuid.uuid4().hex[:8]}"
    code = f"import time\nprint({marker!r}, flush=True)\ntime.sleep(60)"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from annotation.tools import sandbox; "
            f"sandbox.run(sys.argv[1], mode={mode!r}, limits=sandbox.Limits(cpu_seconds=60, wall_seconds=60))",
            code,
        ],
        cwd=django_settings.BASE_DIR,
    )
    try:
        # The run's process joins only once every controller's cgroup is made, so then all are there.
        wait_for(
            lambda: any((p / "cgroup.procs").read_text().strip() for p in _owned_by(worker.pid)) or None,
            timeout=20,
            interval=0.1,
        )
        left = _owned_by(worker.pid)
    finally:
        worker.kill()
        worker.wait()
    assert _owned_by(worker.pid) == left  # the dead worker could not remove it
    removed = cgroups.cleanup_stale("")
    assert set(left) <= set(removed)
    assert _owned_by(worker.pid) == []

    def program_running() -> bool:
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                    return True
        return False

    wait_for(lambda: not program_running() or None, timeout=5, interval=0.1)


def test_cleanup_keeps_the_cgroups_of_live_workers(writable_cgroup: None) -> None:
    support = cgroups.ensure_ready(cgroups.detect(""))
    live = cgroups.RunCgroup.create(support, memory_bytes=64 * 1024 * 1024, processes=4)
    try:
        assert live.path in cgroups.run_cgroups("")
        assert live.path not in cgroups.cleanup_stale("")  # its worker (this process) is alive
        assert live.path.exists()
    finally:
        live.remove()
    assert live.path not in cgroups.run_cgroups("")


def test_a_stored_run_keeps_the_limits_in_force_and_the_panel_shows_them(
    claimed: Any, users: dict[str, Any], client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.urls import reverse

    # Whatever this machine offers, show the panel a run without whole-run ceilings: it must say so.
    monkeypatch.setattr(cgroups, "detect", lambda parent="": cgroups.Support(problem="no writable cgroup here"))
    run_row = code_run_create(pair=claimed.pair, user=users["alice"], code="print(2 + 2)", language="python")
    done = code_run_execute(run_id=run_row.pk)
    assert done is not None and done.status == CodeRun.Status.DONE and done.stdout == "4\n"
    stored = CodeRun.objects.get(pk=run_row.pk).limits
    assert stored["enforced"]["memory_whole_run"] == {"enforced": False, "how": "no cgroup: no writable cgroup here"}
    assert stored["enforced"]["seccomp"]["enforced"] is True
    assert stored["memory_mb"] == django_settings.SANDBOX_MEMORY_MB
    client.force_login(users["alice"])
    page = client.get(reverse("annotation:tools:code-run", args=[run_row.pk]), HTTP_HX_REQUEST="true")
    body = page.content.decode()
    assert "Limits in force for this run" in body
    assert "not in force: Memory, whole run; Processes, whole run" in body
    assert 'data-limit="memory_whole_run"><td>Memory, whole run</td><td><strong>no</strong></td>' in body
    assert "no cgroup: no writable cgroup here" in body
    assert 'data-limit="seccomp"><td>System-call filter</td><td>yes</td>' in body
