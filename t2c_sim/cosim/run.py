"""Our accelerator by its array configuration: the ``HwConfig`` face of the DUT contract.

:func:`run_layer` / :func:`run_layers` co-simulate records on ``rtl/t2c_accel_top.v`` for an
array ``hw``: they bind the packaged DUT file (:func:`t2c_sim.cosim.dut.default_dut`) and call
:func:`t2c_sim.cosim.engine.cosimulate` (the back-door profile, :mod:`t2c_sim.cosim.accel`
packs the scratchpads). Any other DUT goes through ``cosimulate`` with its own DUT file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from t2c_sim.config import HwConfig
from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.accel import (  # noqa: F401 (re-exported)
    HARNESS,
    RTL_MODULES,
    TOPLEVEL,
    Gemm,
    check_capacity,
    collect,
    default_packed,
    harness_sources,
    prepare,
    run_index,
    to_gemm,
)
from t2c_sim.cosim.dut import default_dut
from t2c_sim.cosim.profiles.backdoor import build_backdoor, run_backdoor
from t2c_sim.cosim.result import CosimResult, TileResult
from t2c_sim.errors import SimulationError, UnsupportedLayerError
from t2c_sim.export import iface
from t2c_sim.record import LayerRecord

__all__ = ["Y_BITS", "PLAN_WORDS", "MAX_TILES", "UnsupportedLayerError", "TileResult",
           "CosimResult", "Gemm", "HARNESS", "RTL_MODULES", "TOPLEVEL", "hw_parameters",
           "harness_sources", "build_accel", "to_gemm", "prepare", "collect", "run_layer",
           "run_layers", "check_supported", "check_capacity", "run_index", "default_packed"]

Y_BITS = iface.Y_BITS
PLAN_WORDS = iface.PLAN_WORDS
MAX_TILES = iface.MAX_RUNS   # runs one simulator process can hold (the harness's MAX_TILES)


def hw_parameters(hw: HwConfig, packed: bool = False) -> dict[str, int]:
    """Verilog parameters of ``t2c_accel_top`` for ``hw`` (:func:`t2c_sim.export.iface.top_parameters`)."""
    return iface.top_parameters(hw, packed)


def check_supported(rec: LayerRecord, hw: HwConfig) -> None:
    """Raise :class:`UnsupportedLayerError` unless the array ``hw`` accepts ``rec`` (its DUT file)."""
    default_dut(hw).check(rec)


def build_accel(hw: HwConfig, sim: str = "verilator", build_root: str | Path = "build/sim", *,
                waves: bool = False, optimize: bool = True, packed: bool | None = None,
                rtl_dir: str | Path | None = None,
                build_args: Sequence[str] = ()) -> simmod.BuildInfo:
    """Build the back-door harness of the array ``hw`` (cached per key by :func:`sim.build`;
    ``build_args`` are appended, e.g. Verilator coverage flags)."""
    return build_backdoor(default_dut(hw), sim, build_root, waves=waves, optimize=optimize,
                          packed=packed, rtl_dir=rtl_dir, build_args=build_args)


def run_layer(rec: LayerRecord, hw: HwConfig, sim: str = "verilator", *,
              x: np.ndarray | None = None, build_root: str | Path = "build/sim",
              waves: bool = False, wave_tile: int | None = None,
              timeout_s: float | None = None, keep: bool = False,
              packed: bool | None = None, build_args: Sequence[str] = ()) -> CosimResult:
    """Co-simulate one linear/conv layer on the accelerator RTL (see :func:`run_layers`).

    ``wave_tile`` (with ``waves``) simulates only that tile (all its K-chunks); its outputs are
    returned, the other outputs stay 0.
    """
    if wave_tile is not None and not waves:
        raise SimulationError("wave_tile needs waves=True", layer=rec.name)
    return run_layers([(rec, x)], hw, sim, build_root=build_root, waves=waves,
                      tiles=None if wave_tile is None else [[wave_tile]], timeout_s=timeout_s,
                      keep=keep, packed=packed, build_args=build_args)[0]


def run_layers(layers: Sequence[LayerRecord | tuple[LayerRecord, np.ndarray | None]],
               hw: HwConfig, sim: str = "verilator", *, build_root: str | Path = "build/sim",
               waves: bool = False, tiles: list[list[int] | None] | None = None,
               timeout_s: float | None = None, keep: bool = False,
               mutate: Callable[[Path], None] | None = None,
               optimize: bool = True, watchdog_margin: int = 1000,
               packed: bool | None = None, rtl_dir: str | Path | None = None,
               build_args: Sequence[str] = (),
               ) -> list[CosimResult]:
    """Co-simulate several layers on the array ``hw`` in ONE simulator run.

    The arguments are :func:`t2c_sim.cosim.engine.cosimulate`'s; the DUT is our accelerator
    bound to ``hw``. At most :data:`MAX_TILES` runs per simulator process.
    """
    dut = default_dut(hw)
    pairs = [(item, None) if isinstance(item, LayerRecord) else item for item in layers]
    for rec, _ in pairs:
        dut.check(rec)
    return run_backdoor(dut, pairs, sim, build_root=build_root, waves=waves,
                        tiles=tiles, timeout_s=timeout_s, keep=keep, mutate=mutate,
                        optimize=optimize, watchdog_margin=watchdog_margin, packed=packed,
                        rtl_dir=rtl_dir, max_runs=MAX_TILES, build_args=build_args)
