"""The axi profile: registers over AXI4-Lite, operands and results in an AXI4 memory model.

Every GEMM of every layer becomes one *job*: a memory image (the operands placed as the DUT
file's ``operands`` declare, the output region filled with a seeded canary so that an unwritten
output cannot pass), and a register program (the ``registers`` writes with values computed from
the GEMM, the completion wait, the ``status`` reads, the ``after`` writes). The generated
harness (:mod:`t2c_sim.cosim.profiles.harness`) loads each job's image into the HDL memory
model in bulk, plays the program with an HDL AXI4-Lite master and dumps the output region:
no Python runs per beat or per register access.

Memory layout of one job (byte addresses; ``a(v) = align(v, memory.align)``): the operands in
the order the DUT file lists them, each at ``addr.<name>`` = ``a(end of the previous one)``
(the first at 0). A matrix (``x[P, K]``, ``w[C_out, K]``, ``y[P, C_out]``) is row-major, each
row of ``elem_bits`` elements (little-endian, two's complement) padded to ``row_align`` bytes
(``stride.<name>``); a vector (``bias``, ``m0``, ``sh``: ``[C_out]``) is one row.

An adapter may replace the declared layout (a DUT whose DMA reads packed words, e.g. our
accelerator's scratchpad words from :mod:`t2c_sim.export.iface`): ``axi_layout(op) -> (image
uint8[bytes], {name: (base, stride, bytes)})`` (the regions must include ``y``; the register
expressions see them as ``addr.<name>``) and ``axi_unpack(op, region uint8[bytes]) -> y[rows,
cols]`` (the ``y`` region's bytes as the DUT left them).

Cycles of a job: from the edge of the first register write's AW handshake to the edge that
samples the completion (the interrupt or done port high, or the poll read that matches), both
included; the DUT's model is ``cycles(op.shape(), params)`` for the memory latencies of the DUT
file (exact unless the DUT declares otherwise).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.expr import FUNCS
from t2c_sim.cosim.gemm import GemmOp, gemm_ops
from t2c_sim.cosim.profiles.backdoor import find_wave
from t2c_sim.cosim.profiles.harness import (
    axi_harness,
    build_generated,
    depth_tier,
    release_run_dir,
    write_harness,
)
from t2c_sim.cosim.result import CosimResult, TileResult
from t2c_sim.errors import ConfigError, RecordError, SimulationError, UnsupportedLayerError
from t2c_sim.export.hexfile import read_memh_bytes, unpack_beats, write_memh, write_memh_bytes
from t2c_sim.record import LayerRecord

__all__ = ["run_axi", "Job", "layout", "program", "TB_MODULE"]

log = logging.getLogger(__name__)

TB_MODULE = Path(__file__).resolve().parents[1] / "tb_frames.py"
MODELS = ("prof_axil_master.v", "t2c_axi_mem.v")
OP_END, OP_WRITE, OP_READ, OP_POLL, OP_WAIT = 0, 1, 2, 3, 4
MAX_JOBS = 1 << 16
MAX_PROG = 1 << 20


@dataclass
class Job:
    """One GEMM of one layer as an AXI job."""

    layer: int
    op: GemmOp
    image: np.ndarray                 # uint8[words * word_bytes]: the memory image
    regions: dict[str, tuple[int, int, int]]   # name -> (base, stride, bytes)
    prog: list[tuple[int, int, int, int]]
    reads: dict[int, str] = field(default_factory=dict)   # program index -> status name
    predicted: int | None = None
    pc: int = 0

    @property
    def name(self) -> str:
        return f"layer {self.op.layer} job {self.op.index}"


def _operand(op: GemmOp, name: str) -> np.ndarray:
    """The operand as a 2-D matrix (vectors as one row)."""
    return {"x": op.x, "w": op.w, "bias": op.bias[None, :], "m0": op.m0[None, :],
            "sh": op.sh[None, :], "y": np.zeros((op.rows, op.cols), dtype=np.int64)}[name]


def layout(dut: Any, op: GemmOp, seed: int) -> tuple[np.ndarray, dict[str, tuple[int, int, int]]]:
    """The memory image of ``op`` and ``{operand: (base, stride, bytes)}`` (module docstring).

    Raises:
        UnsupportedLayerError: The operands do not fit the memory model's ``size``.
    """
    cfg = dut.spec.interface
    mem = cfg.memory
    wb = mem.data_bits // 8
    fn = getattr(dut.adapter, "axi_layout", None)
    if callable(fn):
        return _adapter_layout(dut, op, fn, wb)
    regions, cur = {}, 0
    for o in cfg.operands:
        a = _operand(op, o.name)
        eb = o.elem_bits // 8
        stride = FUNCS["align"](a.shape[1] * eb, o.row_align)
        base = FUNCS["align"](cur, mem.align)
        regions[o.name] = (base, stride, stride * a.shape[0])
        cur = base + stride * a.shape[0]
    end = FUNCS["align"](max(cur, 1), wb)
    if end > mem.size:
        raise UnsupportedLayerError(f"cannot run on DUT {dut.name}: its operands need {end} bytes "
                                    f"of memory, the model has {mem.size} (interface.memory.size)",
                                    layer=op.layer)
    img = np.zeros(end, dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for o in cfg.operands:
        base, stride, size = regions[o.name]
        if o.name == "y":  # a canary: an output the DUT never writes cannot equal golden
            img[base:base + size] = rng.integers(0, 256, size=size, dtype=np.uint8)
            continue
        a = _operand(op, o.name)
        eb = o.elem_bits // 8
        b = a.astype(np.int64) & ((1 << o.elem_bits) - 1)
        raw = np.ascontiguousarray(b.astype("<u8")).view(np.uint8).reshape(a.shape[0], -1, 8)
        rows = np.zeros((a.shape[0], stride), dtype=np.uint8)
        rows[:, :a.shape[1] * eb] = raw[:, :, :eb].reshape(a.shape[0], -1)
        img[base:base + size] = rows.reshape(-1)
    return img, regions


def _adapter_layout(dut: Any, op: GemmOp, fn: Any, wb: int,
                    ) -> tuple[np.ndarray, dict[str, tuple[int, int, int]]]:
    """An adapter's memory image, checked: uint8 bytes within the model, a ``y`` region."""
    bad = ConfigError("the adapter's axi_layout() must return (uint8 bytes, {name: (base, stride, "
                      "bytes)}) with a 'y' region inside the image", file=str(dut.spec.file),
                      key="adapter")
    try:
        img, regions = fn(op)
    except (TypeError, ValueError):
        raise bad from None
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 1 or not isinstance(regions, dict) or "y" not in regions:
        raise bad
    regions = {str(k): tuple(int(v) for v in r) for k, r in regions.items()}
    if any(len(r) != 3 or r[0] < 0 or r[0] + r[2] > max(len(img), 1) for r in regions.values()):
        raise bad
    end = -(-len(img) // wb) * wb
    if end > dut.spec.interface.memory.size:
        raise UnsupportedLayerError(f"cannot run on DUT {dut.name}: its operands need {end} bytes "
                                    f"of memory, the model has {dut.spec.interface.memory.size} "
                                    "(interface.memory.size)", layer=op.layer)
    return np.concatenate([img, np.zeros(end - len(img), np.uint8)]), regions


def program(dut: Any, op: GemmOp, regions: dict[str, tuple[int, int, int]],
            ) -> tuple[list[tuple[int, int, int, int]], dict[int, str]]:
    """The register program of ``op``: ``[(op, addr, data, mask)]`` and which reads are status."""
    cfg = dut.spec.interface
    ns: dict[str, Any] = {**dut.params, **op.fields(), "layer": op.record or {},
                          "addr": {k: v[0] for k, v in regions.items()},
                          "stride": {k: v[1] for k, v in regions.items()},
                          "size": {k: v[2] for k, v in regions.items()}}
    m32 = 0xFFFFFFFF
    prog: list[tuple[int, int, int, int]] = []
    for r in cfg.registers:
        prog.append((OP_WRITE, r.addr.eval(ns) & m32, r.value.eval(ns) & m32, 0))
    if cfg.completion == "poll":
        a, mask, val = (e.eval(ns) & m32 for e in cfg.poll)
        prog.append((OP_POLL, a, val, mask))
    else:
        prog.append((OP_WAIT, 0, 0, 0))
    reads: dict[int, str] = {}
    if cfg.status_cycles is not None:
        reads[len(prog)] = "cycles"
        prog.append((OP_READ, cfg.status_cycles.eval(ns) & m32, 0, 0))
    if cfg.status_error is not None:
        reads[len(prog)] = "error"
        prog.append((OP_READ, cfg.status_error[0].eval(ns) & m32, 0,
                     cfg.status_error[1].eval(ns) & m32))
    for r in cfg.after:
        prog.append((OP_WRITE, r.addr.eval(ns) & m32, r.value.eval(ns) & m32, 0))
    prog.append((OP_END, 0, 0, 0))
    return prog, reads


def _jobs(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]],
          tiles: list[list[int] | None] | None, seed: int,
          ) -> tuple[list[list[GemmOp]], list[tuple[int, ...]], list[Job]]:
    layer_ops, shapes, jobs = [], [], []
    for li, (rec, x) in enumerate(pairs):
        ops, out_shape = gemm_ops(rec, x)
        layer_ops.append(ops)
        shapes.append(out_shape)
        want = None if tiles is None or tiles[li] is None else set(tiles[li])
        for i in want or ():
            if not 0 <= i < len(ops):
                raise SimulationError(f"job {i} is not one of the {len(ops)} jobs", layer=rec.name)
        for op in ops:
            if want is not None and op.index not in want:
                continue
            img, regions = layout(dut, op, seed + 7919 * len(jobs))
            prog, reads = program(dut, op, regions)
            pred = dut.op_cycles(op) if dut.model is not None else None
            jobs.append(Job(li, op, img, regions, prog, reads, pred))
    return layer_ops, shapes, jobs


