"""``make run``: the web server and a real Celery worker together, stopped cleanly by one Ctrl+C.

Each child runs in its own session, so the terminal's SIGINT reaches only this supervisor. On
Ctrl+C (or SIGTERM) it sends each child one SIGTERM (Celery's warm shutdown: finish or hand back
the running task), waits, and only then kills what is left. Before, the shell trap signalled the
whole group twice (Ctrl+C, then ``kill 0``), so the worker went from warm to cold shutdown and a
prefork child crashed ("Segmentation fault"). If either child exits on its own, the other is stopped
and its exit status is returned.

    python -m devtools.run_dev --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

GRACE_S = 30.0


def commands(host: str, port: int) -> dict[str, list[str]]:
    python = sys.executable
    celery = str(Path(python).with_name("celery"))
    return {
        "worker": [
            celery,
            "-A",
            "config",
            "worker",
            "-B",
            "-Q",
            "celery,gpu,sandbox",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--schedule",
            os.path.join(os.environ.get("VAR_DIR", "var"), "celerybeat-schedule"),
        ],
        "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
    }


def stop(children: dict[str, subprocess.Popen[bytes]], grace: float = GRACE_S) -> None:
    """One SIGTERM to each child (Celery's main process stops its pool itself), then SIGKILL the
    process group of whatever outlives ``grace`` seconds."""
    for proc in children.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"run: {name} did not stop within {grace:g} s; killing it", file=sys.stderr, flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            print("\nrun: stopping the web server and the worker (warm shutdown)...", file=sys.stderr, flush=True)
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children = {
        name: subprocess.Popen(cmd, start_new_session=True) for name, cmd in commands(args.host, args.port).items()
    }
    code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                print(f"run: {name} exited with status {proc.returncode}; stopping", file=sys.stderr, flush=True)
                code = proc.returncode or 1
                stopping = True
                break
        else:
            time.sleep(0.3)
    stop(children)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
