"""Build and run one of a target's benches: a cocotb testbench, or layers through the front door.

A :class:`~t2c_sim.closure.target.Bench` is one of two kinds:

* ``cocotb``: a cocotb module run against a toplevel built from the target's RTL (the unit
  testbenches of ``testbenches/`` and :mod:`t2c_sim.closure.tb_reset_idle`);
* ``frontdoor``: our accelerator's AXI front door (``rtl/t2c_axi_accel.v``: the AXI4-Lite
  registers, the DMA and the core). Its parameters are the Verilog parameters of
  ``t2c_axi_accel`` (the core's plus ``DATA_W``, ``BURST_LEN``, ``OUTSTANDING``), the memory
  model's latencies ``RD_LAT`` and ``WR_LAT`` and ``MODE``; its payload gives the seed.
  ``MODE`` 0: random layers through the front door's DUT (:func:`run_layers_frontdoor`,
  descriptors in memory), checked against the golden ``y`` and accumulators, the front-door
  cycle model, the ``CYCLES`` register and the memory's beat counts; 1: a one-run layer in
  direct mode (its descriptor written to the job registers), the outputs read back from
  memory against golden, ``STATUS``, ``ERR``, ``JOBS_DONE``, ``CYCLES`` and ``CORE_CYCLES``
  against the model; 2: faults: the memory answers SLVERR to a weight read, then to an
  accumulator write, and the command must stop with exactly that error flag, STATUS error, the
  interrupt raised and cleared; 3: the register map of docs/rtl.md read back (ID, VERSION,
  build parameters, every RW register with a seeded 32-bit value, a partial WSTRB write,
  START reading 0, SLVERR past the map), then commands the DMA or the core must refuse with
  their ERR flag; 4: resets: the one-run layer of MODE 1 reset in the middle of its load (no
  core write while the reset is held), then run again and checked as in MODE 1, then reset
  after it completed; after each reset every status register (``STATUS``, ``ERR``,
  ``IRQ_STATUS``, ``JOBS_DONE``, ``CYCLES``, ``CORE_CYCLES``) reads 0.

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
from t2c_sim.closure.target import Bench, Target
from t2c_sim.config import HwConfig
from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.axi_frontdoor import (
    ID_VALUE,
    REG_END,
    REGS,
    build_frontdoor,
    frontdoor_dut,
    run_commands,
    run_layers_frontdoor,
)
from t2c_sim.cosim.compare import cycle_mismatch
from t2c_sim.cosim.gemm import gemm_ops
from t2c_sim.cosim.run import hw_parameters
from t2c_sim.errors import ConfigError, MismatchError, SimulationError
from t2c_sim.estimate.frontdoor import (
    DESC_BYTES,
    DESC_FIELDS,
    Y_BITS,
    AxiConfig,
    command_cycles,
    frontdoor_cycles,
    layout,
)
from t2c_sim.export.hexfile import read_memh_bytes
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
            if k not in (*AXI_PARAMS, *RUN_PARAMS, "PACKED", "Y_BITS", "SH_BITS")}
    try:
        hw = HwConfig(**core)
        axi = AxiConfig(data_w=int(params["DATA_W"]), burst_len=int(params["BURST_LEN"]),
                        outstanding=int(params["OUTSTANDING"]),
                        rd_latency=int(params.get("RD_LAT", 4)),
                        wr_latency=int(params.get("WR_LAT", 4)))
    except (KeyError, TypeError) as e:
        raise ConfigError(f"front-door bench parameters: {e}", key="params") from None
    if params.get("MODE", 0) not in (0, 1, 2, 3, 4):
        raise ConfigError(f"MODE must be 0 (list), 1 (regs), 2 (faults), 3 (commands) or 4 "
                          f"(resets), got {params['MODE']}", key="params.MODE")
    mode = ("list", "regs", "faults", "commands", "resets")[int(params.get("MODE", 0))]
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
    core = {k: v for k, v in hw_parameters(hw, packed).items() if k != "SH_BITS"}
    return {**core, **{k: int(params[k]) for k in AXI_PARAMS}}


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
        kw = dict(sim=sim, build_root=build_root, timeout_s=timeout_s, rtl_dir=rtl_dir,
                  build_args=build_args)
        if mode == "faults":
            return _faults(recs[0], hw, axi, packed, **kw)
        if mode == "commands":
            return _commands(params, hw, axi, packed, int(pl.get("seed", 0)), **kw)
        if mode in ("regs", "resets"):
            return _direct(recs[2], hw, axi, packed, resets=mode == "resets", **kw)
        return _layers(recs, hw, axi, packed, **kw)
    info = simmod.build(sim, bench.top, target.sources(rtl_dir, bench.modules), dict(params),
                        build_root, build_args=build_args)
    res = simmod.run(info, bench.tb, payload={**pl, "params": dict(params)},
                     timeout_s=timeout_s)
    return res.parent


#: A command stopped by a bus error: STATUS error, IRQ_STATUS error, cleared by the W1C write.
_FAULT_STATUS, _FAULT_IRQ = 4, 2
#: A command that completed: STATUS done, IRQ_STATUS done.
_DONE_STATUS, _DONE_IRQ = 2, 1


def _layers(recs: Sequence[LayerRecord], hw: HwConfig, axi: AxiConfig, packed: bool, *,
            sim: str, build_root: str | Path, timeout_s: float, rtl_dir: str | Path | None,
            build_args: Sequence[str]) -> Path:
    """MODE 0: layers through the front door's DUT (see the module docstring)."""
    res = run_layers_frontdoor(recs, hw, sim, axi, build_root=build_root, rtl_dir=rtl_dir,
                               packed=packed, keep=True, timeout_s=timeout_s,
                               build_args=build_args)
    for rec, r in zip(recs, res):
        for what, got, want in (("y", r.y, rec.y), ("acc", r.acc, rec.acc)):
            if got is None or not np.array_equal(got, want):
                i = (0,) * want.ndim if got is None else \
                    tuple(int(v) for v in np.argwhere(got != want)[0])
                raise MismatchError(f"front door: layer {rec.name}: {what} differs at {i} "
                                    f"(expected {int(want[i])}, got "
                                    f"{'nothing' if got is None else int(got[i])})",
                                    layer=rec.name)
        cm = cycle_mismatch(r)
        if cm is not None:
            raise MismatchError(f"front door: {cm}", layer=rec.name)
        if len(gemm_ops(rec)) == 1:  # the CYCLES register and the bus beats of the command
            f = frontdoor_cycles(rec, hw, axi)
            got = (r.extra.get("dut_cycles_0"), r.extra.get("mem_beats_0"))
            want = (f.register, f.beats_read + f.beats_written)
            if got != want:
                raise MismatchError(f"front door: layer {rec.name}: (CYCLES register, memory "
                                    f"beats) = {got}, the model gives {want}", layer=rec.name)
    if res[0].run_dir is None:
        raise SimulationError("front door: the run directory was not kept")
    return res[0].run_dir


