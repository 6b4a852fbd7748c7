"""Run untrusted code in an OS-level sandbox (pure Python, no Django).

Layers, outermost first (``mode="bubblewrap"``, the default):

1. cgroup (:mod:`annotation.tools.cgroups`; v2 under ``cgroup_parent`` or the worker's own
   cgroup, else v1 ``memory`` + ``pids``): a memory ceiling (swap included) and a process ceiling
   for the whole run, however many processes it forks.
2. ``prlimit`` (util-linux): per-process CPU seconds, address space, processes (``RLIMIT_NPROC``),
   largest file written, open files, no core dumps.
3. ``setpriv`` (util-linux), when the worker is root: a fresh unprivileged uid per run with no
   groups and ``no_new_privs``. RLIMIT_NPROC is only enforced for non-root uids, and a uid of its
   own means one run's processes never count against another's.
4. ``bwrap`` (Debian package ``bubblewrap``): new user, pid, network (no interfaces but a
   down loopback), ipc, uts and cgroup namespaces; a read-only root holding only ``/usr`` (plus
   ``/etc/alternatives`` and ``/etc/ld.so.cache``); no ``/work``, no app directory, no
   ``/etc/shadow``, no ``/sys``; a fresh size-limited tmpfs at ``/tmp`` as the only writable
   place; an empty environment (PATH, HOME, LANG only); killed with the worker. No nested user
   namespaces (``--disable-userns``, bubblewrap >= 0.8).
5. A seccomp filter (:mod:`annotation.tools.seccomp`, loaded by bubblewrap): no namespaces, mounts,
   ptrace, keyring, bpf, perf events, io_uring, modules, kexec and the like.
6. The caller's wall clock and output cap: the process group is killed when either is exceeded.

Without bubblewrap (or without user namespaces) ``run`` refuses with :class:`SandboxUnavailable`,
unless the admin chose ``mode="unsafe-rlimits-only"``: layers 1-3 and 6, a fresh temp dir and an
empty environment, but the code can read what the chosen uid can read and can use the network.

Every :class:`RunResult` says which limits were in force and how (``limits["enforced"]``), and why
one was not (e.g. no writable cgroup on this worker).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import random
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from annotation.tools import cgroups, seccomp

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        """The limits stored on a run (ignores other keys, such as ``enforced``)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


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
        "--unshare-user",  # required, not just tried (--disable-userns needs it)
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


# --- running ----------------------------------------------------------------------------------------


# Labels of the entries of ``RunResult.limits["enforced"]``, in the order the panel shows them.
ENFORCEMENT_LABELS: dict[str, str] = {
    "memory_whole_run": "Memory, whole run",
    "processes_whole_run": "Processes, whole run",
    "memory_per_process": "Memory, per process",
    "processes_per_uid": "Processes, per uid",
    "cpu_time": "CPU time",
    "wall_time": "Wall clock",
    "disk": "Disk written",
    "output": "Output",
    "network": "Network",
    "filesystem": "Files",
    "own_uid": "Own uid",
    "nested_user_namespaces": "Nested user namespaces",
    "seccomp": "System-call filter",
}


def _entry(enforced: bool, how: str) -> dict[str, Any]:
    return {"enforced": enforced, "how": how}


