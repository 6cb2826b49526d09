"""The back-door profile: memories loaded in bulk into the DUT's RAMs by its simulation harness.

The fastest path (no bus at all): the adapter writes each run's memory images and a plan into
a run directory, the DUT's harness loads them with ``$readmemh`` in zero simulation time,
starts the run, waits for its end and dumps the results with ``$writememh``. What starts the
runs and runs the watchdog is either the harness itself (an adapter with ``self_sequenced``:
the profile writes the run list to ``seq.hex`` and starts the simulator with
``+t2c_seq=seq.hex``, no cocotb and no Python in the simulator, the default path) or the cocotb
module :mod:`t2c_sim.cosim.tb_backdoor` (other adapters, and runs recording waves). Both
report a hang or error flags with the same message.

The adapter protocol of this profile (our accelerator's is
:class:`t2c_sim.cosim.accel.T2cAccelAdapter`):

* ``harness(sim, packed=None, rtl_dir=None) -> (sources, toplevel, parameters)``: the build;
  ``max_runs``: how many runs the harness's plan holds; ``self_sequenced`` (optional, default
  false): the harness implements ``+t2c_seq=FILE`` as ``hdl/t2c_harness.v`` documents;
* ``configure(rec, x) -> plan`` (one per layer; ``units(plan)`` tiles, ``runs(plan)`` runs);
* ``load(plans, run_dir, tiles, limit) -> selected tiles per layer`` (writes the files);
* ``schedule(plan, sel, base) -> [(global run, name, predicted cycles)]``;
* ``read(plan, run_dir, sel, base, predicted) -> (y, acc, [TileResult])``.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.profiles.harness import release_run_dir
from t2c_sim.cosim.result import CosimResult
from t2c_sim.cosim.sim import rundirs
from t2c_sim.cosim.sim.launch import verilator_plusargs
from t2c_sim.cosim.sim.tools import log_tail, run_logged
from t2c_sim.errors import SimulationError, T2CError, UnsupportedLayerError
from t2c_sim.record import LayerRecord

__all__ = ["run_backdoor", "build_backdoor", "TB_MODULE", "find_wave", "default_timeout"]

log = logging.getLogger(__name__)

TB_MODULE = Path(__file__).resolve().parents[1] / "tb_backdoor.py"


def find_wave(run_dir: Path, build_dir: Path) -> Path | None:
    """The newest waveform written by a run (FST from Verilator, per the runner on Icarus)."""
    found = sorted([*run_dir.rglob("*.fst"), *run_dir.rglob("*.vcd"),
                    *build_dir.glob("*.fst"), *build_dir.glob("*.vcd")],
                   key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def default_timeout(total_cycles: int, sim: str, pes: int) -> float:
    """Generous wall-clock limit of a run: measured ~10k (Icarus) / ~140k (Verilator) cycles/s."""
    return 120.0 + total_cycles * (4e-5 * pes if sim == "icarus" else 5e-5 + 2e-6 * pes)


def build_backdoor(dut: Any, sim: str, build_root: str | Path, *, waves: bool = False,
                   optimize: bool = True, packed: bool | None = None,
                   rtl_dir: str | Path | None = None,
                   build_args: Sequence[str] = ()) -> simmod.BuildInfo:
    """Build (or reuse) the DUT's back-door harness, as :func:`run_backdoor` does: what a caller
    spreading layers over worker processes builds once before they start (``build_args`` are
    appended, e.g. Verilator coverage flags)."""
    srcs, top, params = dut.adapter.harness(sim, packed=packed, rtl_dir=rtl_dir)
    args = []
    if sim == "verilator":
        args = ["--timing", "--no-public-flat-rw"] + ["-CFLAGS", "-O2" if optimize else "-O0"]
    return simmod.build(sim, top, srcs, params, build_root, waves=waves,
                        build_args=[*args, *build_args], includes=dut.spec.includes,
                        defines=dut.spec.defines, self_main=_self_sequenced(dut, waves))


def _self_sequenced(dut: Any, waves: bool) -> bool:
    """Whether runs go through the harness's own sequencer (waves stay on the cocotb module)."""
    return bool(getattr(dut.adapter, "self_sequenced", False)) and not waves