def _image(rec: LayerRecord, hw: HwConfig, axi: AxiConfig, packed: bool, build_root: str | Path
           ) -> tuple[Any, Any, np.ndarray, Any]:
    """``(dut, gemm op, memory image, layout)`` of a one-GEMM layer (the adapter's image)."""
    dut = frontdoor_dut(hw, axi, build_root=build_root, overrides={"PACKED": int(packed)})
    op = gemm_ops(rec)[0][0]
    img, _ = dut.adapter.axi_layout(op)
    return dut, op, img, layout(estimate.tile_plan(rec, hw), hw, axi)


def _direct(rec: LayerRecord, hw: HwConfig, axi: AxiConfig, packed: bool, *, sim: str,
            build_root: str | Path, timeout_s: float, rtl_dir: str | Path | None,
            build_args: Sequence[str], resets: bool = False) -> Path:
    """MODE 1: one run through the job registers; with ``resets`` MODE 4 (module docstring)."""
    dut, op, img, lay = _image(rec, hw, axi, packed, build_root)
    if len(lay.jobs) != 1:
        raise ConfigError(f"direct mode needs a one-run layer, {rec.name} has {len(lay.jobs)}",
                          key="params")
    desc = np.frombuffer(img[lay.desc_addr:lay.desc_addr + 4 * len(DESC_FIELDS)].tobytes(),
                         "<u4").tolist()
    beats = (lay.out_base // axi.bytes, lay.end // axi.bytes - 1, 0)
    writes = [[REGS["JOB_ROWS"], [*desc, 0, 0, 1]]]
    cmds = [{"name": "direct", "limit": 20000, "dump": list(beats), "writes": writes}]
    if resets:  # the outputs dumped come from the run after the first reset only
        cmds = [{"name": "reset while loading", "limit": 20000, "reset": "load",
                 "writes": writes}, {**cmds[0], "reset": "end"}]
    out = run_commands(hw, axi, sim, cmds, image=img.tobytes(), build_root=build_root,
                       timeout_s=timeout_s, rtl_dir=rtl_dir, packed=packed,
                       build_args=build_args)
    for c in out["commands"]:
        if "after_reset" not in c:
            continue
        if c["load_in_reset"] or any(c["after_reset"].values()):
            raise MismatchError(f"front door: reset after {c['name']!r}: {c['load_in_reset']} "
                                f"core write(s) while held; registers after it "
                                f"{c['after_reset']}, expected all 0", layer=rec.name)
    c = out["commands"][-1]
    want = (_DONE_STATUS, 0, _DONE_IRQ, 0, 1,
            command_cycles(lay.jobs, hw, axi, list_mode=False) - 2, estimate.cycles(rec, hw))
    got = (c["status"], c["err"], c["irq_status"], c["irq_after_clear"], c["jobs_done"],
           c["cycles"], c["core_cycles"])
    if got != want:
        raise MismatchError(f"front door (direct): layer {rec.name}: (STATUS, ERR, IRQ_STATUS, "
                            f"IRQ after clear, JOBS_DONE, CYCLES, CORE_CYCLES) = {got}, "
                            f"expected {want}", layer=rec.name)
    raw = read_memh_bytes(Path(out["run_dir"]) / "out0.hex", axi.data_w,
                          beats[1] - beats[0] + 1).reshape(-1)
    y, acc = dut.adapter.axi_unpack(op, raw)
    for what, g, w in (("y", y, rec.y), ("acc", acc, rec.acc)):
        if not np.array_equal(g.reshape(w.shape), w):
            raise MismatchError(f"front door (direct): layer {rec.name}: {what} differs from "
                                "golden", layer=rec.name)
    return Path(out["run_dir"])


def _faults(rec: LayerRecord, hw: HwConfig, axi: AxiConfig, packed: bool, *, sim: str,
            build_root: str | Path, timeout_s: float, rtl_dir: str | Path | None,
            build_args: Sequence[str]) -> Path:
    """MODE 2: SLVERR on a weight read, then on an accumulator write (module docstring)."""
    _, _, img, lay = _image(rec, hw, axi, packed, build_root)
    wgt = lay.jobs[min(3, len(lay.jobs) - 1)].wgt.addr
    acc = next(j for j in lay.jobs if j.acc.words).acc.addr
    cmds = [{"name": what, "limit": 100000, "err_window": [addr, addr + 8],
             "writes": [[REGS["DESC_ADDR"], [lay.desc_addr, len(lay.jobs), 1]]]}
            for what, addr in (("weight read", wgt), ("accumulator write", acc))]
    out = run_commands(hw, axi, sim, cmds, image=img.tobytes(), build_root=build_root,
                       timeout_s=timeout_s, rtl_dir=rtl_dir, packed=packed,
                       build_args=build_args)
    for cmd, err, c in zip(cmds, (0x100, 0x200), out["commands"]):
        got = (c["status"], c["err"], c["irq_status"], c["irq_after_clear"], c["prot_err"])
        want = (_FAULT_STATUS, err, _FAULT_IRQ, 0, 0)
        if got != want:
            raise MismatchError(f"front door: SLVERR on the {cmd['name']} at "
                                f"{cmd['err_window'][0]:#x}: (STATUS, ERR, IRQ_STATUS, IRQ after "
                                f"clear, protocol error) = ({', '.join(hex(v) for v in got)}), "
                                f"expected ({', '.join(hex(v) for v in want)})", layer=rec.name)
    return Path(out["run_dir"])


_ERR_DESC, _ERR_ZERO, _ERR_LOHI = 0x400, 0x001, 0x020


def _job_words(**kw: int) -> list[int]:
    """A legal one-run job (docs/rtl.md "Job fields") with ``kw`` changed."""
    f = dict(rows=2, groups=1, cols=2, a_signed=1, z_y=0, lo=-128 & 0xFFFFFFFF, hi=127, mode=0,
             first=1, last=1, act_addr=0, act_words=1, wgt_addr=0x40, wgt_words=1,
             ch_addr=0x80, ch_words=1, out_addr=0x100, out_words=2, acc_addr=0x140,
             acc_words=2)
    f.update(kw)
    return [f[n] for n in DESC_FIELDS]


def _commands(params: Mapping[str, int], hw: HwConfig, axi: AxiConfig, packed: bool,
              seed: int, *, sim: str, build_root: str | Path, timeout_s: float,
              rtl_dir: str | Path | None, build_args: Sequence[str]) -> Path:
    """The register map read back, then refused commands (see the module docstring)."""
    rng = np.random.default_rng(seed)
    chk: list[dict] = [{"op": "read", "addr": REGS["ID"], "want": ID_VALUE, "what": "ID"},
                       {"op": "read", "addr": REGS["VERSION"], "want": 1, "what": "VERSION"}]
    hwp = {**hw_parameters(hw, packed), "Y_BITS": Y_BITS,
           **{k: int(params[k]) for k in AXI_PARAMS}, "DESC_BYTES": DESC_BYTES}
    chk += [{"op": "read", "addr": REGS[f"HW_{k}"], "want": v, "what": f"HW_{k}"}
            for k, v in hwp.items() if f"HW_{k}" in REGS]
    rw = [f"JOB_{f.upper()}" for f in DESC_FIELDS] + ["DESC_ADDR", "DESC_COUNT"]
    for name in rw:
        v = int(rng.integers(0, 1 << 32))
        chk += [{"op": "write", "addr": REGS[name], "data": v},
                {"op": "read", "addr": REGS[name], "want": v, "what": name}]
    v = int(rng.integers(0, 1 << 32))  # one byte (WSTRB) of JOB_ROWS changes, the rest stays
    old = next(c["data"] for c in chk if c.get("addr") == REGS["JOB_ROWS"] and c["op"] == "write")
    chk += [{"op": "write", "addr": REGS["JOB_ROWS"], "data": v, "strb_bytes": [1, 1]},
            {"op": "read", "addr": REGS["JOB_ROWS"], "want": (old & ~0xFF00) | (v & 0xFF00),
             "what": "JOB_ROWS after a one-byte write"},
            {"op": "write", "addr": REGS["IRQ_EN"], "data": 0xFFFFFFFF},
            {"op": "read", "addr": REGS["IRQ_EN"], "want": 3, "what": "IRQ_EN (two bits)"},
            {"op": "read", "addr": REGS["START"], "want": 0, "what": "START reads 0"},
            {"op": "read", "addr": REG_END, "want": 0, "resp": 2, "what": "past the map"},
            {"op": "write_resp", "addr": REG_END + 4, "data": 1, "resp": 2,
             "what": "past the map"}]
    bank = hw.act_depth // hw.rows
    job = REGS["JOB_ROWS"]
    # (name, register writes, ERR, jobs done): refused by the DMA (descriptor) or the core
    cmds = [("act words beyond the bank", [[job, [*_job_words(act_words=bank + 1), 0, 0, 1]]],
             _ERR_DESC, 0),
            ("unaligned out address", [[job, [*_job_words(out_addr=0x104), 0, 0, 1]]],
             _ERR_DESC, 0),
            ("unaligned descriptor list", [[REGS["DESC_ADDR"], [0x4, 1, 1]]], _ERR_DESC, 0),
            ("zero rows", [[job, [*_job_words(rows=0), 0, 0, 1]]], _ERR_ZERO, 0),
            ("lo > hi", [[job, [*_job_words(lo=5, hi=4), 0, 0, 1]]], _ERR_LOHI, 0)]
    image = bytearray(0x200)  # channel words at 0x80: shifts 0 (legal)
    res = run_commands(hw, axi, sim, [{"name": n, "writes": w, "limit": 2000}
                                      for n, w, _, _ in cmds],
                       image=bytes(image), readback=chk, build_root=build_root,
                       timeout_s=timeout_s, rtl_dir=rtl_dir, packed=packed,
                       build_args=build_args)
    for (name, _, err, jobs), c in zip(cmds, res["commands"]):
        got = (c["err"], c["status"], c["irq_status"], c["jobs_done"], c["irq_after_clear"])
        want = (err, _FAULT_STATUS, _FAULT_IRQ, jobs, 0)
        if got != want:
            raise MismatchError(f"front door: command {name!r}: (ERR, STATUS, IRQ_STATUS, "
                                f"JOBS_DONE, IRQ after clear) = {got}, expected {want}")
    return Path(res["run_dir"])
