"""Build and run one of a target's benches: a cocotb testbench, or layers through the front door.

A :class:`~t2c_sim.closure.target.Bench` is one of two kinds:

* ``cocotb``: a cocotb module run against a toplevel built from the target's RTL (the unit
  testbenches of ``testbenches/`` and :mod:`t2c_sim.closure.tb_reset_idle`);
* ``frontdoor``: random layers co-simulated through the accelerator's AXI front door
  (``rtl/t2c_axi_accel.v``: the AXI4-Lite registers, the DMA and the core, with the memory
  model and harness of :mod:`t2c_sim.cosim.axi_frontdoor`), checked against the golden ``y``
  and accumulators and, per command, the front-door cycle model. Its parameters are the
  Verilog parameters of ``t2c_axi_accel`` (the core's plus ``DATA_W``, ``BURST_LEN``,
  ``OUTSTANDING``), the memory model's latencies ``RD_LAT`` and ``WR_LAT`` and ``MODE``
  (0: one command per layer with descriptors in memory, 1: one command per run through the
  job registers, 2: faults: the memory answers SLVERR to a weight read, then to an
  accumulator write, and the command must stop with exactly that error flag, STATUS error, the
  interrupt raised and cleared); its payload gives the seed.

:func:`build_bench` builds (a build failure raises :class:`~t2c_sim.errors.SimulationError`
before anything runs: a mutant that does not elaborate is a build error, not a kill);
:func:`run_bench` runs and returns the run directory (Verilator's ``coverage.dat`` is there
when the build had coverage flags), raising :class:`~t2c_sim.errors.MismatchError` on a wrong
result and :class:`~t2c_sim.errors.SimulationError` on a hang, a crash or an error flag.
Both take ``rtl_dir`` (a mutant's copy of the RTL) and ``build_args`` (coverage flags).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim import estimate
from t2c_sim.closure.codecov import merge
from t2c_sim.closure.target import Bench, Target
from t2c_sim.config import HwConfig
from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.axi_frontdoor import build_frontdoor, run_layers_frontdoor
from t2c_sim.cosim.run import hw_parameters
from t2c_sim.errors import ConfigError, MismatchError, SimulationError
from t2c_sim.estimate.frontdoor import AxiConfig, layout
from t2c_sim.record import LayerRecord
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

__all__ = ["build_bench", "run_bench", "bench_design_params", "frontdoor_case", "AXI_PARAMS",
           "RUN_PARAMS"]

#: The front door's own Verilog parameters (besides the core's, :func:`hw_parameters`).
AXI_PARAMS = ("DATA_W", "BURST_LEN", "OUTSTANDING")
#: Bench parameters that are not ``t2c_axi_accel``'s: memory latencies and the command mode.
RUN_PARAMS = ("RD_LAT", "WR_LAT", "MODE")


def frontdoor_case(params: Mapping[str, int], payload: Mapping[str, Any]
                   ) -> tuple[HwConfig, AxiConfig, bool, str, list[LayerRecord]]:
    """``(hw, axi, packed, mode, records)`` of a front-door bench run (deterministic in the seed).

    The layers: a linear layer K-split on the array (partial sums through memory), a conv
    layer with a rounding mode other than half-even, and a one-row unsigned linear layer.

    Raises:
        ConfigError: A parameter is missing or the mode is unknown (names the key).
    """
    core = {k.lower(): int(v) for k, v in params.items()
            if k not in (*AXI_PARAMS, *RUN_PARAMS, "PACKED", "Y_BITS")}
    try:
        hw = HwConfig(**core)
        axi = AxiConfig(data_w=int(params["DATA_W"]), burst_len=int(params["BURST_LEN"]),
                        outstanding=int(params["OUTSTANDING"]),
                        rd_latency=int(params.get("RD_LAT", 4)),
                        wr_latency=int(params.get("WR_LAT", 4)))
    except (KeyError, TypeError) as e:
        raise ConfigError(f"front-door bench parameters: {e}", key="params") from None
    if params.get("MODE", 0) not in (0, 1, 2):
        raise ConfigError(f"MODE must be 0 (list), 1 (regs) or 2 (faults), got "
                          f"{params['MODE']}", key="params.MODE")
    mode = ("list", "regs", "faults")[int(params.get("MODE", 0))]
    r = np.random.default_rng(int(payload.get("seed", 0)))
    n, m = hw.n, hw.m
    k = m * (hw.act_depth // hw.rows + 3)  # one group more than a bank holds: K-split
    recs = [random_linear_record(r, name="fd_fc_split", c_in=k, c_out=hw.cols + 1,
                                 rows=hw.rows + 1, n=n, m=m),
            random_conv_record(r, name="fd_conv", c_in=2, c_out=hw.cols, h=4, w=4, n=n, m=m,
                               mode="half_away"),
            random_linear_record(r, name="fd_fc_p1", c_in=2 * m, c_out=2, rows=1, n=n, m=m,
                                 a_signed=False, mode="floor", relu=True)]
    return hw, axi, bool(params.get("PACKED", 0)), mode, recs


def bench_design_params(bench: Bench, params: Mapping[str, int]) -> dict[str, int]:
    """The Verilog parameters of ``bench.top`` for a bench parameter set (what Yosys elaborates
    for the equivalence check): the set itself, or for the front door ``t2c_axi_accel``'s."""
    if bench.kind != "frontdoor":
        return dict(params)
    hw, _, packed, _, _ = frontdoor_case(params, {})
    return {**hw_parameters(hw, packed), **{k: int(params[k]) for k in AXI_PARAMS}}