def run_backdoor(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]], sim: str, *,
                 build_root: str | Path, waves: bool = False,
                 tiles: list[list[int] | None] | None = None, timeout_s: float | None = None,
                 keep: bool = False, mutate: Callable[[Path], None] | None = None,
                 optimize: bool = True, watchdog_margin: int = 1000,
                 packed: bool | None = None, rtl_dir: str | Path | None = None,
                 max_runs: int | None = None,
                 build_args: Sequence[str] = ()) -> list[CosimResult]:
    """Co-simulate ``pairs`` (checked records and inputs) on a back-door DUT, one process.

    See :func:`t2c_sim.cosim.engine.cosimulate` for the arguments.
    """
    t0 = time.monotonic()
    ad = dut.adapter
    plans = [ad.configure(rec, x) for rec, x in pairs]
    if tiles is not None:
        for (rec, _), plan, sel in zip(pairs, plans, tiles):
            for i in sel or ():
                if not 0 <= i < ad.units(plan):
                    raise SimulationError(f"tile {i} is not one of the {ad.units(plan)} tiles",
                                          layer=rec.name)
    max_runs = int(max_runs or ad.max_runs)   # the harness's plan capacity
    n_runs = sum(ad.runs(p, None if tiles is None else tiles[i]) for i, p in enumerate(plans))
    if n_runs > max_runs:  # before the build: a refused size costs no simulator
        raise UnsupportedLayerError(
            f"layer {', '.join(r.name for r, _ in pairs)}: {n_runs} accelerator runs exceed the "
            f"limit of {max_runs} runs per simulator process (co-simulate fewer layers at "
            f"once, or fewer tiles with tiles=...)")
    info = build_backdoor(dut, sim, build_root, waves=waves, optimize=optimize, packed=packed,
                          rtl_dir=rtl_dir, build_args=build_args)
    first = re.sub(r"[^A-Za-z0-9_.-]+", "_", pairs[0][0].name)
    # not kept: a scratch directory on tmpfs (thousands of small files, sim/rundirs.py)
    run_dir = rundirs.make(info.build_dir, first, keep=keep or waves,
                           size_hint=_size_hint(ad, plans))
    try:
        out, order, wall = _execute(dut, pairs, plans, sim, info, run_dir, tiles=tiles,
                                    max_runs=max_runs, mutate=mutate, timeout_s=timeout_s,
                                    waves=waves, watchdog_margin=watchdog_margin)
    except T2CError as e:  # a failed run keeps its files and log beside the build
        raise rundirs.relocate(e, run_dir, rundirs.persist(run_dir, info.build_dir)) from None
    except BaseException:  # interrupted: nothing of it is worth keeping on tmpfs
        if rundirs.is_scratch(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    release_run_dir(out, run_dir, keep or waves)
    log.info("%d layer(s) on %s (%s): %d runs, run %.2f s (total %.2f s)", len(plans), sim,
             dut.name, len(order), wall, time.monotonic() - t0)
    return out


def _size_hint(ad: Any, plans: Sequence[Any]) -> int:
    """Bytes a run directory of ``plans`` holds, roughly (our accelerator: every operand in hex
    once per tile that loads it; another adapter: a small default)."""
    total = 0
    for p in plans:
        cols, values = getattr(p, "cols", None), getattr(p, "values", None)
        tiles = getattr(getattr(p, "plan", None), "tiles", ())
        if cols is None or values is None:
            continue
        n_ct = len({t.c0 for t in tiles}) or 1
        n_rt = len({(t.group, t.p0) for t in tiles}) or 1
        total += 2 * (cols.size * n_ct + 2 * values.size * n_rt)
    return int(total)


def _execute(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]], plans: list[Any],
             sim: str, info: simmod.BuildInfo, run_dir: Path, *,
             tiles: list[list[int] | None] | None, max_runs: int,
             mutate: Callable[[Path], None] | None, timeout_s: float | None, waves: bool,
             watchdog_margin: int) -> tuple[list[CosimResult], list[int], float]:
    """Write the operand files, run the simulator, read the results (see :func:`run_backdoor`)."""
    ad = dut.adapter
    t1 = time.monotonic()
    sels = ad.load(plans, run_dir, tiles, max_runs)
    bases = np.cumsum([0] + [ad.runs(p, sel) for p, sel in zip(plans, sels)]).tolist()
    order, names, pred = [], [], {}
    for plan, sel, base in zip(plans, sels, bases):
        for gi, name, cyc in ad.schedule(plan, sel, base):
            order.append(gi)
            names.append(name)
            pred[gi] = cyc
    prep_s = time.monotonic() - t1
    if mutate is not None:
        mutate(run_dir)
    if timeout_s is None:
        timeout_s = default_timeout(sum(pred.values()), sim,
                                    int(dut.params.get("ROWS", 8)) * int(dut.params.get("COLS", 8)))
    payload = {"names": names, "tiles": order, "predicted": [pred[i] for i in order],
               "limits": [2 * pred[i] + watchdog_margin for i in order],
               "err_names": list(getattr(dut.spec.interface, "err_names", ()))}
    t2 = time.monotonic()
    if _self_sequenced(dut, waves) and (sim == "icarus" or info.self_exe is not None):
        _run_self(info, run_dir, payload, timeout_s)
    else:
        # the testbench has no assert to rewrite: skip pytest's rewriting hook (its set-up scans
        # every installed package's entry points, ~0.2 s of each simulator start)
        simmod.run(info, TB_MODULE, test_dir=run_dir, payload=payload, timeout_s=timeout_s,
                   waves=waves, extra_env={"COCOTB_REWRITE_ASSERTION_FILES": ""})
    wall = time.monotonic() - t2
    wave = find_wave(run_dir, info.build_dir) if waves else None
    out = []
    for (rec, _), plan, sel, base in zip(pairs, plans, sels, bases):
        y, acc, res = ad.read(plan, run_dir, sel, base, pred)
        out.append(CosimResult(layer=rec.name, y=y, acc=acc,
                               cycles=sum(r.cycles_measured for r in res), tiles=res, sim=sim,
                               build_dir=info.build_dir, run_dir=run_dir, wave_file=wave,
                               wall_s=wall, build_s=info.build_s, prep_s=prep_s, dut=dut.name,
                               check_cycles=dut.exact,
                               extra={"layers_in_run": float(len(plans))}))
    return out, order, wall


