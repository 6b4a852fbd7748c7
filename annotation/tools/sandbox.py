"""Run untrusted code in an OS-level sandbox (pure Python, no Django).

Layers, outermost first (``mode="bubblewrap"``, the default):

1. cgroup (when the worker may create one; v1 memory+pids, or v2 under ``cgroup_parent``): a memory
   ceiling and a process ceiling for the whole run, however many processes it forks.
2. ``prlimit`` (util-linux): per-process CPU seconds, address space, processes (``RLIMIT_NPROC``),
   largest file written, open files, no core dumps.
3. ``setpriv`` (util-linux), when the worker is root: a fresh unprivileged uid per run with no
   groups and ``no_new_privs``. RLIMIT_NPROC is only enforced for non-root uids, and a uid of its
   own means one run's processes never count against another's.
4. ``bwrap`` (Debian package ``bubblewrap``): new user, pid, network (no interfaces but a
   down loopback), ipc, uts and cgroup namespaces; a read-only root holding only ``/usr`` (plus
   ``/etc/alternatives`` and ``/etc/ld.so.cache``); no ``/work``, no app directory, no
   ``/etc/shadow``, no ``/sys``; a fresh size-limited tmpfs at ``/tmp`` as the only writable
   place; an empty environment (PATH, HOME, LANG only); killed with the worker.
5. The caller's wall clock and output cap: the process group is killed when either is exceeded.

Without bubblewrap (or without user namespaces) ``run`` refuses with :class:`SandboxUnavailable`,
unless the admin chose ``mode="unsafe-rlimits-only"``: layers 1-3 and 5, a fresh temp dir and an
empty environment, but the code can read what the chosen uid can read and can use the network.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MODE_BWRAP = "bubblewrap"
MODE_UNSAFE = "unsafe-rlimits-only"
MODE_OFF = "off"
MODES = (MODE_BWRAP, MODE_UNSAFE, MODE_OFF)

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
WORKDIR = "/tmp"

# What ``limit_hit`` can say. ``wall_time`` and ``output`` are certain (we enforce them);
# the others are read from the exit signal, the cgroup's counters or the error text.
LIMIT_CPU = "cpu_time"
LIMIT_WALL = "wall_time"
LIMIT_MEMORY = "memory"
LIMIT_PROCESSES = "processes"
LIMIT_DISK = "disk"
LIMIT_OUTPUT = "output"


class SandboxUnavailable(Exception):
    """The code was not run: no usable sandbox (the message says why and what an admin can do)."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10
    wall_seconds: float = 20.0
    memory_mb: int = 512
    processes: int = 64
    disk_mb: int = 32
    output_bytes: int = 64 * 1024
    open_files: int = 256

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Language:
    key: str
    label: str
    filename: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @property
    def interpreter(self) -> str:
        return self.argv[0]


LANGUAGES: dict[str, Language] = {
    "python": Language(
        "python",
        "Python 3",
        "main.py",
        ("python3", "-u", "main.py"),
        (("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONIOENCODING", "utf-8")),
    ),
    "bash": Language("bash", "Bash", "main.sh", ("bash", "main.sh")),
}


def available_languages() -> list[Language]:
    """Languages whose interpreter is installed under /usr (the only tree the sandbox sees)."""
    return [lang for lang in LANGUAGES.values() if shutil.which(lang.interpreter, path=SANDBOX_PATH)]


@dataclass
class RunResult:
    stdout: str
    stderr: str
    exit_code: int | None  # the program's exit status; None when a signal ended it
    signal: str | None  # e.g. "SIGKILL"
    wall_seconds: float
    cpu_seconds: float
    limit_hit: str | None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    sandbox: str = MODE_BWRAP
    layers: list[str] = field(default_factory=list)
    limits: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- availability ---------------------------------------------------------------------------------


def _bwrap_base_args() -> list[str]:
    args = [
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into the worker's terminal
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--symlink",
        "usr/lib",
        "/lib",
    ]
    if Path("/usr/lib64").exists():
        args += ["--symlink", "usr/lib64", "/lib64"]
    if Path("/usr/lib32").exists():
        args += ["--symlink", "usr/lib32", "/lib32"]
    # Debian's /usr/bin/awk etc. are symlinks through /etc/alternatives; nothing else of /etc.
    for extra in ("/etc/alternatives", "/etc/ld.so.cache"):
        args += ["--ro-bind-try", extra, extra]
    args += ["--proc", "/proc", "--dev", "/dev"]
    return args


