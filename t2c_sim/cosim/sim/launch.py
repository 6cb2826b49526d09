"""Run cocotb tests against a build: start the simulator directly, with a timeout, and read
the results.

:func:`run` starts the simulator with a cocotb test module directly (its own process group,
the command and environment cocotb's runner would use, see :func:`launch_spec`) with a
wall-clock timeout that kills a hung simulator, then reads the results XML: a failing test
raises :class:`~t2c_sim.errors.MismatchError` carrying the test's message, anything else that
goes wrong raises :class:`~t2c_sim.errors.SimulationError`. Data for a testbench travels in
files: ``payload`` (JSON) and ``arrays`` (``.npz``) given to :func:`run` are written to the run
directory and the path is passed in one environment variable, ``T2C_PAYLOAD``; the testbench
reads them with :func:`load_payload`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2c_sim.cosim.sim.builder import BuildInfo, _safe
from t2c_sim.cosim.sim.payload import PAYLOAD_ENV, load_payload
from t2c_sim.cosim.sim.tools import log_tail, run_logged
from t2c_sim.errors import MismatchError, SimulationError

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions that need it: this module is also imported by the
# testbenches inside the simulator, where importing numpy costs ~0.7 s (embedded in the
# Verilator process) of every run's start-up.

__all__ = ["run", "launch_spec", "load_payload", "verilator_plusargs"]

log = logging.getLogger(__name__)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"payload value of type {type(o).__name__} is not JSON serializable")


def run(info: BuildInfo, test_module: str | os.PathLike[str], *, testcase: str | None = None,
        test_dir: str | os.PathLike[str] | None = None, extra_env: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None, arrays: Mapping[str, np.ndarray] | None = None,
        timeout_s: float = 600.0, waves: bool = False, seed: int | None = None,
        plusargs: Sequence[str] = ()) -> Path:
    """Run cocotb tests against a build in a subprocess, with a wall-clock timeout.

    Args:
        info: From :func:`build`.
        test_module: A testbench file path (its folder goes on ``PYTHONPATH``) or an importable
            module name.
        testcase: Run only this test function (default: all in the module).
        test_dir: Run directory (default: a fresh one under ``<build_dir>/runs``).
        extra_env: Extra environment variables for the simulator process.
        payload: JSON-serializable data for the testbench (read with :func:`load_payload`).
        arrays: NumPy arrays for the testbench (saved as ``payload.npz``).
        timeout_s: Wall-clock limit; the simulator's whole process group is killed after it.
        waves: Record an FST in the run directory (``<toplevel>.fst`` on Icarus, ``dump.fst``
            on Verilator); the build must have been made with ``waves=True``.
        seed: ``COCOTB_RANDOM_SEED`` and Verilator's ``+verilator+seed+`` (default 1).
        plusargs: Extra simulator plusargs.

    Returns:
        The results XML path (all tests passed).

    Raises:
        SimulationError: Hung (timeout), crashed, no results, test errored, X/Z reported.
        MismatchError: A test failed; the message names the test and carries its message.
    """
    if waves and not info.waves:
        raise SimulationError(f"{info.toplevel} ({info.sim}): waves requested but the build "
                              "was made without waves=True")
    tm = str(test_module)
    module_dir: str | None = None
    if tm.endswith(".py") or os.sep in tm:
        p = Path(tm).resolve()
        if not p.is_file():
            raise SimulationError("testbench module not found", file=str(p))
        module_dir, tm = str(p.parent), p.stem
    if test_dir is None:
        runs = info.build_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        tdir = Path(tempfile.mkdtemp(prefix=f"{_safe(tm)}-{_safe(testcase or 'all')}-", dir=runs))
    else:
        tdir = Path(test_dir).resolve()
        tdir.mkdir(parents=True, exist_ok=True)
    env = dict(info.env)
    env.update(extra_env or {})
    pl: dict[str, Any] = dict(payload or {})
    if arrays:
        import numpy as np

        npz = tdir / "payload.npz"
        np.savez(npz, **{k: np.asarray(v) for k, v in arrays.items()})
        pl["__npz__"] = str(npz)
    ppath = tdir / "payload.json"
    ppath.write_text(json.dumps(pl, default=_json_default))
    env[PAYLOAD_ENV] = str(ppath)
    results = tdir / "results.xml"
    results.unlink(missing_ok=True)
    s = 1 if seed is None else int(seed)
    pa = list(plusargs)
    if waves and info.sim == "icarus":
        pa.append(f"+dumpfile_path={tdir / (info.toplevel + '.fst')}")
    if info.sim == "verilator":
        pa += verilator_plusargs(s)
    cmd, env = launch_spec(info, tm, env, module_dir=module_dir, testcase=testcase,
                           test_dir=tdir, results=results, seed=s, plusargs=pa, waves=waves)
    logf = tdir / "sim.log"
    what = f"{info.toplevel} ({info.sim}) running {tm}" + (f".{testcase}" if testcase else "")
    t0 = time.monotonic()
    rc = run_logged(cmd, env, tdir, logf, timeout_s, what,
                     header=f"t2c: running {' '.join(cmd)} in {tdir}\n")
    log.info("%s: %.1f s, exit %d, log %s", what, time.monotonic() - t0, rc, logf)
    _check_results(results, logf, rc, what)
    return results


def verilator_plusargs(seed: int = 1) -> list[str]:
    """The plusargs of every Verilator run, cocotb-driven or not (the builds use
    ``--x-initial unique``): uninitialized state randomized with ``seed`` (at least 1), so a
    missing reset shows up."""
    return ["+verilator+rand+reset+2", f"+verilator+seed+{max(1, int(seed))}"]


@functools.cache
def _cocotb_launch_base() -> dict[str, str]:
    """What cocotb's runner computes once per process: libpython, the PyGPI entry point, libs.

    The entry point is ``cocotb/simulator<ext>`` located without importing ``cocotb`` (which
    imports pytest: ~0.3 s); ``cocotb_tools.config.pygpi_entry_point()`` imports it.
    """
    import importlib.machinery

    import cocotb_tools.config
    import find_libpython

    libpython = find_libpython.find_libpython()
    if libpython is None:
        raise SimulationError("cannot find libpython (cocotb needs the shared Python library)")
    spec = importlib.util.find_spec("cocotb")
    pkg = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
    ext = [pkg / f"simulator{suf}" for suf in importlib.machinery.EXTENSION_SUFFIXES] if pkg else []
    found = [p for p in ext if p.is_file()]
    if not found:
        raise SimulationError("cocotb's simulator extension (cocotb/simulator*.so) not found")
    return {"libpython": libpython, "entry": f"{found[0]},initialize",
            "libs_dir": str(cocotb_tools.config.libs_dir),
            "vpi_icarus": str(cocotb_tools.config.lib_entry("vpi", "icarus"))}


def launch_spec(info: BuildInfo, test_module: str, env: Mapping[str, str], *,
                module_dir: str | None, testcase: str | None, test_dir: Path, results: Path,
                seed: int, plusargs: Sequence[str], waves: bool,
                ) -> tuple[list[str], dict[str, str]]:
    """The simulator command and environment of one cocotb test run.

    This is what ``cocotb_tools.runner``'s ``Runner.test`` (cocotb 2.1, pinned) passes to the
    simulator, computed here so that no runner worker process (a Python start plus the
    cocotb and pytest imports, ~0.4 s) precedes every run; ``tests/test_rtl_units.py`` checks
    it against the runner. ``PYTHONPATH`` is the testbench folder, the folder holding the
    ``t2c_sim`` package and the caller's ``PYTHONPATH``, not the caller's whole ``sys.path``.
    """
    base = _cocotb_launch_base()
    e = dict(env)
    if "GPI_USERS" not in e:
        e["GPI_USERS"] = ";".join([e.get("LIBPYTHON_LOC", base["libpython"]), base["entry"]])
    e["PATH"] = e.get("PATH", "") + os.pathsep + base["libs_dir"]
    paths = [p for p in (module_dir, str(Path(__file__).resolve().parents[3])) if p]
    paths += [p for p in e.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    e["PYTHONPATH"] = os.pathsep.join(paths)
    e["PYGPI_PYTHON_BIN"] = sys.executable
    e["COCOTB_TOPLEVEL"] = info.toplevel
    e["COCOTB_TEST_MODULES"] = test_module
    e["TOPLEVEL_LANG"] = "verilog"
    if testcase:
        e["COCOTB_TEST_FILTER"] = r"\.(" + rf".*{re.escape(testcase)}" + ")$"
    e["COCOTB_RANDOM_SEED"] = str(seed)
    if "COCOTB_RESULTS_ATTACHMENTS" not in e:  # the runner's wave file name (for the XML)
        wave = "dump.vcd" if info.sim == "verilator" else f"{info.toplevel}.fst"
        e["COCOTB_RESULTS_ATTACHMENTS"] = str(Path(test_dir) / wave) if waves else ""
    e["COCOTB_RESULTS_FILE"] = str(results)
    if info.sim == "verilator":
        e.setdefault("COCOTB_TRUST_INERTIAL_WRITES", "1")
        cmd = [str(info.build_dir / info.toplevel), *(["--trace"] if waves else []), *plusargs]
    else:
        cmd = ["vvp", "-m", base["vpi_icarus"], str(info.build_dir / "sim.vvp"), *plusargs,
               "-fst" if waves else "-none"]
    return cmd, e


_MISMATCH_TYPES = ("AssertionError", "MismatchError")


def _check_results(results: Path, logf: Path, rc: int, what: str) -> None:
    if not results.is_file():
        raise SimulationError(f"{what}: no results (exit {rc}): {log_tail(logf)}; log: {logf}")
    try:
        root = ET.parse(results).getroot()
    except ET.ParseError as e:
        raise SimulationError(f"unreadable results XML ({e})", file=str(results)) from None
    cases = root.findall(".//testcase")
    if not cases:
        raise SimulationError(f"{what}: no test ran (exit {rc}): {log_tail(logf)}; log: {logf}")
    for tc in cases:
        name = tc.get("name", "?")
        for tag in ("failure", "error"):
            el = tc.find(tag)
            if el is None:
                continue
            typ = el.get("type") or tag
            first = (el.get("message") or "").strip().splitlines()
            msg = f"{typ}: {first[0] if first else '(no message)'}"
            # A failed check (assert / MismatchError) is a mismatch; anything else (X/Z,
            # simulator ended early, testbench crash) is an infrastructure error.
            exc = MismatchError if tag == "failure" and typ in _MISMATCH_TYPES else SimulationError
            raise exc(f"{what}: test {name} failed: {msg}; log: {logf}")
    if rc != 0:
        raise SimulationError(f"{what}: simulator exited with {rc} after the tests passed: "
                              f"{log_tail(logf)}; log: {logf}")
