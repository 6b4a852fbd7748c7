"""Per-run cgroups for the code runner: whole-run memory and process ceilings (pure Python, no Django).

A run's processes go into a throwaway cgroup named ``synpref-run-<worker pid>-<random>`` with a
memory ceiling (swap included) and a process ceiling that hold however many processes the program
forks. Where the cgroup goes:

- ``cgroup_parent`` (``SANDBOX_CGROUP_PARENT``): a cgroup v2 directory delegated to the worker
  (writable, holding no processes itself, ``memory`` and ``pids`` available). The worker enables
  both controllers in its ``cgroup.subtree_control`` and creates run cgroups in it.
- otherwise, cgroup v2 (``/sys/fs/cgroup`` is ``cgroup2``, as on Docker hosts and current
  distributions): the worker's own cgroup, when it may write there (root in a container with its own
  cgroup namespace, or a systemd service with ``Delegate=yes``). cgroup v2 lets only leaf cgroups
  hold processes, so the first run moves every process of that cgroup into a leaf child
  ``synpref-worker``, enables ``memory`` and ``pids`` for the children, and creates run cgroups
  beside the leaf.
- otherwise, cgroup v1 (``memory`` and ``pids`` hierarchies mounted, the worker may write in its own
  cgroups there, usually as root): run cgroups in both, and in ``cpuacct`` when mounted.

When none of these is possible the run still goes ahead (per-process rlimits remain) and the run
result says why the whole-run ceilings were not in force (:attr:`Support.problem`).

A worker killed with SIGKILL cannot remove its run's cgroup: :func:`cleanup_stale` (called when a
worker starts and periodically) kills what is left in run cgroups whose worker is gone, and removes
them; :func:`run_cgroups` lists the run cgroups present, for tests and operators.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

RUN_PREFIX = "synpref-run-"
WORKER_LEAF = "synpref-worker"
_NEEDED = ("memory", "pids")


class CgroupError(Exception):
    """A run cgroup could not be set up; the message says why."""


@dataclass
class Support:
    """What this worker can do with cgroups. ``problem`` is empty when run cgroups can be created."""

    version: int | None = None
    bases: dict[str, Path] = field(default_factory=dict)  # controller (or "unified") -> parent of run cgroups
    problem: str = ""
    leaf_from: Path | None = None  # v2, own cgroup: must first move its processes into a leaf (see ensure_ready)

    @property
    def usable(self) -> bool:
        return not self.problem and bool(self.bases)

    def describe(self) -> str:
        if self.version == 2:
            return f"cgroup v2 under {self.bases['unified']}"
        if self.version == 1:
            return "cgroup v1 under " + ", ".join(str(p) for p in self.bases.values())
        return "no cgroup"


# --- reading the machine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mount:
    root: str
    point: Path
    fstype: str
    options: frozenset[str]


def _mounts() -> list[_Mount]:
    found: list[_Mount] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
                continue
            point = fields[4].replace("\\040", " ")
            found.append(_Mount(fields[3], Path(point), tail[0], frozenset(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (``""`` for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if not controllers:
                found[""] = path
            for controller in controllers.split(","):
                if controller:
                    found[controller] = path
    return found


def _under(mount: _Mount, own: str) -> Path:
    rel = os.path.relpath(own, mount.root) if mount.root != "/" else own.lstrip("/")
    return mount.point if rel in (".", "") else mount.point / rel


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def _v2_parent(parent: Path) -> Support:
    support = Support(version=2, bases={"unified": parent})
    if not (parent / "cgroup.controllers").exists():
        support.problem = f"SANDBOX_CGROUP_PARENT={parent} is not a cgroup v2 directory"
        return support
    missing = [c for c in _NEEDED if c not in _words(parent / "cgroup.controllers")]
    if missing:
        support.problem = (
            f"the cgroup v2 directory {parent} does not offer the {' and '.join(missing)} controller(s) "
            f"(it offers: {' '.join(sorted(_words(parent / 'cgroup.controllers'))) or 'none'})"
        )
        return support
    if not os.access(parent, os.W_OK):
        support.problem = f"the worker may not create cgroups in {parent} (not delegated to uid {os.geteuid()})"
    return support


def detect(cgroup_parent: str = "") -> Support:
    """Find where this worker can create run cgroups (reads only; changes nothing)."""
    if cgroup_parent:
        support = _v2_parent(Path(cgroup_parent))
        if not support.problem and not _NEEDED_enabled(Path(cgroup_parent)):
            procs = _words(Path(cgroup_parent) / "cgroup.procs")
            if procs:
                support.problem = (
                    f"{cgroup_parent} holds processes itself, so cgroup v2 cannot enable memory and pids for "
                    "its children: delegate an empty cgroup"
                )
        return support
    mounts, own = _mounts(), _own_paths()
    problems: list[str] = []
    v2 = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if v2 is not None and "" in own:
        mine = _under(v2, own[""])
        if mine.name == WORKER_LEAF:
            support = _v2_parent(mine.parent)
            if not support.problem:
                return support
            problems.append(support.problem)
        else:
            offered = _words(mine / "cgroup.controllers")
            if all(c in offered for c in _NEEDED):
                if os.access(mine, os.W_OK) and os.access(mine / "cgroup.subtree_control", os.W_OK):
                    return Support(version=2, bases={"unified": mine}, leaf_from=mine)
                problems.append(
                    f"cgroup v2: the worker may not create cgroups in its own cgroup {mine} "
                    "(set SANDBOX_CGROUP_PARENT to a delegated cgroup)"
                )
            else:
                problems.append(
                    f"cgroup v2 at {v2.point} offers no memory and pids controllers to this worker"
                    f" (offered: {' '.join(sorted(offered)) or 'none'})"
                )
    bases: dict[str, Path] = {}
    for controller in (*_NEEDED, "cpuacct"):
        mount = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
        if mount is not None and controller in own:
            bases[controller] = _under(mount, own[controller])
    if all(c in bases for c in _NEEDED):
        unwritable = [str(p) for c, p in bases.items() if c in _NEEDED and not os.access(p, os.W_OK)]
        if not unwritable:
            return Support(version=1, bases=bases)
        problems.append(f"cgroup v1: the worker may not create cgroups in {', '.join(unwritable)} (needs root)")
    elif any(m.fstype == "cgroup" for m in mounts):
        problems.append("cgroup v1: the memory and pids hierarchies are not both mounted")
    if not mounts:
        problems.append("no cgroup file system is mounted")
    return Support(problem="; ".join(problems) or "no usable cgroup")


def _NEEDED_enabled(parent: Path) -> bool:  # noqa: N802 (reads as a sentence at the call site)
    return all(c in _words(parent / "cgroup.subtree_control") for c in _NEEDED)


def ensure_ready(support: Support) -> Support:
    """Make ``support``'s base ready for run cgroups (v2: leaf for the worker, controllers enabled).

    Returns the support to use (its ``problem`` set when this failed).
    """
    if support.version != 2 or support.problem:
        return support
    base = support.bases["unified"]
    try:
        if support.leaf_from is not None and not _NEEDED_enabled(base):
            leaf = base / WORKER_LEAF
            leaf.mkdir(exist_ok=True)
            # Only leaves hold processes in cgroup v2: move every process here (the worker, its pool,
            # whatever else shares the cgroup) into the leaf, a few rounds for processes forked meanwhile.
            for _ in range(5):
                pids = _words(base / "cgroup.procs")
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, OSError):
                        (leaf / "cgroup.procs").write_text(pid)
        if not _NEEDED_enabled(base):
            (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in _NEEDED))
    except OSError as exc:
        return Support(
            version=2,
            bases=support.bases,
            problem=f"cgroup v2: could not enable memory and pids for run cgroups in {base} ({exc.strerror or exc})",
        )
    return Support(version=2, bases=support.bases)


# --- one run ------------------------------------------------------------------------------------------


class RunCgroup:
    """A throwaway cgroup holding one run: memory and pids ceilings for the whole process tree."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @classmethod
    def create(cls, support: Support, *, memory_bytes: int, processes: int) -> RunCgroup:
        """Create the run's cgroup(s) with the ceilings set; raises :class:`CgroupError` saying why not."""
        if not support.usable:
            raise CgroupError(support.problem or "no usable cgroup")
        name = f"{RUN_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        cg = cls({}, support.version or 0)
        try:
            if support.version == 2:
                path = support.bases["unified"] / name
                path.mkdir()
                cg.dirs["unified"] = path
                (path / "memory.max").write_text(str(memory_bytes))
                if (path / "memory.swap.max").exists():
                    (path / "memory.swap.max").write_text("0")
                if (path / "memory.oom.group").exists():
                    (path / "memory.oom.group").write_text("1")  # an OOM kills the whole run, not one process
                (path / "pids.max").write_text(str(processes))
                return cg
            for controller, base in support.bases.items():
                path = base / name
                path.mkdir()
                cg.dirs[controller] = path
            (cg.dirs["memory"] / "memory.limit_in_bytes").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):  # absent without swap accounting
                (cg.dirs["memory"] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            (cg.dirs["pids"] / "pids.max").write_text(str(processes))
            return cg
        except OSError as exc:
            cg.remove()
            raise CgroupError(f"could not set up the run's cgroup ({exc.strerror or exc}: {exc.filename})") from exc

    @property
    def path(self) -> Path:
        return self.dirs.get("unified") or self.dirs["memory"]

    def swap_limited(self) -> bool:
        if self.version == 2:
            return self._read("unified", "memory.swap.max").strip() == "0"
        return bool(self._read("memory", "memory.memsw.limit_in_bytes").strip())

    def wrap(self, argv: list[str]) -> list[str]:
        """Prefix ``argv`` with a shell that moves itself into the cgroup(s) and then execs it.

        If the move fails nothing is run: the shell exits 125 after printing :data:`JOIN_FAILED`.
        """
        procs = [str(d / "cgroup.procs") for d in self.dirs.values()]
        script = (
            'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || '
            f'{{ echo "{JOIN_FAILED}: $1" >&2; exit 125; }}; shift; n=$((n-1)); done; exec "$@"'
        )
        return ["/bin/sh", "-c", script, "sh", str(len(procs)), *procs, *argv]

    def _read(self, controller: str, name: str) -> str:
        try:
            return (self.dirs[controller] / name).read_text()
        except (OSError, KeyError):
            return ""

    def memory_hit(self) -> bool:
        if self.version == 2:
            events = parse_kv(self._read("unified", "memory.events"))
            return events.get("oom_kill", 0) > 0 or events.get("max", 0) > 0
        oom = parse_kv(self._read("memory", "memory.oom_control"))
        return oom.get("oom_kill", 0) > 0 or self._read("memory", "memory.failcnt").strip() not in ("", "0")

    def pids_hit(self) -> bool:
        key = "unified" if self.version == 2 else "pids"
        return parse_kv(self._read(key, "pids.events")).get("max", 0) > 0

    def cpu_seconds(self) -> float | None:
        """CPU time of every process that ran in the cgroup (None when not measured)."""
        if self.version == 2:
            usec = parse_kv(self._read("unified", "cpu.stat")).get("usage_usec")
            return usec / 1e6 if usec is not None else None
        text = self._read("cpuacct", "cpuacct.usage").strip()
        return int(text) / 1e9 if text.isdigit() else None

    def kill_all(self) -> None:
        for path in self.dirs.values():
            _kill_members(path)

    def remove(self) -> None:
        self.kill_all()
        for path in self.dirs.values():
            _rmdir(path)


JOIN_FAILED = "synpref-sandbox: could not move the run into its cgroup"


def _kill_members(path: Path) -> None:
    if (path / "cgroup.kill").exists():
        with contextlib.suppress(OSError):
            (path / "cgroup.kill").write_text("1")
            return
    for _ in range(3):
        pids = _words(path / "cgroup.procs")
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)


