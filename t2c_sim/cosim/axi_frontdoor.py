"""Run layers on the accelerator through its front door (``rtl/t2c_axi_accel.v``).

Plan, then execute, reusing the back door's planning and packing (:mod:`t2c_sim.cosim.run`):

1. :func:`t2c_sim.cosim.run.to_gemm` and the tile plan, :func:`t2c_sim.cosim.run.prepare` writes
   every run's bank files (the words :mod:`t2c_sim.export.hexfile` packs) and ``plan.hex``.
2. :func:`t2c_sim.estimate.frontdoor.layout` places each layer in memory; :func:`build_image`
   copies each bank file's words there (a word of ``W`` bits as ``ceil(W / DATA_W)`` beats, low
   bits first), writes one descriptor per run (the ``plan.hex`` fields plus the segment
   addresses) and writes the whole image as ``mem.hex`` (``$readmemh``: no Python per beat).
3. One simulator process (``hdl/t2c_axi_harness.v`` + ``tb_axi_frontdoor.py``) runs one command
   per layer: three register writes through cocotbext-axi's ``AxiLiteMaster`` (``DESC_ADDR``,
   ``DESC_COUNT``, ``START``), the interrupt, the status registers, a ``$writememh`` of the
   layer's results. ``mode="regs"`` instead writes each run's 20 job registers and ``START``
   (one command per run).
4. The results are cut back into the back door's dump files and read by
   :func:`t2c_sim.cosim.run.collect`, so ``y``, ``acc`` and the per-run cycle counters come out
   exactly as from :func:`t2c_sim.cosim.run.run_layers`; the measured front-door cycles (first
   register write to interrupt) are checked against :mod:`t2c_sim.estimate.frontdoor`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from t2c_sim.config import HwConfig
from t2c_sim.cosim import features
from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.run import (
    PLAN_WORDS,
    RTL_MODULES,
    Gemm,
    TileResult,
    check_capacity,
    collect,
    default_packed,
    hw_parameters,
    prepare,
    to_gemm,
)
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.estimate import frontdoor as fd
from t2c_sim.estimate.frontdoor import AxiConfig, Layout
from t2c_sim.export.hexfile import read_memh, write_memh
from t2c_sim.record import LayerRecord

__all__ = ["REGS", "ID_VALUE", "AXI_RTL_MODULES", "TOPLEVEL", "FrontDoorResult",
           "axi_parameters", "axi_sources", "build_frontdoor", "build_image",
           "run_layers_frontdoor", "run_commands", "err_names"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "hdl" / "t2c_axi_harness.v"
MEM_MODEL = HERE / "hdl" / "t2c_axi_mem.v"
TB_MODULE = HERE / "tb_axi_frontdoor.py"
TOPLEVEL = "t2c_axi_harness"
AXI_RTL_MODULES = ("t2c_axi_burst", "t2c_axi_rd", "t2c_axi_wr", "t2c_axi_dma", "t2c_axil_regs",
                   "t2c_axi_accel")
ID_VALUE = 0x54324341
#: Register byte addresses (rtl/t2c_axil_regs.v; docs/rtl.md "Front door (AXI)").
REGS = {"ID": 0x00, "VERSION": 0x04, "STATUS": 0x08, "ERR": 0x0C, "IRQ_EN": 0x10,
        "IRQ_STATUS": 0x14, "JOBS_DONE": 0x18, "CYCLES": 0x1C, "CORE_CYCLES": 0x20,
        **{f"HW_{n}": 0x30 + 4 * i for i, n in enumerate(
            ("ROWS", "COLS", "N", "M", "A_BITS", "W_BITS", "ACC_BITS", "MULT_BITS", "SHIFT_MAX",
             "ACT_DEPTH", "W_DEPTH", "OUT_DEPTH", "CH_DEPTH", "Y_BITS", "DATA_W", "BURST_LEN",
             "OUTSTANDING", "DESC_BYTES"))},
        **{f"JOB_{f.upper()}": 0x80 + 4 * i for i, f in enumerate(fd.DESC_FIELDS)},
        "DESC_ADDR": 0xD0, "DESC_COUNT": 0xD4, "START": 0xD8}
REG_END = 0xDC  # first unmapped address (SLVERR)
ERR_BITS = ("zero-size", "act-depth", "wgt-depth", "ch-depth", "out-depth", "lo>hi|run-mode",
            "shift>SHIFT_MAX", "requant-skew", "read-response", "write-response", "descriptor")
MIN_MEM_WORDS = 1 << 12


def err_names(err: int) -> str:
    """Names of the ``ERR`` register's set bits, comma-separated."""
    return ",".join(n for i, n in enumerate(ERR_BITS) if err >> i & 1) or "none"