def _bwrap_help(bwrap: str) -> str:
    try:
        done = subprocess.run([bwrap, "--help"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")


@functools.lru_cache(maxsize=8)
def bwrap_features(bwrap: str = "bwrap") -> frozenset[str]:
    """The optional bubblewrap options this bwrap knows: ``disable-userns`` (>= 0.8), ``seccomp``."""
    path = shutil.which(bwrap)
    text = _bwrap_help(path) if path else ""
    return frozenset(opt for opt in ("disable-userns", "seccomp") if f"--{opt}" in text)


def run(
    code: str,
    *,
    language: str = "python",
    limits: Limits | None = None,
    mode: str = MODE_BWRAP,
    uid_range: tuple[int, int] = (200_000, 265_000),
    use_cgroup: bool = True,
    cgroup_parent_v2: str = "",
    use_seccomp: bool = True,
    block_userns: bool = True,
) -> RunResult:
    """Run ``code`` in the sandbox and return what it printed, how it ended and which limit it hit.

    ``result.limits`` holds the limits asked for and, under ``enforced``, each limit with whether it
    was in force for this run and how (or why not). ``use_seccomp`` and ``block_userns`` exist for
    tests that show what each layer adds; the app always leaves them on.

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

    mib = 1024 * 1024
    layers: list[str] = []
    enforced: dict[str, dict[str, Any]] = {}
    env_inside = {"PATH": SANDBOX_PATH, "HOME": WORKDIR, "LANG": "C.UTF-8", **dict(lang.env)}
    hostdir: str | None = None
    code_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed below; unlinked at once, handed to bwrap as an fd)
    filter_file = tempfile.TemporaryFile()  # noqa: SIM115 (likewise, the seccomp program)
    pass_fds: tuple[int, ...] = ()
    try:
        if mode == MODE_BWRAP:
            code_file.write(code.encode("utf-8"))
            code_file.flush()
            code_file.seek(0)
            fd = code_file.fileno()
            pass_fds = (fd,)
            features = bwrap_features()
            argv = [shutil.which("bwrap") or "bwrap", *_bwrap_base_args()]
            argv += ["--size", str(limits.disk_mb * mib), "--tmpfs", WORKDIR]
            argv += ["--file", str(fd), f"{WORKDIR}/{lang.filename}"]
            argv += ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", WORKDIR, "--clearenv"]
            for key, value in env_inside.items():
                argv += ["--setenv", key, value]
            userns_how: list[str] = []
            if block_userns and "disable-userns" in features:
                argv.append("--disable-userns")
                userns_how.append("bubblewrap --disable-userns")
            program = seccomp.filter_program() if use_seccomp else None
            if program is not None and "seccomp" in features:
                filter_file.write(program)
                filter_file.flush()
                filter_file.seek(0)
                argv += ["--seccomp", str(filter_file.fileno())]
                pass_fds += (filter_file.fileno(),)
                denied = seccomp.denied_names()
                enforced["seccomp"] = _entry(
                    True,
                    f"{len(denied) + 2} system calls refused (EPERM): clone with namespace flags, clone3 "
                    f"(ENOSYS, so clone is used), {', '.join(denied)}; foreign ABIs refused",
                )
                userns_how.append("seccomp refuses unshare, setns and clone with namespace flags")
                layers.append(f"seccomp: {len(denied) + 2} system calls refused")
            else:
                why = (
                    "switched off for this run"
                    if not use_seccomp
                    else f"no filter is described for this CPU ({platform.machine()})"
                    if program is None
                    else "this bubblewrap has no --seccomp"
                )
                enforced["seccomp"] = _entry(False, why)
            enforced["nested_user_namespaces"] = (
                _entry(True, "blocked: " + "; ".join(userns_how))
                if userns_how
                else _entry(False, "not blocked: bubblewrap < 0.8 (no --disable-userns) and no seccomp filter")
            )
            argv += ["--", *lang.argv]
            layers.append("bubblewrap: user/pid/net/ipc/uts/cgroup namespaces, read-only /usr only, tmpfs /tmp")
            enforced["network"] = _entry(True, "bubblewrap: own network namespace, no interfaces")
            enforced["filesystem"] = _entry(True, "bubblewrap: read-only /usr only; writable: a fresh tmpfs /tmp")
            enforced["disk"] = _entry(
                True, f"tmpfs /tmp of {limits.disk_mb} MB; RLIMIT_FSIZE {limits.disk_mb} MB per file"
            )
            cwd = "/"
        else:
            hostdir = tempfile.mkdtemp(prefix="synpref-run-")
            Path(hostdir, lang.filename).write_text(code, encoding="utf-8")
            argv = list(lang.argv)
            cwd = hostdir
            env_inside["HOME"] = hostdir
            weaker = f"SANDBOX_MODE={MODE_UNSAFE}: no bubblewrap"
            enforced["network"] = _entry(False, f"{weaker}, the program may use the network")
            enforced["filesystem"] = _entry(False, f"{weaker}, the program may read what its uid may read")
            enforced["disk"] = _entry(True, f"RLIMIT_FSIZE {limits.disk_mb} MB per file only")
            enforced["nested_user_namespaces"] = _entry(False, weaker)
            enforced["seccomp"] = _entry(False, weaker)
        uid = None
        if os.geteuid() == 0:
            uid = _pick_uid(*uid_range)
            if hostdir:
                os.chown(hostdir, uid, uid)
                os.chown(Path(hostdir, lang.filename), uid, uid)
            argv = _drop_privileges(argv, uid)
            layers.append(f"setpriv: unprivileged uid {uid}, no groups, no_new_privs")
            enforced["own_uid"] = _entry(True, f"setpriv: uid {uid}, used by this run only, no groups, no_new_privs")
            nproc_how = f"prlimit RLIMIT_NPROC {limits.processes} for the run's own uid {uid}"
        else:
            enforced["own_uid"] = _entry(False, f"the worker is not root: the program runs as its uid {os.geteuid()}")
            nproc_how = f"prlimit RLIMIT_NPROC {limits.processes}, counted with every process of uid {os.geteuid()}"
        argv = _prlimit(argv, limits)
        layers.append("prlimit: cpu, address space, nproc, fsize, nofile, core")
        enforced["cpu_time"] = _entry(True, f"prlimit RLIMIT_CPU {limits.cpu_seconds} s per process")
        enforced["memory_per_process"] = _entry(True, f"prlimit RLIMIT_AS {limits.memory_mb} MB per process")
        enforced["processes_per_uid"] = _entry(True, nproc_how)
        enforced["wall_time"] = _entry(True, f"the worker kills the run after {limits.wall_seconds:g} s")
        enforced["output"] = _entry(True, f"the worker keeps {limits.output_bytes} bytes per stream, then kills")
        cgroup: cgroups.RunCgroup | None = None
        if not use_cgroup:
            why_not = "switched off (SANDBOX_USE_CGROUP=false)"
        else:
            support = cgroups.ensure_ready(cgroups.detect(cgroup_parent_v2))
            try:
                cgroup = cgroups.RunCgroup.create(
                    support, memory_bytes=limits.memory_mb * mib, processes=limits.processes
                )
            except cgroups.CgroupError as exc:
                why_not = str(exc)
        if cgroup is not None:
            argv = cgroup.wrap(argv)
            layers.append(f"cgroup v{cgroup.version}: memory and pids ceilings for the whole run")
            swap = ", swap included" if cgroup.swap_limited() else " (swap not limited: no swap accounting)"
            memory_file = "memory.max" if cgroup.version == 2 else "memory.limit_in_bytes"
            enforced["memory_whole_run"] = _entry(
                True, f"cgroup v{cgroup.version} {memory_file} {limits.memory_mb} MB{swap} ({cgroup.path})"
            )
            enforced["processes_whole_run"] = _entry(True, f"cgroup v{cgroup.version} pids.max {limits.processes}")
        else:
            enforced["memory_whole_run"] = _entry(False, f"no cgroup: {why_not}")
            enforced["processes_whole_run"] = _entry(False, f"no cgroup: {why_not}")
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
        if cgroup is not None and result.exit_code == 125 and cgroups.JOIN_FAILED in result.stderr:
            raise SandboxUnavailable(f"The code was not run: {result.stderr.strip()}")
        result.sandbox = mode
        result.layers = layers
        result.limits = {
            **limits.as_dict(),
            "enforced": {key: enforced[key] for key in ENFORCEMENT_LABELS if key in enforced},
        }
        return result
    finally:
        code_file.close()
        filter_file.close()
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
    cgroup: cgroups.RunCgroup | None,
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


def _classify(sig: int | None, cpu: float, stderr: str, limits: Limits, cgroup: cgroups.RunCgroup | None) -> str | None:
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