SEQ_FILE = "seq.hex"
STATUS_FILE = "seq_status.txt"


def _status_ok(line: list[str], n: int) -> bool:
    """Whether ``line`` is a status the harness writes: ``done n``, ``hang i busy`` or
    ``err i flags`` with ``i`` one of the ``n`` entries (a crash may leave anything)."""
    if len(line) == 2 and line[0] == "done":
        return line[1].isdigit()
    if len(line) != 3 or line[0] not in ("hang", "err") or not line[1].isdigit():
        return False
    return int(line[1]) < n and (line[2].isdigit() or (line[0] == "err" and line[2] == "x"))


def _run_self(info: simmod.BuildInfo, run_dir: Path, payload: dict[str, Any],
              timeout_s: float) -> None:
    """Run the payload's run list with the harness's own sequencer (``+t2c_seq``), no cocotb.

    The same checks as :mod:`t2c_sim.cosim.tb_backdoor`, read back from the harness's status
    line: a run past its watchdog limit or ending with error flags raises
    :class:`SimulationError` naming the layer, tile and flags; so does a simulator that exits
    with an error or without a status."""
    tiles, limits = payload["tiles"], payload["limits"]
    words = [len(tiles)] + [int(v) for t, lim in zip(tiles, limits) for v in (t, lim)]
    (run_dir / SEQ_FILE).write_text("".join(f"{w:08x}\n" for w in words))
    status = run_dir / STATUS_FILE
    status.unlink(missing_ok=True)
    if info.sim == "verilator":
        assert info.self_exe is not None
        cmd = [str(info.self_exe), f"+t2c_seq={SEQ_FILE}", *verilator_plusargs()]
    else:
        cmd = ["vvp", "-n", str(info.build_dir / "sim.vvp"), f"+t2c_seq={SEQ_FILE}", "-none"]
    logf = run_dir / "sim.log"
    what = f"{info.toplevel} ({info.sim}) running {len(tiles)} run(s)"
    t0 = time.monotonic()
    rc = run_logged(cmd, info.env, run_dir, logf, timeout_s, what,
                    header=f"t2c: running {' '.join(cmd)} in {run_dir}\n")
    log.info("%s: %.1f s, exit %d, log %s", what, time.monotonic() - t0, rc, logf)
    line = status.read_text(errors="replace").split() if status.is_file() else []
    if not _status_ok(line, len(tiles)):
        raise SimulationError(f"{what}: the harness wrote no readable status (exit {rc}; "
                              f"{' '.join(line)[:80] or 'none'}): {log_tail(logf)}; log: {logf}")
    if line[0] == "done":
        if rc != 0 or int(line[1]) != len(tiles):
            raise SimulationError(f"{what}: simulator exited with {rc} after {line[1]} of "
                                  f"{len(tiles)} runs: {log_tail(logf)}; log: {logf}")
        return
    i = int(line[1])
    name = payload["names"][i]
    if line[0] == "hang":
        raise SimulationError(
            f"{what}: layer {name}: no done within {limits[i]} cycles (cycle model predicts "
            f"{payload['predicted'][i]}); watchdog stopped the run (busy={line[2]}); log: {logf}")
    if line[2] == "x":
        raise SimulationError(f"{what}: layer {name}: accelerator error flags are X/Z; log: {logf}")
    err = int(line[2])
    flag_names = ",".join(n for b, n in enumerate(payload.get("err_names") or []) if err >> b & 1)
    raise SimulationError(f"{what}: layer {name}: accelerator error flags {err:#04x}"
                          + (f" ({flag_names})" if flag_names else "") + f"; log: {logf}")