def run_axi(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]], sim: str, *,
            build_root: str | Path, waves: bool = False,
            tiles: list[list[int] | None] | None = None, timeout_s: float | None = None,
            keep: bool = False, mutate: Callable[[Path], None] | None = None,
            optimize: bool = True, watchdog_margin: int = 1000, seed: int = 1,
            build_args: Sequence[str] = ()) -> list[CosimResult]:
    """Co-simulate ``pairs`` on an AXI DUT in one simulator process (see the module docstring)."""
    t0 = time.monotonic()
    cfg = dut.spec.interface
    wb = cfg.memory.data_bits // 8
    layer_ops, shapes, jobs = _jobs(dut, pairs, tiles, seed)
    layout_s = time.monotonic() - t0   # images and programs (host-side packing)
    n_prog = sum(len(j.prog) for j in jobs)
    if len(jobs) > MAX_JOBS or n_prog > MAX_PROG:
        raise UnsupportedLayerError(f"layer {', '.join(r.name for r, _ in pairs)}: {len(jobs)} "
                                    f"jobs ({n_prog} register operations) exceed one simulator "
                                    f"process ({MAX_JOBS} jobs, {MAX_PROG} operations)")
    harness = write_harness(axi_harness(dut), build_root, dut.name)
    depth = depth_tier(max(len(j.image) for j in jobs) // wb)   # beats of the largest image
    params = {"MEM_DEPTH": depth, "PROG_DEPTH": depth_tier(n_prog),
              "MAX_FRAMES": depth_tier(len(jobs), 64), **dut.params}
    info, run_dir = build_generated(dut, sim, harness, MODELS, params, build_root,
                                    name=pairs[0][0].name, waves=waves, optimize=optimize,
                                    build_args=build_args)
    t1 = time.monotonic()
    plan, prog = [len(jobs)], []
    for i, j in enumerate(jobs):
        j.pc = len(prog)
        prog += j.prog
        ybase, _, ysize = j.regions["y"]
        plan += [j.pc, len(j.image) // wb, ybase // wb, (ybase + ysize - 1) // wb]
        write_memh_bytes(run_dir / f"mem_{i}.hex", j.image.reshape(-1, wb), cfg.memory.data_bits)
    write_memh(run_dir / "prog.hex", [w for op in prog for w in op], 32)
    write_memh(run_dir / "plan.hex", plan, 32)
    prep_s = time.monotonic() - t1 + layout_s
    if mutate is not None:
        mutate(run_dir)
    limits = [int(2 * (j.predicted if j.predicted is not None else
                       100 * (len(j.image) // wb + len(j.prog)))) + watchdog_margin for j in jobs]
    if timeout_s is None:
        timeout_s = 120.0 + sum(limits) * (2e-4 if sim == "icarus" else 2e-5)
    payload = {"names": [j.name for j in jobs], "limits": limits,
               "period_ns": dut.spec.clock.period_ns,
               "expect_in": [len(j.prog) for j in jobs],
               "expect_out": [len(j.image) // wb for j in jobs],
               "in_what": "register operations", "out_what": "memory beats (image words)"}
    t2 = time.monotonic()
    simmod.run(info, TB_MODULE, test_dir=run_dir, payload=payload, timeout_s=timeout_s,
               waves=waves, plusargs=["+AXIL_PROG=prog.hex"])
    wall = time.monotonic() - t2
    out = _collect(dut, pairs, layer_ops, shapes, jobs, run_dir, depth * wb)
    wave = find_wave(run_dir, info.build_dir) if waves else None
    for r in out:
        r.build_dir, r.run_dir, r.wave_file, r.sim = info.build_dir, run_dir, wave, sim
        r.wall_s, r.build_s, r.prep_s = wall, info.build_s, prep_s
    release_run_dir(out, run_dir, keep or waves)
    log.info("%d layer(s) on %s (%s, axi): %d jobs, run %.2f s (total %.2f s)", len(pairs), sim,
             dut.name, len(jobs), wall, time.monotonic() - t0)
    return out


def _stats(run_dir: Path) -> tuple[dict[int, list[int]], dict[int, int], dict[int, dict[int, int]]]:
    """``frames.txt`` ({job: [first, last, counter, err, ops, beats]}, {job: bad address}) and
    ``reads.txt`` ({job: {program index: value}})."""
    p = run_dir / "frames.txt"
    if not p.is_file():
        raise SimulationError(f"the harness wrote no frames.txt in {run_dir}")
    frames: dict[int, list[int]] = {}
    memerr: dict[int, int] = {}
    for line in p.read_text().splitlines():
        f = line.split()
        if len(f) == 7 and all(re.fullmatch(r"-?\d+", v) for v in f):
            frames[int(f[0])] = [int(v) for v in f[1:]]
        elif len(f) == 3 and f[0] == "memerr" and f[1].isdigit() and f[2].isdigit():
            memerr[int(f[1])] = int(f[2])
    reads: dict[int, dict[int, int]] = {}
    rp = run_dir / "reads.txt"
    for line in (rp.read_text().splitlines() if rp.is_file() else []):
        f = line.split()
        if len(f) == 3 and all(v.isdigit() for v in f):
            reads.setdefault(int(f[0]), {})[int(f[1])] = int(f[2])
    return frames, memerr, reads


def _collect(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]],
             layer_ops: list[list[GemmOp]], shapes: list[tuple[int, ...]], jobs: list[Job],
             run_dir: Path, mem_bytes: int) -> list[CosimResult]:
    cfg = dut.spec.interface
    wb = cfg.memory.data_bits // 8
    yop = next((o for o in cfg.operands if o.name == "y"), None)
    unpack = getattr(dut.adapter, "axi_unpack", None)
    unpack = unpack if callable(unpack) else None
    if yop is None and unpack is None:
        raise ConfigError("an adapter with axi_layout() needs axi_unpack() (no 'y' operand is "
                          "declared)", file=str(dut.spec.file), key="adapter")
    frames, memerr, reads = _stats(run_dir)
    ys = [np.zeros((ops[0].rows if ops else 0, rec.c_out), dtype=np.int64)
          for ops, (rec, _) in zip(layer_ops, pairs)]
    accs = [np.zeros_like(y) for y in ys]
    has_acc = [False] * len(pairs)
    tiles: list[list[TileResult]] = [[] for _ in pairs]
    counters: list[dict[str, int]] = [{} for _ in pairs]
    for ji, j in enumerate(jobs):
        rec, op = pairs[j.layer][0], j.op
        if ji not in frames:
            raise SimulationError(f"{j.name}: never completed")
        first, last, _c, err, _ops, beats = frames[ji]
        counters[j.layer][f"mem_beats_{op.index}"] = beats   # R and W beats the DUT moved
        if err & 2:
            raise SimulationError(
                f"{j.name}: the DUT's AXI4 burst at address {memerr.get(ji, -1):#x} broke the "
                f"memory model's rules (INCR bursts of full {cfg.memory.data_bits}-bit beats, at "
                f"most 256, not crossing 4 KB, WLAST on the last beat, within the model's "
                f"{mem_bytes} bytes: the job's image)", layer=rec.name)
        if err & 1:
            raise SimulationError(f"{j.name}: a register access got an error response (SLVERR "
                                  f"or DECERR)", layer=rec.name)
        got = reads.get(ji, {})
        for pc, what in j.reads.items():
            v = got.get(j.pc + pc)
            if what == "error" and v is not None and v & j.prog[pc][3]:
                names = [n for i, n in enumerate(cfg.error_names) if v >> i & 1]
                raise SimulationError(f"{j.name}: the DUT's error register reads {v:#x}"
                                      + (f" ({', '.join(names)})" if names else ""),
                                      layer=rec.name)
            if what == "cycles" and v is not None:
                counters[j.layer][f"dut_cycles_{op.index}"] = v
        ybase, ystride, ysize = j.regions["y"]
        lo = ybase // wb
        try:
            raw = read_memh_bytes(run_dir / f"y_{ji}.hex", cfg.memory.data_bits,
                                  (ybase + ysize - 1) // wb - lo + 1).reshape(-1)
        except RecordError as e:
            raise SimulationError(f"{j.name}: output region: {e.detail}", file=e.file) from None
        region = raw[ybase - lo * wb:ybase - lo * wb + ysize]
        acc = None
        if unpack is not None:
            got = unpack(op, region)
            y, acc = got if isinstance(got, tuple) else (got, None)
            y = np.asarray(y, dtype=np.int64)
            for a in (y, acc):
                if a is not None and np.shape(a) != (op.rows, op.cols):
                    raise ConfigError(f"axi_unpack() returned {list(np.shape(a))}, expected "
                                      f"[{op.rows}, {op.cols}] (y, or a tuple (y, acc))",
                                      file=str(dut.spec.file), key="adapter")
            if acc is not None:
                accs[j.layer][:, op.c0:op.c0 + op.cols] = acc
        else:
            rows = region.reshape(op.rows, ystride)
            eb = yop.elem_bits // 8
            y = unpack_beats(rows[:, :op.cols * eb].reshape(op.rows * op.cols, eb),
                             [yop.elem_bits], op.y_signed)
        ys[j.layer][:, op.c0:op.c0 + op.cols] = y.reshape(op.rows, op.cols)
        has_acc[j.layer] = has_acc[j.layer] or acc is not None
        measured = last - first + 1
        tiles[j.layer].append(TileResult(op.index, op.group, 0, op.rows, op.c0, op.cols,
                                         measured, j.predicted, (measured,),
                                         None if j.predicted is None else (j.predicted,)))
    return [CosimResult(layer=rec.name, y=ys[li].reshape(shapes[li]),
                        acc=accs[li].reshape(shapes[li]) if has_acc[li] else None,
                        cycles=sum(t.cycles_measured for t in tiles[li]), tiles=tiles[li], sim="",
                        build_dir=run_dir, dut=dut.name, check_cycles=dut.exact,
                        extra={"layers_in_run": float(len(pairs)), **counters[li]})
            for li, (rec, _) in enumerate(pairs)]