def _rmdir(path: Path, attempts: int = 50) -> bool:
    """Remove a cgroup directory; it may take a moment for killed processes to leave (EBUSY)."""
    for _ in range(attempts):
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return False
            time.sleep(0.05)
    return False


def parse_kv(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


# --- leftovers ----------------------------------------------------------------------------------------


def owner_pid(path: Path) -> int | None:
    """The pid of the worker process that made run cgroup ``path`` (None for a foreign name)."""
    rest = path.name[len(RUN_PREFIX) :]
    head = rest.split("-", 1)[0]
    return int(head) if head.isdigit() and "-" in rest else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_cgroups(
    cgroup_parent: str = "", support: Support | None = None, owners: Collection[int] | None = None
) -> list[Path]:
    """Every run cgroup present where this worker creates them (empty when there is no such place).

    ``owners``: only those made by these worker pids (a shared hierarchy may hold other workers' runs).
    """
    support = support or detect(cgroup_parent)
    found: list[Path] = []
    for base in support.bases.values():
        with contextlib.suppress(OSError):
            found += sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith(RUN_PREFIX))
    if owners is not None:
        found = [p for p in found if owner_pid(p) in owners]
    return found


def cleanup_stale(cgroup_parent: str = "", *, min_age_s: float = 60.0) -> list[Path]:
    """Kill what is left in run cgroups whose worker process is gone, and remove them.

    A run cgroup is stale when the worker that made it (its pid is in the name) no longer exists, or
    when it has been empty for ``min_age_s`` (a pid that was reused). Returns the removed paths.
    """
    removed: list[Path] = []
    now = time.time()
    for path in run_cgroups(cgroup_parent):
        owner = owner_pid(path)
        empty = not _words(path / "cgroup.procs")
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        orphaned = owner is not None and not _alive(owner)
        if not orphaned and not (empty and age >= min_age_s):
            continue
        _kill_members(path)
        if _rmdir(path):
            removed.append(path)
    return removed