@functools.lru_cache(maxsize=8)
def bwrap_problem(bwrap: str = "bwrap") -> str | None:
    """None when bubblewrap can build the sandbox here, else why not (cached per process)."""
    path = shutil.which(bwrap)
    if path is None:
        return "bubblewrap (bwrap) is not installed"
    argv = [path, *_bwrap_base_args(), "--tmpfs", WORKDIR, "--remount-ro", "/", "--clearenv", "true"]
    argv = _drop_privileges(argv, _pick_uid(65000, 65000)) if os.geteuid() == 0 else argv
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, env={"PATH": SANDBOX_PATH}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start: {exc}"
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        return f"bubblewrap cannot create namespaces here ({message})"
    return None


def sandbox_problem(mode: str) -> str | None:
    """None when ``mode`` can run code on this machine, else a message for the annotator and admin."""
    if mode == MODE_OFF:
        return "The code runner is switched off on this server (SANDBOX_MODE=off)."
    if mode not in MODES:
        return f"Unknown SANDBOX_MODE {mode!r}; use one of {', '.join(MODES)}."
    missing = [tool for tool in ("prlimit", "setpriv") if shutil.which(tool) is None]
    if missing:
        return f"The code runner needs {', '.join(missing)} (Debian package util-linux); code was not run."
    if mode == MODE_BWRAP:
        problem = bwrap_problem()
        if problem:
            return (
                f"No OS-level sandbox is available on this worker, so the code was not run: {problem}. "
                "Install bubblewrap (Debian package 'bubblewrap') and allow user namespaces, or an admin may "
                f"set SANDBOX_MODE={MODE_UNSAFE} to accept weaker isolation (resource limits only)."
            )
    return None


# --- building the command -------------------------------------------------------------------------


def _pick_uid(uid_min: int, uid_max: int) -> int:
    return random.SystemRandom().randint(uid_min, uid_max)