@dataclass
class FrontDoorResult:
    """One layer through the front door.

    Attributes:
        layer: Layer name.
        y, acc: Outputs and accumulators in the golden ``y``'s shape (``acc`` None if not
            written back).
        cycles: Sum of the core's cycle counters over the runs (as the back door reports).
        tiles: Per tile, measured and predicted core cycles per chunk (:class:`run.TileResult`).
        frontdoor: Measured cycles from the first register write to the interrupt, summed over
            the layer's commands (one in list mode, one per run in register mode).
        predicted: The model's prediction of ``frontdoor`` (:mod:`t2c_sim.estimate.frontdoor`).
        commands: Per command, what the testbench read (status, err, registers, measured).
        sim, build_dir, run_dir, wall_s, build_s, prep_s: As :class:`run.CosimResult`.
    """

    layer: str
    y: np.ndarray
    acc: np.ndarray | None
    cycles: int
    tiles: list
    frontdoor: int
    predicted: int
    commands: list[dict]
    sim: str
    build_dir: Path
    run_dir: Path | None = None
    wall_s: float = 0.0
    build_s: float = 0.0
    prep_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ build
def axi_parameters(hw: HwConfig, axi: AxiConfig, packed: bool, mem_words: int) -> dict[str, int]:
    """Verilog parameters of ``t2c_axi_harness``."""
    return {**hw_parameters(hw, packed), "DATA_W": axi.data_w, "BURST_LEN": axi.burst_len,
            "OUTSTANDING": axi.outstanding, "MEM_WORDS": mem_words, "RD_LAT": axi.rd_latency,
            "WR_LAT": axi.wr_latency, "MAX_BURST": axi.max_burst, "QDEPTH": axi.qdepth}


def axi_sources(rtl_dir: str | Path | None = None) -> list[Path]:
    """RTL (the core and the front door; from ``rtl_dir`` if given), memory model, harness."""
    names = (*RTL_MODULES, *AXI_RTL_MODULES)
    if rtl_dir is None:
        srcs = simmod.rtl_sources(*names)
    else:
        srcs = [Path(rtl_dir) / f"{m}.v" for m in names]
        for p in srcs:
            if not p.is_file():
                raise SimulationError(f"{p}: RTL source not found (rtl_dir must hold "
                                      f"{', '.join(m + '.v' for m in names)})")
    return [*srcs, MEM_MODEL, HARNESS]


def build_frontdoor(hw: HwConfig, axi: AxiConfig, sim: str = "verilator",
                    build_root: str | Path = "build/sim", *, mem_words: int = MIN_MEM_WORDS,
                    packed: bool | None = None, optimize: bool = False, waves: bool = False,
                    rtl_dir: str | Path | None = None) -> simmod.BuildInfo:
    """Build the front-door harness once per key (as :func:`t2c_sim.cosim.run.build_accel`)."""
    args = []
    if sim == "verilator":
        args = ["--timing", "--no-public-flat-rw"] + (["-CFLAGS", "-O2"] if optimize else [])
    packed = default_packed(sim) if packed is None else packed
    return simmod.build(sim, TOPLEVEL, axi_sources(rtl_dir),
                        axi_parameters(hw, axi, packed, mem_words), build_root, waves=waves,
                        build_args=args)


