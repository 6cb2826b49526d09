"""Co-simulate one layer and judge it against its golden ``y``: the one implementation that a
regression run (:mod:`t2c_sim.regress.pipeline`) and a repro bundle rerun
(:mod:`t2c_sim.regress.repro`) share.

:func:`simulate` runs the layer on the RTL (:func:`t2c_sim.cosim.run.run_layer`), compares the
outputs and accumulators with the record's (:func:`t2c_sim.cosim.compare.compare`) and returns
a :class:`~t2c_sim.regress.results.SimOutcome`: ``pass``, or ``fail`` with the localized first
mismatch as a plain dict (:func:`mismatch_dict`, with a binned map of where outputs differ).
With ``wave_tile`` only that tile runs; the other outputs are taken from the golden model.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.closure.codecov import COVERAGE_ARGS
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim.compare import compare, cycle_mismatch
from t2c_sim.cosim.dut import Dut, default_dut
from t2c_sim.cosim.engine import cosimulate
from t2c_sim.errors import MismatchError, RecordError, SimulationError
from t2c_sim.files import jsonable, make_dirs
from t2c_sim.record import LayerRecord
from t2c_sim.regress.results import FAIL, PASS, SimOutcome

__all__ = ["simulate", "judge", "mismatch_dict", "wave_path", "take_coverage", "safe_name",
           "MAP_BINS", "LAYERS_SUFFIX"]

log = logging.getLogger(__name__)

MAP_BINS = 48
LAYERS_SUFFIX = ".layers"   # beside a coverage file: the layers its simulator process ran


def mismatch_dict(mm: Any, rec: LayerRecord, expected: np.ndarray, actual: np.ndarray
                  ) -> dict[str, Any]:
    """Plain dict of a cosim ``Mismatch`` plus a binned ``map`` of where outputs differ."""
    if dataclasses.is_dataclass(mm):
        d = {f.name: getattr(mm, f.name) for f in dataclasses.fields(mm)}
    else:
        d = {k: v for k, v in vars(mm).items() if not k.startswith("_")}
    d = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()
         if isinstance(v, (int, float, str, bool, type(None), np.generic))}
    d.setdefault("layer", rec.name)
    d["message"] = str(mm)
    e = np.asarray(expected).reshape(-1, rec.c_out)
    try:
        a = np.asarray(actual).reshape(-1, rec.c_out)
    except ValueError:
        return d
    if a.shape != e.shape:
        return d
    bad = e != a
    d["count"] = int(bad.sum())
    rows, cols = bad.shape
    rb, cb = min(rows, MAP_BINS), min(cols, MAP_BINS)
    ri = (np.arange(rows) * rb) // rows
    ci = (np.arange(cols) * cb) // cols
    grid = np.zeros((rb, cb), dtype=np.int64)
    np.add.at(grid, (ri[:, None], ci[None, :]), bad.astype(np.int64))
    d["map"] = grid.tolist()
    d["map_rows"], d["map_cols"] = rows, cols
    return d


def wave_path(res: Any) -> str | None:
    """The waveform file of a cosim result, if one was recorded."""
    w = getattr(res, "wave_file", None) or getattr(res, "wave", None)
    return str(w) if w else None


def _tiles(res: Any) -> list[dict[str, Any]]:
    out = []
    for t in getattr(res, "tiles", None) or []:
        if dataclasses.is_dataclass(t):
            t = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
        elif not isinstance(t, dict):
            t = dict(vars(t))
        out.append({k: (v.item() if isinstance(v, np.generic) else v) for k, v in t.items()
                    if isinstance(v, (int, float, str, type(None), np.generic))})
    return out


def _only_tile(rec: LayerRecord, golden: np.ndarray, actual: np.ndarray, tiles: Any,
               index: int) -> np.ndarray:
    """``golden`` with the region of tile ``index`` replaced by ``actual``'s."""
    t = next((t for t in tiles or () if int(t.index) == index), None)
    if t is None:
        raise SimulationError(f"tile {index} was not run", layer=rec.name)
    shape = np.shape(golden)
    out = _gemm_view(rec, np.array(golden, dtype=np.int64))
    act = _gemm_view(rec, np.asarray(actual, dtype=np.int64))
    out[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = act[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols]
    if rec.op is OpKind.MATMUL and len(shape) >= 2:
        p, c = shape[-2], rec.c_out
        return out.reshape(p, -1, c).transpose(1, 0, 2).reshape(shape)
    return out.reshape(shape)


def _gemm_view(rec: LayerRecord, a: np.ndarray) -> np.ndarray:
    """Outputs as the GEMM's ``[P, columns]`` (a matmul ``[*lead, P, C]``: ``[P, lead x C]``)."""
    if rec.op is OpKind.MATMUL and a.ndim >= 2:
        p, c = a.shape[-2], rec.c_out
        return np.ascontiguousarray(a.reshape(-1, p, c).transpose(1, 0, 2)).reshape(p, -1)
    return a.reshape(-1, rec.c_out)


def safe_name(name: str) -> str:
    """``name`` usable as a file name (every character but letters, digits, ``-``, ``_``
    becomes ``_``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def take_coverage(run_dir: Path | None, dest: Path, keep_dir: bool = False) -> Path:
    """Move a kept run directory's ``coverage.dat`` to ``dest``; remove the directory unless
    ``keep_dir`` (waves live there).

    Raises:
        SimulationError: The run wrote no ``coverage.dat`` (not a coverage build).
    """
    src = Path(run_dir) / "coverage.dat" if run_dir is not None else None
    try:
        if src is None or not src.is_file():
            raise SimulationError(f"{run_dir}: the simulator wrote no coverage.dat")
        make_dirs(dest.parent)
        shutil.move(str(src), str(dest))
    finally:
        if run_dir is not None and not keep_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    return dest


def simulate(rec: LayerRecord, hw: HwConfig, sim: str, *, build_root: str = "build/sim",
             timeout_s: float | None = None, waves: bool = False,
             wave_tile: int | None = None, dut: Dut | None = None,
             backpressure: tuple[int, int] = (0, 0), seed: int = 1,
             coverage_dat: Path | None = None) -> SimOutcome:
    """Co-simulate ``rec`` on ``sim`` and compare with its golden ``acc``/``y`` and the cycle model.

    Args:
        rec: a MAC layer record with golden results attached.
        hw: hardware configuration (our accelerator's array; what ``dut`` was bound from).
        sim: ``verilator`` or ``icarus``.
        build_root: simulator build cache.
        timeout_s: wall-clock limit of the simulator run (``None``: the cosim default).
        waves: record a waveform (its path is the outcome's ``wave``).
        wave_tile: with ``waves``, run only this tile (a repro of a localized mismatch).
        dut: the DUT (default: our accelerator bound to ``hw``).
        backpressure: ``(input, output)`` stall probabilities in percent (stream DUTs).
        seed: seed of the back-pressure patterns.
        coverage_dat: on Verilator, build with line/toggle/user coverage
            (:data:`t2c_sim.closure.codecov.COVERAGE_ARGS`; a build of its own in the cache) and
            move the run's ``coverage.dat`` here.

    Returns:
        ``pass``, or ``fail`` with ``mismatch`` and a one-line ``message`` (outputs that differ,
        a difference the testbench itself flagged, or cycles that differ from an exact model).

    Raises:
        RecordError: the record carries no golden ``y``.
        SimulationError: the simulator could not produce a result (callers stop on it).
    """
    if rec.y is None:
        raise RecordError("the record has no golden y", layer=rec.name)
    dut = dut or default_dut(hw)
    t0 = time.perf_counter()
    cov = coverage_dat is not None and sim == "verilator"
    try:
        res = cosimulate(dut, [rec], sim, build_root=build_root, waves=waves,
                         tiles=None if wave_tile is None else [[wave_tile]],
                         timeout_s=timeout_s, backpressure=backpressure, seed=seed, keep=cov,
                         build_args=COVERAGE_ARGS if cov else ())[0]
    except MismatchError as e:  # the testbench itself flagged a difference
        return SimOutcome(sim, FAIL, message=str(e), wall_s=time.perf_counter() - t0)
    if cov:
        take_coverage(res.run_dir, coverage_dat, keep_dir=waves)
    return judge(rec, sim, res, time.perf_counter() - t0, wave_tile=wave_tile)


def judge(rec: LayerRecord, sim: str, res: Any, wall_s: float,
          wave_tile: int | None = None) -> SimOutcome:
    """The verdict on a co-simulated layer: ``res`` (a ``CosimResult``, possibly merged from
    the tile ranges of several processes) against the golden ``acc``/``y`` of ``rec``.

    With ``wave_tile`` only that tile ran: the other outputs are taken from the golden model.
    """
    out = SimOutcome(sim, PASS, cycles_measured=int(res.cycles), tiles=_tiles(res),
                     wall_s=wall_s, wave=wave_path(res),
                     cycles_model=res.cycles_predicted,
                     backpressure=list(res.backpressure) if any(res.backpressure) else None)
    actual_y, actual_acc = res.y, getattr(res, "acc", None)
    if wave_tile is not None:
        # Only the failing tile ran: take the other outputs from the golden model.
        actual_y = _only_tile(rec, rec.y, res.y, res.tiles, wave_tile)
        if actual_acc is not None and rec.acc is not None:
            actual_acc = _only_tile(rec, rec.acc, actual_acc, res.tiles, wave_tile)
    mm = compare(rec, rec.y, actual_y, tiles=getattr(res, "tiles", None), acc_expected=rec.acc,
                 acc_actual=actual_acc)
    if mm is not None:
        out.verdict, out.message = FAIL, str(mm)
        out.mismatch = jsonable(mismatch_dict(mm, rec, rec.y, actual_y))
        log.info("%s [%s]: %s", rec.name, sim, out.message)
        return out
    cm = cycle_mismatch(res)
    if cm is not None:
        out.verdict, out.message = FAIL, str(cm)
        out.mismatch = jsonable({"layer": rec.name, "tile": cm.tile, "kind": "cycles",
                                 "cycles_measured": cm.measured, "cycles_predicted": cm.predicted,
                                 "cycles_source": cm.kind, "message": str(cm)})
        log.info("%s [%s]: %s", rec.name, sim, out.message)
    return out
