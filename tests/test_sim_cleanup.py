"""A simulator started by sim.py never outlives the process waiting on it (Ctrl-C or SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from t2c_sim.cosim.sim.tools import run_logged
    d = Path(sys.argv[1])
    cmd = ["sh", "-c", f"echo $$ > {d / 'sim.pid'}; exec sleep 60"]
    run_logged(cmd, {"PATH": "/usr/bin:/bin"}, d, d / "log", 120.0, "fake sim")
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its reaper is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _start(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)])
    pidf = tmp_path / "sim.pid"
    t0 = time.monotonic()
    while not (pidf.exists() and pidf.read_text().strip()):
        assert time.monotonic() - t0 < 30, "fake simulator did not start"
        time.sleep(0.05)
    sim_pid = int(pidf.read_text())
    assert _alive(sim_pid)
    return proc, sim_pid


def _gone_within(pid: int, seconds: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_simulator_dies_with_its_waiter(tmp_path: Path, sig: signal.Signals) -> None:
    proc, sim_pid = _start(tmp_path)
    try:
        proc.send_signal(sig)  # only the waiting Python process: the simulator is in its own session
        proc.wait(timeout=20)
        assert _gone_within(sim_pid, 10), f"simulator {sim_pid} survived {sig.name} of its waiter"
    finally:
        if _alive(sim_pid):
            os.kill(sim_pid, signal.SIGKILL)
