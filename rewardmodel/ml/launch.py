"""Launch a multi-process training run as a child process group and follow it (what the gpu worker does).

:func:`check_resources` refuses a run this machine cannot hold; :func:`launch` starts
``python -m torch.distributed.run --standalone --nproc_per_node=N -m rewardmodel.ml.train ...`` in a new session
(its own process group), tails the events file rank 0 writes, hands each event to ``on_event`` (returning False
asks for a cancel: the cancel file is created and every rank checkpoints and stops), and always ends with no rank
left: on any exit of the parent's loop (an exception, a Celery time limit, a crash of one rank) the whole group gets
SIGTERM, then SIGKILL. No Django.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardmodel.ml.config import RewardTrainingConfig

ACCELERATORS = ("gpu", "cpu")
ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL = 4000


class ResourceError(RuntimeError):
    """This machine cannot run the requested number of processes on the requested accelerator."""


@dataclass
class LaunchResult:
    """How a launched run ended: ``status`` is ``succeeded``, ``cancelled`` or ``failed``."""

    status: str
    returncode: int | None
    result: dict[str, Any] | None = None
    step: int | None = None
    error: str = ""
    events: int = 0
    log_tail: str = ""
    pids: list[int] = field(default_factory=list)


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without CUDA). Imports torch."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_resources(nproc: int, accelerator: str, *, gpus: int | None = None, cpus: int | None = None) -> None:
    """Raise :class:`ResourceError` with a message naming what is missing, unless ``nproc`` processes fit.

    ``gpu``: one GPU per process. ``cpu``: Gloo processes, at most one per CPU core.
    """
    if nproc < 1:
        raise ResourceError(f"a run needs at least 1 process, got {nproc}")
    if accelerator not in ACCELERATORS:
        raise ResourceError(f"accelerator must be one of {ACCELERATORS}, got {accelerator!r}")
    if accelerator == "gpu":
        have = visible_gpus() if gpus is None else gpus
        if have < nproc:
            raise ResourceError(
                f"the job asks for {nproc} GPU{'s' if nproc > 1 else ''}; this worker has {have} "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). Run it on a worker with "
                "enough GPUs, ask for fewer, or ask for CPU processes."
            )
    else:
        have = (os.cpu_count() or 1) if cpus is None else cpus
        if have < nproc:
            raise ResourceError(f"the job asks for {nproc} CPU processes; this worker has {have} CPU cores")


def command(config_path: Path, nproc: int, events: Path, cancel: Path) -> list[str]:
    """The torchrun command line for one node (``--standalone``: a local rendezvous on a free port)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "rewardmodel.ml.train",
        "--config",
        str(config_path),
        "--events-file",
        str(events),
        "--cancel-file",
        str(cancel),
    ]


def launch(
    config: RewardTrainingConfig,
    *,
    nproc: int,
    accelerator: str,
    run_dir: str | os.PathLike[str],
    on_event: Callable[[dict[str, Any]], bool | None] | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    cancel_now: bool = False,
) -> LaunchResult:
    """Run ``config`` on ``nproc`` processes and wait for the end, streaming events to ``on_event``.

    ``run_dir`` receives ``launch_config.json``, ``events.jsonl``, ``cancel`` (created to cancel) and
    ``launch.log`` (every rank's stdout and stderr). ``on_event(event)`` gets each ``log`` / ``eval`` / ``save``
    event as rank 0 writes it; returning False requests a cancel. ``cancel_now`` creates the cancel file before the
    start (a cancel asked for before the launch: the run stops after its first step, with a checkpoint to resume
    from). ``accelerator="cpu"`` hides the GPUs from the ranks (Gloo). Raises :class:`ResourceError` before starting anything when the machine is too small.
    """
    check_resources(nproc, accelerator)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    cfg_path, events, cancel, log_path = (
        run / "launch_config.json",
        run / "events.jsonl",
        run / "cancel",
        run / "launch.log",
    )
    for stale in (events, cancel):
        stale.unlink(missing_ok=True)
    if cancel_now:
        cancel.touch()
    config.to_json(cfg_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("OMP_NUM_THREADS", "1")
    if accelerator == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    result = LaunchResult(status="failed", returncode=None)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command(cfg_path, nproc, events, cancel),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: one killpg reaches torchrun and every rank
            preexec_fn=_die_with_parent,
        )
        result.pids = [proc.pid]
        started = time.monotonic()
        offset = 0
        try:
            while True:
                finished = proc.poll() is not None
                offset = _read_events(events, offset, result, on_event, cancel)
                if finished:
                    break
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"the run took longer than {timeout_s:.0f} s")
                time.sleep(poll_s)
        finally:
            _kill_group(proc)
    result.returncode = proc.returncode
    result.log_tail = _tail(log_path)
    if result.status == "failed" and not result.error:
        result.error = f"the distributed run exited with code {proc.returncode}; log: {log_path}"
    return result


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends torchrun SIGTERM if the worker process dies without cleaning up
    (SIGKILL, cold shutdown); torchrun then stops its ranks. A no-op elsewhere."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _read_events(
    path: Path,
    offset: int,
    result: LaunchResult,
    on_event: Callable[[dict[str, Any]], bool | None] | None,
    cancel: Path,
) -> int:
    """Handle the complete lines written since ``offset``; return the new offset."""
    if not path.exists():
        return offset
    with path.open("rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    end = chunk.rfind(b"\n") + 1
    for raw in chunk[:end].splitlines():
        try:
            event = json.loads(raw)
        except json.JSONDecodeError:
            continue
        result.events += 1
        kind = event.get("event")
        if kind == "done":
            result.status, result.result = "succeeded", event.get("result")
            result.step = (event.get("result") or {}).get("global_step")
        elif kind == "cancelled":
            result.status, result.step = "cancelled", event.get("step")
        elif kind == "error":
            result.status, result.error = "failed", str(event.get("error", ""))
        elif on_event is not None and on_event(event) is False and not cancel.exists():
            cancel.touch()
    return offset + end


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM the child's process group, wait up to ``grace_s``, then SIGKILL it (no rank outlives the job)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(proc.pid):
            break
    if proc.poll() is None:
        proc.wait(timeout=5.0)


def _group_alive(pgid: int) -> bool:
    """True while some process of group ``pgid`` is still running."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, limit: int = LOG_TAIL) -> str:
    """The last ``limit`` characters of a log file."""
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        return handle.read().decode("utf-8", errors="replace")
