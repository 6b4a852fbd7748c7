"""`make run`'s supervisor: one Ctrl+C gives each child exactly one SIGTERM, and nothing is left running."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    def on(signum, frame):
        with out.open("a") as f:
            f.write(signal.Signals(signum).name + "\\n")
        if signum == signal.SIGTERM:
            sys.exit(0)
    signal.signal(signal.SIGTERM, on)
    signal.signal(signal.SIGINT, on)
    out.write_text("")
    while True:
        time.sleep(0.1)
    """
)

SUPERVISOR = textwrap.dedent(
    """
    import sys
    from devtools import run_dev
    child, a, b = sys.argv[1:4]
    run_dev.commands = lambda host, port: {"worker": [sys.executable, child, a], "web": [sys.executable, child, b]}
    raise SystemExit(run_dev.main([]))
    """
)


def _wait_for(paths: list[Path], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, "children did not start"
        time.sleep(0.05)


def test_one_ctrl_c_stops_both_children_with_one_sigterm_each(tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    a, b = tmp_path / "worker.log", tmp_path / "web.log"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(child), str(a), str(b)], cwd=root, stderr=subprocess.PIPE
    )
    _wait_for([a, b])
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    # The children run in their own sessions: the terminal's SIGINT never reached them, only one SIGTERM.
    assert a.read_text().split() == ["SIGTERM"]
    assert b.read_text().split() == ["SIGTERM"]
    assert b"stopping" in err


def test_a_child_that_dies_stops_the_other_and_reports_its_status(tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    a = tmp_path / "worker.log"
    root = Path(__file__).resolve().parents[2]
    script = SUPERVISOR.replace(
        '"web": [sys.executable, child, b]',
        '"web": [sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(3)"]',
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(child), str(a), "-"], cwd=root, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert a.read_text().split() == ["SIGTERM"]
    assert b"web exited with status 3" in err