def _drop_privileges(argv: list[str], uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--", *argv]


def _prlimit(argv: list[str], limits: Limits) -> list[str]:
    mib = 1024 * 1024
    return [
        "prlimit",
        # soft CPU limit sends SIGXCPU, the hard one a second later SIGKILL
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
        f"--as={limits.memory_mb * mib}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.disk_mb * mib}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
        *argv,
    ]


class _Cgroup:
    """A throwaway cgroup holding one run: memory and pids ceilings for the whole process tree."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @classmethod
    def create(cls, limits: Limits, parent_v2: str = "") -> _Cgroup | None:
        name = f"synpref-run-{uuid.uuid4().hex[:12]}"
        memory = str(limits.memory_mb * 1024 * 1024)
        cg = cls({}, 2 if parent_v2 else 1)
        try:
            if parent_v2:
                root = Path(parent_v2) / name
                root.mkdir()
                cg.dirs["unified"] = root
                (root / "memory.max").write_text(memory)
                if (root / "memory.swap.max").exists():
                    (root / "memory.swap.max").write_text("0")
                (root / "pids.max").write_text(str(limits.processes))
                return cg
            own = _own_cgroups_v1()
            for controller in ("memory", "pids", "cpuacct"):
                base = Path("/sys/fs/cgroup") / controller
                if controller not in own or not (base / "cgroup.procs").exists():
                    if controller == "cpuacct":
                        continue  # optional: only for measuring CPU time
                    cg.remove()
                    return None
                path = base / own[controller].lstrip("/") / name
                path.mkdir()
                cg.dirs[controller] = path
            (cg.dirs["memory"] / "memory.limit_in_bytes").write_text(memory)
            with contextlib.suppress(OSError):  # absent without swap accounting
                (cg.dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(memory)
            (cg.dirs["pids"] / "pids.max").write_text(str(limits.processes))
            return cg
        except OSError:
            cg.remove()
            return None

    def wrap(self, argv: list[str]) -> list[str]:
        """Prefix ``argv`` with a shell that moves itself into the cgroup(s) and then execs it."""
        procs = [str(d / "cgroup.procs") for d in self.dirs.values()]
        script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
        return ["/bin/sh", "-c", script, "sh", str(len(procs)), *procs, *argv]

    def _read(self, controller: str, name: str) -> str:
        try:
            return (self.dirs[controller] / name).read_text()
        except (OSError, KeyError):
            return ""

    def memory_hit(self) -> bool:
        if self.version == 2:
            events = _parse_kv(self._read("unified", "memory.events"))
            return events.get("oom_kill", 0) > 0 or events.get("max", 0) > 0
        oom = _parse_kv(self._read("memory", "memory.oom_control"))
        return oom.get("oom_kill", 0) > 0 or self._read("memory", "memory.failcnt").strip() not in ("", "0")

    def pids_hit(self) -> bool:
        key = "unified" if self.version == 2 else "pids"
        return _parse_kv(self._read(key, "pids.events")).get("max", 0) > 0

    def cpu_seconds(self) -> float | None:
        """CPU time of every process that ran in the cgroup (None when not measured)."""
        if self.version == 2:
            usec = _parse_kv(self._read("unified", "cpu.stat")).get("usage_usec")
            return usec / 1e6 if usec is not None else None
        text = self._read("cpuacct", "cpuacct.usage").strip()
        return int(text) / 1e9 if text.isdigit() else None

    def kill_all(self) -> None:
        for path in self.dirs.values():
            if (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (path / "cgroup.kill").write_text("1")
                continue
            for _ in range(3):
                pids = (path / "cgroup.procs").read_text().split() if (path / "cgroup.procs").exists() else []
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)

    def remove(self) -> None:
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _own_cgroups_v1() -> dict[str, str]:
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                if controller:
                    found[controller] = path
    return found


def _parse_kv(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


# --- running ----------------------------------------------------------------------------------------


def run(
    code: str,
    *,
    language: str = "python",
    limits: Limits | None = None,
    mode: str = MODE_BWRAP,
    uid_range: tuple[int, int] = (200_000, 265_000),
    use_cgroup: bool = True,
    cgroup_parent_v2: str = "",
) -> RunResult:
    """Run ``code`` in the sandbox and return what it printed, how it ended and which limit it hit.

    Raises :class:`SandboxUnavailable` (nothing was run) when ``mode`` cannot be honoured here, and
    ``ValueError`` for an unknown language. Never raises for anything the code itself does.
    """
    limits = limits or Limits()
    lang = LANGUAGES.get(language)
    if lang is None:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    problem = sandbox_problem(mode)
    if problem:
        raise SandboxUnavailable(problem)

    layers: list[str] = []
    env_inside = {"PATH": SANDBOX_PATH, "HOME": WORKDIR, "LANG": "C.UTF-8", **dict(lang.env)}
    hostdir: str | None = None
    code_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed below; unlinked at once, handed to bwrap as an fd)
    pass_fds: tuple[int, ...] = ()
    try:
        if mode == MODE_BWRAP:
            code_file.write(code.encode("utf-8"))
            code_file.flush()
            code_file.seek(0)
            fd = code_file.fileno()
            pass_fds = (fd,)
            argv = [shutil.which("bwrap") or "bwrap", *_bwrap_base_args()]
            argv += ["--size", str(limits.disk_mb * 1024 * 1024), "--tmpfs", WORKDIR]
            argv += ["--file", str(fd), f"{WORKDIR}/{lang.filename}"]
            argv += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", WORKDIR, "--clearenv"]
            for key, value in env_inside.items():
                argv += ["--setenv", key, value]
            argv += ["--", *lang.argv]
            layers.append("bubblewrap: user/pid/net/ipc/uts/cgroup namespaces, read-only /usr only, tmpfs /tmp")
            cwd = "/"
        else:
            hostdir = tempfile.mkdtemp(prefix="synpref-run-")
            Path(hostdir, lang.filename).write_text(code, encoding="utf-8")
            argv = list(lang.argv)
            cwd = hostdir
            env_inside["HOME"] = hostdir
        uid = None
        if os.geteuid() == 0:
            uid = _pick_uid(*uid_range)
            if hostdir:
                os.chown(hostdir, uid, uid)
                os.chown(Path(hostdir, lang.filename), uid, uid)
            argv = _drop_privileges(argv, uid)
            layers.append(f"setpriv: unprivileged uid {uid}, no groups, no_new_privs")
        argv = _prlimit(argv, limits)
        layers.append("prlimit: cpu, address space, nproc, fsize, nofile, core")
        cgroup = _Cgroup.create(limits, cgroup_parent_v2) if use_cgroup and os.geteuid() == 0 else None
        if cgroup is not None:
            argv = cgroup.wrap(argv)
            layers.append(f"cgroup v{cgroup.version}: memory and pids ceilings for the whole run")
        try:
            result = _execute(
                argv,
                cwd=cwd,
                env=env_inside,
                pass_fds=pass_fds,
                limits=limits,
                cgroup=cgroup,
                uid=uid,
                via_bwrap=mode == MODE_BWRAP,
            )
        finally:
            if cgroup is not None:
                cgroup.remove()
        result.sandbox = mode
        result.layers = layers
        result.limits = limits.as_dict()
        return result
    finally:
        code_file.close()
        if hostdir:
            shutil.rmtree(hostdir, ignore_errors=True)


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a uid used by this run only), wherever its session went."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _execute(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    pass_fds: tuple[int, ...],
    limits: Limits,
    cgroup: _Cgroup | None,
    uid: int | None,
    via_bwrap: bool,
) -> RunResult:
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,  # the worker's environment (secrets, DATABASE_URL) never reaches the child
        pass_fds=pass_fds,
        start_new_session=True,  # its own process group, so we can kill everything it started
    )
    buffers: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = {"stdout": False, "stderr": False}
    killed_for: str | None = None
    deadline = started + limits.wall_seconds
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if cgroup is not None:
            cgroup.kill_all()
        if uid is not None:
            _kill_uid(uid)

    status, usage = 0, None
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed_for = killed_for or LIMIT_WALL
                kill()
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                name = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                room = limits.output_bytes - len(buffers[name])
                buffers[name] += chunk[: max(room, 0)]
                if len(chunk) > room:
                    truncated[name] = True
                    if killed_for is None:
                        killed_for = LIMIT_OUTPUT
                        kill()
        sel.close()
        # Reap with wait4 for the CPU time of the whole (waited-for) tree. The program may have closed
        # its output and kept running, so the wall clock still applies while we wait.
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                break
            if time.monotonic() >= deadline and killed_for is None:
                killed_for = LIMIT_WALL
                kill()
            time.sleep(0.01)
        if uid is not None:
            _kill_uid(uid)  # nothing of this run outlives it
    except BaseException:
        # e.g. Celery's soft time limit: never leave the program running behind us
        kill()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, 0)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    wall = time.monotonic() - started
    cpu = (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0
    # The sandboxed program is reaped inside its pid namespace, so rusage may miss it; the
    # cgroup's accounting does not.
    measured = cgroup.cpu_seconds() if cgroup is not None else None
    if measured is not None:
        cpu = max(cpu, measured)

    code = proc.returncode
    sig: int | None = None
    if code < 0:
        sig = -code
    elif code > 128 and via_bwrap:
        sig = code - 128  # bwrap reports a child killed by signal N as exit status 128+N
    stdout = buffers["stdout"].decode("utf-8", "replace")
    stderr = buffers["stderr"].decode("utf-8", "replace")
    limit = killed_for or _classify(sig, cpu, stderr, limits, cgroup)
    return RunResult(
        stdout=stdout,
        stderr=stderr,
        exit_code=None if sig is not None else code,
        signal=signal.Signals(sig).name if sig is not None and sig in signal.valid_signals() else None,
        wall_seconds=round(wall, 3),
        cpu_seconds=round(cpu, 3),
        limit_hit=limit,
        stdout_truncated=truncated["stdout"],
        stderr_truncated=truncated["stderr"],
    )


_MEMORY_TEXT = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")
_PROCESS_TEXT = ("Resource temporarily unavailable", "fork: retry", "BlockingIOError", "can't start new thread")
_DISK_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")


def _classify(sig: int | None, cpu: float, stderr: str, limits: Limits, cgroup: _Cgroup | None) -> str | None:
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_seconds):
        return LIMIT_CPU
    if sig == signal.SIGXFSZ:
        return LIMIT_DISK
    if cgroup is not None and cgroup.memory_hit():
        return LIMIT_MEMORY
    if any(text in stderr for text in _MEMORY_TEXT):
        return LIMIT_MEMORY
    if cgroup is not None and cgroup.pids_hit():
        return LIMIT_PROCESSES
    if any(text in stderr for text in _PROCESS_TEXT):
        return LIMIT_PROCESSES
    if any(text in stderr for text in _DISK_TEXT):
        return LIMIT_DISK
    return None