def build_bench(target: Target, bench: Bench, params: Mapping[str, int],
                payload: Mapping[str, Any], *, sim: str, build_root: str | Path,
                rtl_dir: str | Path | None = None, build_args: Sequence[str] = ()) -> None:
    """Build what :func:`run_bench` will run (cached by key: a second call costs nothing)."""
    if bench.kind == "frontdoor":
        hw, axi, packed, _, _ = frontdoor_case(params, {**bench.payload, **payload})
        build_frontdoor(hw, axi, sim, build_root, packed=packed, rtl_dir=rtl_dir,
                        build_args=build_args)
        return
    simmod.build(sim, bench.top, target.sources(rtl_dir, bench.modules), dict(params),
                 build_root, build_args=build_args)


def run_bench(target: Target, bench: Bench, params: Mapping[str, int],
              payload: Mapping[str, Any], *, sim: str, build_root: str | Path,
              timeout_s: float, rtl_dir: str | Path | None = None,
              build_args: Sequence[str] = ()) -> Path:
    """Run one bench with ``params`` (see the module docstring); return its run directory."""
    pl = {**bench.payload, **payload}
    if bench.kind == "frontdoor":
        hw, axi, packed, mode, recs = frontdoor_case(params, pl)
        if mode == "faults":
            return _faults(recs[0], hw, axi, packed, sim=sim, build_root=build_root,
                           timeout_s=timeout_s, rtl_dir=rtl_dir, build_args=build_args)
        res = run_layers_frontdoor(recs, hw, sim, axi, build_root=build_root, mode=mode,
                                   keep=True, rtl_dir=rtl_dir, packed=packed,
                                   timeout_s=timeout_s, build_args=build_args)
        run_dir = res[0].run_dir
        if run_dir is None:
            raise SimulationError("front door: the run directory was not kept")
        for rec, r in zip(recs, res):
            for what, got, want in (("y", r.y, rec.y), ("acc", r.acc, rec.acc)):
                if not np.array_equal(got, want):
                    i = tuple(int(v) for v in np.argwhere(got != want)[0])
                    raise MismatchError(f"front door ({mode}): layer {rec.name}: {what} differs "
                                        f"at {i} (expected {int(want[i])}, got {int(got[i])})",
                                        layer=rec.name)
        return run_dir
    info = simmod.build(sim, bench.top, target.sources(rtl_dir, bench.modules), dict(params),
                        build_root, build_args=build_args)
    res = simmod.run(info, bench.tb, payload={**pl, "params": dict(params)},
                     timeout_s=timeout_s)
    return res.parent


#: A command stopped by a bus error: STATUS error, IRQ_STATUS error, cleared by the W1C write.
_FAULT_STATUS, _FAULT_IRQ = 4, 2


def _faults(rec: LayerRecord, hw: HwConfig, axi: AxiConfig, packed: bool, *, sim: str,
            build_root: str | Path, timeout_s: float, rtl_dir: str | Path | None,
            build_args: Sequence[str]) -> Path:
    """SLVERR on a weight read, then on an accumulator write (see the module docstring);
    returns the first run directory, with the coverage of both runs merged into it."""
    lay = layout(estimate.tile_plan(rec, hw), hw, axi)
    wgt = lay.jobs[min(3, len(lay.jobs) - 1)].wgt.addr
    acc = next(j for j in lay.jobs if j.acc.words).acc.addr
    dirs = []
    for what, addr, err in (("weight read", wgt, 0x100), ("accumulator write", acc, 0x200)):
        (r,) = run_layers_frontdoor([rec], hw, sim, axi, build_root=build_root, keep=True,
                                    err_window=(addr, addr + 8), check=False, rtl_dir=rtl_dir,
                                    packed=packed, timeout_s=timeout_s, build_args=build_args)
        (c,) = r.commands
        got = (c["status"], c["err"], c["irq_status"], c["irq_after_clear"])
        want = (_FAULT_STATUS, err, _FAULT_IRQ, 0)
        if got != want:
            raise MismatchError(f"front door: SLVERR on the {what} at {addr:#x}: (STATUS, ERR, "
                                f"IRQ_STATUS, IRQ_STATUS after clear) = "
                                f"({', '.join(hex(v) for v in got)}), expected "
                                f"({', '.join(hex(v) for v in want)})", layer=rec.name)
        if r.run_dir is None:
            raise SimulationError("front door: the run directory was not kept")
        dirs.append(r.run_dir)
    dats = [d / "coverage.dat" for d in dirs if (d / "coverage.dat").is_file()]
    if len(dats) > 1:
        merge(dats, dirs[0] / "coverage.dat")
    return dirs[0]