# ------------------------------------------------------------------------------------ image
def _bank_words(path: Path, width: int, nbytes: int, words: int) -> np.ndarray:
    """A bank file's ``words`` words as little-endian bytes, each padded to ``nbytes``."""
    digits = max(1, -(-width // 4))
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if raw.size != words * (digits + 1):
        raise SimulationError(f"{path.name}: {raw.size} bytes, expected {words} words of "
                              f"{digits} hex digits", file=str(path))
    hexd = np.full((words, 2 * nbytes), ord("0"), dtype=np.uint8)
    hexd[:, 2 * nbytes - digits:] = raw.reshape(words, digits + 1)[:, :digits]
    try:
        be = np.frombuffer(bytes.fromhex(hexd.tobytes().decode()), dtype=np.uint8)
    except ValueError:
        raise SimulationError(f"{path.name}: not a hex file", file=str(path)) from None
    return be.reshape(words, nbytes)[:, ::-1]


def _place(img: np.ndarray, addr: int, words: np.ndarray) -> None:
    img[addr:addr + words.size] = words.reshape(-1)


def build_image(gemms: Sequence[Gemm], layouts: Sequence[Layout], run_dir: Path,
                axi: AxiConfig, acc: bool, bases: Sequence[int]) -> tuple[int, list[list[list[int]]]]:
    """Write ``mem.hex`` / ``mem_words.hex`` from the bank files in ``run_dir``.

    Every run's act, wgt (and, for a tile's first chunk, ch) words go to its segments (a shared
    segment is written once); descriptors hold the ``plan.hex`` fields and the addresses.

    Returns:
        ``(beats, descriptors)``: the image's beats and, per layer, each job's 20 words.

    Raises:
        SimulationError: A bank file or the plan disagrees with the layout.
    """
    hw = gemms[0].hw
    wb = fd.word_bits(hw)
    nb = {s: axi.beats(b) * axi.bytes for s, b in wb.items()}
    end = max(lay.end for lay in layouts)
    img = np.zeros(end, dtype=np.uint8)
    plan = read_memh(run_dir / "plan.hex")
    pw = PLAN_WORDS
    descs = []
    for gm, lay, base in zip(gemms, layouts, bases):
        done: set[int] = set()
        descs.append([])
        for j, job in enumerate(lay.jobs):
            gi = base + job.run
            w = plan[1 + pw * gi:1 + pw * (gi + 1)]
            want = (job.act.words, job.wgt.words, job.ch.words, job.out.words)
            if tuple(w[8:12]) != want:
                raise SimulationError(f"layer {gm.rec.name} run {job.run}: plan words "
                                      f"{w[8:12]} disagree with the layout {want}")
            for kind, seg in (("act", job.act), ("wgt", job.wgt), ("ch", job.ch)):
                if seg.words and seg.addr not in done:
                    _place(img, seg.addr, _bank_words(run_dir / f"t{gi}_{kind}.hex", wb[kind],
                                                      nb[kind], seg.words))
                    done.add(seg.addr)
            desc = [*w[:8], w[12] & 1, w[12] >> 1 & 1]
            for seg in (job.act, job.wgt, job.ch, job.out, job.acc if acc else fd.Segment()):
                desc += [seg.addr, seg.words]
            descs[-1].append(desc)
            _place(img, lay.desc_addr + fd.DESC_BYTES * j,
                   np.asarray(desc, dtype="<u4").view(np.uint8))
    return _write_memh_image(run_dir, img, axi), descs


def _write_memh_image(run_dir: Path, img: np.ndarray, axi: AxiConfig) -> int:
    """``mem.hex`` (one beat per line, beat 0 first) and ``mem_words.hex``; return the beats."""
    beats = img.size // axi.bytes
    lines = np.frombuffer(img.reshape(beats, axi.bytes)[:, ::-1].tobytes().hex().encode(),
                          dtype=np.uint8).reshape(beats, 2 * axi.bytes)
    out = np.full((beats, 2 * axi.bytes + 1), ord("\n"), dtype=np.uint8)
    out[:, :-1] = lines
    (run_dir / "mem.hex").write_bytes(out.tobytes())
    write_memh(run_dir / "mem_words.hex", [beats], 32)
    return beats


def _split_results(gm: Gemm, lay: Layout, run_dir: Path, dump: Path, axi: AxiConfig,
                   base: int, acc: bool) -> None:
    """Cut a layer's ``out<i>.hex`` into the back door's ``t<run>_y.hex`` / ``_acc.hex`` files."""
    hw = gm.hw
    wb = fd.word_bits(hw)
    raw = None
    if dump.is_file():
        data = dump.read_bytes()
        if b"/" in data:  # Icarus starts a $writememh with an address comment
            data = b"".join(ln + b"\n" for ln in data.splitlines()
                            if ln.strip() and not ln.lstrip().startswith(b"//"))
        raw = np.frombuffer(data, dtype=np.uint8)
    ll = 2 * axi.bytes + 1
    nbeats = (lay.end - lay.out_base) // axi.bytes
    if raw is None or raw.size != nbeats * ll:
        raise SimulationError(f"layer {gm.rec.name}: {dump.name} missing or not {nbeats} beats")
    text = raw.reshape(nbeats, ll)[:, :-1]
    for job in lay.jobs:
        for kind, seg in (("y", job.out), ("acc", job.acc)):
            mk = "out" if kind == "y" else "acc"
            path = run_dir / f"t{base + job.run}_{kind}.hex"
            if kind == "acc" and not acc and job.out.words:
                words = job.out.words
                digits = -(-wb["acc"] // 4)
                path.write_bytes((b"0" * digits + b"\n") * words)
                continue
            if not seg.words:
                continue
            k = axi.beats(wb[mk])
            b0 = (seg.addr - lay.out_base) // axi.bytes
            beats = text[b0:b0 + seg.words * k]
            xz = np.isin(beats, np.frombuffer(b"xXzZ", dtype=np.uint8)).any(axis=1)
            if xz.any():
                i = int(np.argmax(xz))
                raise SimulationError(
                    f"layer {gm.rec.name} tile {job.tile}: {mk} word {i // k} (memory beat "
                    f"{b0 + i}, address {seg.addr + i * axi.bytes:#x}) was never written by "
                    f"the DMA (X in {dump.name})")
            digits = -(-wb[mk] // 4)
            words = beats.reshape(seg.words, k, 2 * axi.bytes)[:, ::-1].reshape(seg.words, -1)
            out = np.full((seg.words, digits + 1), ord("\n"), dtype=np.uint8)
            out[:, :digits] = words[:, words.shape[1] - digits:]
            path.write_bytes(out.tobytes())


# ------------------------------------------------------------------------------------ run
def _commands(gm: Gemm, lay: Layout, descs: list[list[int]], axi: AxiConfig, mode: str,
              base: int, dump_id: int, err_window: tuple[int, int] | None,
              ) -> tuple[list[dict], int]:
    """The testbench commands of one layer and their predicted front-door cycles."""
    hw = gm.hw
    last_beat = lay.end // axi.bytes - 1
    dump = [lay.out_base // axi.bytes, last_beat, dump_id]
    cmds, total = [], 0
    if mode == "list":
        cmd = fd.command_cycles(lay.jobs, hw, axi, desc_addr=lay.desc_addr)
        pred = 2 * fd.LITE_WRITE_CYCLES + cmd
        cmds.append({"name": f"layer {gm.rec.name}", "run_base": base,
                     "writes": [[REGS["DESC_ADDR"], [lay.desc_addr, len(lay.jobs), 1]]],
                     "predicted": pred, "command": cmd, "limit": 2 * pred + 10000,
                     "err_window": err_window, "dump": dump, "jobs": len(lay.jobs)})
        return cmds, pred
    for j, job in enumerate(lay.jobs):
        cmd = fd.command_cycles([job], hw, axi, list_mode=False)
        pred = 22 * fd.LITE_WRITE_CYCLES + cmd
        total += pred
        cmds.append({"name": f"layer {gm.rec.name} run {job.run}", "run_base": base + job.run,
                     "writes": [[REGS["JOB_ROWS"], [*descs[j], 0, 0, 1]]],
                     "predicted": pred, "command": cmd, "limit": 2 * pred + 10000,
                     "err_window": err_window, "jobs": 1,
                     "dump": dump if j == len(lay.jobs) - 1 else None})
    return cmds, total


def _simulate(info: simmod.BuildInfo, run_dir: Path, commands: list[dict],
              readback: list[dict] | None, timeout_s: float) -> dict:
    """Run the testbench on ``run_dir`` (which holds the image); return ``results.json``."""
    payload = {"regs": REGS, "irq_en": 3, "commands": commands, "readback": readback or []}
    simmod.run(info, TB_MODULE, test_dir=run_dir, payload=payload, timeout_s=timeout_s)
    return json.loads((run_dir / "results.json").read_text())


def run_commands(hw: HwConfig, axi: AxiConfig, sim: str, commands: list[dict], *,
                 image: bytes = b"", readback: list[dict] | None = None,
                 build_root: str | Path = "build/sim", timeout_s: float = 300.0,
                 rtl_dir: str | Path | None = None) -> dict:
    """Run raw register commands against a memory image (register-level tests).

    Args:
        hw, axi, sim, build_root, rtl_dir: As :func:`run_layers_frontdoor`.
        commands: Testbench commands (``name``, ``writes``, ``limit``, optional ``run_base``,
            ``err_window``, ``dump``; see ``tb_axi_frontdoor.py``).
        image: Memory contents (little-endian bytes from address 0).
        readback: Register checks run first (``tb_axi_frontdoor.readback``).

    Returns:
        The testbench's results: ``{"commands": [...], "readback": [failures]}``.
    """
    img = np.frombuffer(image, dtype=np.uint8)
    pad = -img.size % axi.bytes
    img = np.concatenate([img, np.zeros(pad, dtype=np.uint8)])
    beats = img.size // axi.bytes
    info = build_frontdoor(hw, axi, sim, build_root,
                           mem_words=max(MIN_MEM_WORDS, 1 << max(0, beats - 1).bit_length()),
                           rtl_dir=rtl_dir)
    runs = info.build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="cmds-", dir=runs))
    _write_memh_image(run_dir, img, axi)
    cmds = [{"run_base": 0, "err_window": None, "dump": None, **c} for c in commands]
    return _simulate(info, run_dir, cmds, readback, timeout_s)


def run_layers_frontdoor(layers: Sequence[LayerRecord | tuple[LayerRecord, np.ndarray | None]],
                         hw: HwConfig, sim: str = "verilator", axi: AxiConfig | None = None, *,
                         build_root: str | Path = "build/sim", mode: str = "list",
                         acc: bool = True, keep: bool = False,
                         err_window: tuple[int, int] | None = None,
                         rtl_dir: str | Path | None = None, optimize: bool = False,
                         packed: bool | None = None, timeout_s: float | None = None,
                         check: bool = True) -> list[FrontDoorResult]:
    """Co-simulate layers through the front door, all in ONE simulator process.

    Args:
        layers: Records, or ``(record, x)`` pairs (as :func:`t2c_sim.cosim.run.run_layers`).
        hw: The array.
        sim: ``"verilator"`` or ``"icarus"``.
        axi: Bus and memory timing (default :class:`AxiConfig`).
        build_root: Where builds and run directories live.
        mode: ``"list"`` (one command per layer: descriptors in memory) or ``"regs"`` (one
            command per run through the job registers).
        acc: Write the accumulators back too (``FrontDoorResult.acc``).
        keep: Keep the run directory.
        err_window: Memory bytes ``[lo, hi)`` that answer SLVERR (fault injection; with
            ``check=False`` the error flags are returned in ``commands``, not raised).
        rtl_dir: Build this copy of the RTL (a mutant in a test).
        optimize: Verilator ``-O2``.
        packed: PE array implementation (``None``: the simulator's fast one).
        timeout_s: Wall-clock limit of the simulator (default from the model).
        check: Raise on error flags, a missing interrupt, or cycles that differ from the model.

    Raises:
        UnsupportedLayerError: The array cannot run a record.
        SimulationError: Build failure, hang, error flags, unwritten results.
        MismatchError: Measured cycles differ from the model (``check``).
    """
    if mode not in ("list", "regs"):
        raise SimulationError(f"front door: unknown mode {mode!r} (expected 'list' or 'regs')")
    axi = axi or AxiConfig()
    t0 = time.monotonic()
    pairs = [(item, None) if isinstance(item, LayerRecord) else item for item in layers]
    gemms = [to_gemm(rec, hw, x) for rec, x in pairs]
    check_capacity(gemms)
    layouts, pos = [], 0
    for gm in gemms:
        lay = fd.layout(gm.plan, hw, axi, base=pos, acc=acc,
                        rowpar=bool(gm.mode & features.ROWPAR))
        layouts.append(lay)
        pos = lay.end
    beats = pos // axi.bytes
    mem_words = max(MIN_MEM_WORDS, 1 << (beats - 1).bit_length())
    info = build_frontdoor(hw, axi, sim, build_root, mem_words=mem_words, packed=packed,
                           optimize=optimize, rtl_dir=rtl_dir)
    runs = info.build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    first = re.sub(r"[^A-Za-z0-9_.-]+", "_", gemms[0].rec.name)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{first}-", dir=runs))
    t1 = time.monotonic()
    prepare(gemms, run_dir)
    bases = np.cumsum([0] + [g.plan.runs for g in gemms]).tolist()
    _, descs = build_image(gemms, layouts, run_dir, axi, acc, bases)
    commands, preds = [], []
    for i, (gm, lay, base) in enumerate(zip(gemms, layouts, bases)):
        cmds, pred = _commands(gm, lay, descs[i], axi, mode, base, i, err_window)
        commands.append(cmds)
        preds.append(pred)
    prep_s = time.monotonic() - t1
    flat = [c for cs in commands for c in cs]
    if timeout_s is None:
        pes = hw.rows * hw.cols
        total = sum(preds)
        timeout_s = 120.0 + total * (6e-5 * pes if sim == "icarus" else 1e-4 + 3e-6 * pes)
    t2 = time.monotonic()
    res = _simulate(info, run_dir, flat, None, timeout_s)["commands"]
    wall = time.monotonic() - t2
    out, k = [], 0
    for i, (gm, lay, base, cmds) in enumerate(zip(gemms, layouts, bases, commands)):
        got = res[k:k + len(cmds)]
        k += len(cmds)
        measured = sum(c["measured"] for c in got)
        bad = [c for c in got if c["err"] or not c["status"] & 2]
        if bad and check:
            c = bad[0]
            raise SimulationError(f"{c['name']}: front door reported ERR={c['err']:#05x} "
                                  f"({err_names(c['err'])}), STATUS={c['status']:#x}, "
                                  f"{c['jobs_done']} of {cmds[0]['jobs']} jobs done")
        if bad:
            out.append(FrontDoorResult(gm.rec.name, np.zeros(gm.out_shape, np.int64), None, 0,
                                       [], measured, preds[i], got, sim, info.build_dir,
                                       run_dir, wall, info.build_s, prep_s))
            continue
        _split_results(gm, lay, run_dir, run_dir / f"out{i}.hex", axi, base, acc)
        y, accv, cyc = collect(gm, run_dir, list(range(len(gm.plan.tiles))), base)
        tiles = []
        for t in gm.plan.tiles:
            want = tuple(j.core_cycles for j in lay.jobs if j.tile == t.index)
            tiles.append(TileResult(t.index, t.group, t.p0, t.rows, t.c0, t.cols,
                                         sum(cyc[t.index]), sum(want), cyc[t.index], want))
        if check:
            for c, cmd in zip(got, cmds):
                if c["measured"] != cmd["predicted"] or c["cycles"] != cmd["command"] - 2:
                    raise MismatchError(
                        f"{c['name']}: front-door cycles measured {c['measured']} (CYCLES "
                        f"register {c['cycles']}), the model predicts {cmd['predicted']} "
                        f"({cmd['command'] - 2})")
            for r in tiles:
                if r.chunks_measured != r.chunks_predicted:
                    raise MismatchError(f"layer {gm.rec.name} tile {r.index}: core cycles "
                                        f"{list(r.chunks_measured)}, the model predicts "
                                        f"{list(r.chunks_predicted)}")
        out.append(FrontDoorResult(
            gm.rec.name, gm.unflatten(y), gm.unflatten(accv) if acc else None,
            sum(r.cycles_measured for r in tiles), tiles, measured, preds[i], got, sim,
            info.build_dir, run_dir, wall, info.build_s, prep_s,
            extra={"layers_in_run": float(len(gemms)), "mem_beats": float(beats)}))
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
        for r in out:
            r.run_dir = None
    log.info("%d layer(s) through the front door on %s: run %.2f s (total %.2f s)", len(gemms),
             sim, wall, time.monotonic() - t0)
    return out

