"""Run one MAC layer on the accelerator RTL (``rtl/t2c_accel_top.v``) and read the results back.

Plan, then execute:

1. :func:`to_gemm` checks that the array can run the record (else :class:`UnsupportedLayerError`
   naming the layer and the reason) and turns it into GEMM operands: linear rows are ``x``'s
   flattened leading dims, conv rows come from :func:`t2c_sim.golden.im2col` (one GEMM per conv
   group); ``K`` is padded to a multiple of ``hw.m`` with zero weights and the weights are
   re-compressed to the array's ``hw.n:hw.m``.
2. :func:`t2c_sim.estimate.tile_plan` cuts the GEMM into scratchpad-sized tiles (the same plan
   the cycle model uses); :func:`prepare` writes one set of bank files per tile
   (:mod:`t2c_sim.export.hexfile`) and ``plan.hex``.
3. One simulator run executes every tile: the harness ``hdl/t2c_harness.v`` loads the banks
   with ``$readmemh`` (zero simulation time), starts the run, waits for ``done`` and dumps the
   outputs with ``$writememh``; the cocotb module only starts tiles and runs the watchdog
   (``2 * predicted + 1000`` cycles per tile).
4. :func:`collect` parses the dumps (an X/Z digit raises :class:`SimulationError` naming the
   memory, word, row and channel) and reassembles ``y`` (and the raw accumulators).

Conversions and refusals: a record runs when its weights, padded along ``K`` to ``hw.m``,
satisfy ``hw.n:hw.m`` (so ``1:4`` and ``2:4`` records run on a ``2:4`` array, any legal
record runs on a dense ``m:m`` array of the same ``m``); otherwise it is refused naming the
first offending channel and group. Also refused: non-MAC ops, token-wise requant parameters,
operands wider than the array, ``acc_bits != hw.acc_bits`` (wrapping must agree), ``M0``
beyond ``hw.mult_bits``, ``sh > hw.shift_max``, ``z_y/lo/hi`` beyond 16 bits.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from t2c_sim.config import HwConfig, OpKind, RoundMode, RoundProfile
from t2c_sim.cosim import sim as simmod
from t2c_sim.errors import RecordError, SimulationError, SparsityError
from t2c_sim.estimate import Tile, TilePlan, tile_cycles, tile_plan
from t2c_sim.export.hexfile import pack_words, unpack_words, write_memh
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.sparse.nm import check_nm, compress

__all__ = ["Y_BITS", "UnsupportedLayerError", "TileResult", "CosimResult", "Gemm",
           "hw_parameters", "harness_sources", "build_accel", "to_gemm", "prepare", "collect",
           "run_layer", "run_layers", "check_supported"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "hdl" / "t2c_harness.v"
TB_MODULE = HERE / "tb_accel_layer.py"
RTL_MODULES = ("t2c_ram", "t2c_nm_pe", "t2c_requant", "t2c_pe_array", "t2c_accel_top")
TOPLEVEL = "t2c_harness"
Y_BITS = 16          # output / z_y / clamp width of the accelerator build
SH_BITS = 6
PLAN_WORDS = 12      # plan.hex words per tile (see hdl/t2c_harness.v)
MAX_TILES = 4096
OUT_MEM = "u_top.u_out.mem_q"
ACC_MEM = "u_top.g_accdbg.u_acc.mem_q"


class UnsupportedLayerError(RecordError):
    """The accelerator cannot run this record (the message names the layer and the reason)."""


@dataclass(frozen=True)
class TileResult(Tile):
    """One executed tile: its place in the layer (the planned :class:`Tile`) and its cycles."""

    cycles_measured: int
    cycles_predicted: int


@dataclass
class CosimResult:
    """What one co-simulated layer produced.

    Attributes:
        layer: Layer name.
        y: Outputs (int64) in the golden ``y``'s shape.
        acc: Raw accumulators in the same shape (read back from the debug memory).
        cycles: Sum of the measured cycle counters over the tiles.
        tiles: Per-tile results in execution order.
        sim: Simulator.
        build_dir: Simulator build directory.
        run_dir: Directory with the bank files, dumps and logs (None once cleaned up).
        wave_file: Waveform file when ``waves`` was requested.
        wall_s: Wall time of the simulator run (excludes the build and the host-side packing).
        build_s: Build time (0 when the build was reused).
        prep_s: Host-side time to lay out and write the bank files.
    """

    layer: str
    y: np.ndarray
    acc: np.ndarray | None
    cycles: int
    tiles: list[TileResult]
    sim: str
    build_dir: Path
    run_dir: Path | None = None
    wave_file: Path | None = None
    wall_s: float = 0.0
    build_s: float = 0.0
    prep_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def cycles_predicted(self) -> int:
        return sum(t.cycles_predicted for t in self.tiles)


@dataclass(frozen=True)
class Gemm:
    """GEMM operands of a layer on an array: ``cols[groups, P, K]``, compressed weights, plan."""

    rec: LayerRecord
    hw: HwConfig
    cols: np.ndarray
    values: np.ndarray
    indices: np.ndarray
    plan: TilePlan
    out_shape: tuple[int, ...]


# ------------------------------------------------------------------------------------ build
def hw_parameters(hw: HwConfig) -> dict[str, int]:
    """Verilog parameters of ``t2c_harness`` / ``t2c_accel_top`` for ``hw``."""
    return {"ROWS": hw.rows, "COLS": hw.cols, "N": hw.n, "M": hw.m, "A_BITS": hw.a_bits,
            "W_BITS": hw.w_bits, "ACC_BITS": hw.acc_bits, "MULT_BITS": hw.mult_bits,
            "SHIFT_MAX": hw.shift_max, "ACT_DEPTH": hw.act_depth, "W_DEPTH": hw.w_depth,
            "OUT_DEPTH": hw.out_depth, "CH_DEPTH": hw.ch_depth}


def harness_sources() -> list[Path]:
    """RTL files plus the simulation harness, in compile order."""
    return [*simmod.rtl_sources(*RTL_MODULES), HARNESS]


def build_accel(hw: HwConfig, sim: str = "verilator", build_root: str | Path = "build/sim", *,
                waves: bool = False, optimize: bool = False) -> simmod.BuildInfo:
    """Build the harness once per ``(sim, hw, waves, sources)`` (cached by :func:`sim.build`).

    Verilator gets ``--timing`` (the harness clock is ``always #5``), ``--no-public-flat-rw``
    (undoes the cocotb runner's ``--public-flat-rw``: only the harness signals the testbench
    touches are public, through metacomments; everything public runs several times slower);
    :func:`sim.build` adds ``--output-split 0`` to every Verilator build. ``optimize`` compiles
    the model with ``-O2`` (long runs, benchmarks) instead of the fast-to-build default.
    """
    args = []
    if sim == "verilator":
        args = ["--timing", "--no-public-flat-rw"]
        args += ["-CFLAGS", "-O2"] if optimize else []
    return simmod.build(sim, TOPLEVEL, harness_sources(), hw_parameters(hw), build_root,
                        waves=waves, build_args=args)


# ------------------------------------------------------------------------------------ plan
def _refuse(rec: LayerRecord, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(f"layer {rec.name}: cannot run on the accelerator: {why}")


def check_supported(rec: LayerRecord, hw: HwConfig) -> None:
    """Raise :class:`UnsupportedLayerError` unless ``hw`` can run ``rec`` (see module docstring)."""
    if rec.op not in MAC_OPS:
        raise _refuse(rec, f"{rec.op.value} is not a linear/conv2d layer (it runs on the host)")
    for f in ("w_q", "bias_eff", "M0", "sh"):
        if getattr(rec, f) is None:
            raise _refuse(rec, f"{f} is missing")
    if isinstance(rec.mode, RoundProfile):
        raise _refuse(rec, f"rounding profile {rec.mode.value} (the RTL requantizer has section-2 "
                           f"modes only: {', '.join(m.value for m in RoundMode)}); simulate golden "
                           f"only (--sim none) or make the records with a section-2 mode")
    if rec.bias_eff.ndim != 1 or rec.M0.ndim != 1 or rec.sh.ndim != 1:
        raise _refuse(rec, "token-wise [P, C_out] requantizer parameters (the array holds one "
                           "bias/M0/shift per channel)")
    if rec.a_bits > hw.a_bits or rec.w_bits > hw.w_bits:
        raise _refuse(rec, f"operands a{rec.a_bits}/w{rec.w_bits} are wider than the array's "
                           f"a{hw.a_bits}/w{hw.w_bits}")
    if rec.acc_bits != hw.acc_bits:
        raise _refuse(rec, f"acc_bits={rec.acc_bits} but the array accumulates in "
                           f"{hw.acc_bits} bits (wrapping would differ)")
    if int(rec.M0.max()) >= 1 << hw.mult_bits:
        raise _refuse(rec, f"M0 up to {int(rec.M0.max())} needs more than the array's "
                           f"{hw.mult_bits}-bit multiplier")
    if int(rec.sh.max()) > hw.shift_max:
        raise _refuse(rec, f"shift {int(rec.sh.max())} exceeds the array's shift_max "
                           f"{hw.shift_max}")
    ylo, yhi = -(1 << (Y_BITS - 1)), (1 << (Y_BITS - 1)) - 1
    for name in ("z_y", "lo", "hi"):
        v = int(getattr(rec, name))
        if not ylo <= v <= yhi:
            raise _refuse(rec, f"{name}={v} does not fit the {Y_BITS}-bit signed output path")


def to_gemm(rec: LayerRecord, hw: HwConfig, x: np.ndarray | None = None) -> Gemm:
    """Check ``rec`` against ``hw`` and build the GEMM operands and the tile plan.

    Raises:
        UnsupportedLayerError: The array cannot run the record.
        RecordError: No input (``x`` and ``rec.x_q`` both missing) or inconsistent shapes.
    """
    from t2c_sim.golden import im2col

    check_supported(rec, hw)
    x = rec.x_q if x is None else np.asarray(x, dtype=np.int64)
    if x is None:
        raise RecordError(f"layer {rec.name}: no input (give x or store x_q in the record)")
    if rec.op is OpKind.LINEAR:
        if x.ndim < 1 or x.shape[-1] != rec.c_in:
            raise RecordError(f"layer {rec.name}: input shape {x.shape} does not end in "
                              f"c_in={rec.c_in}")
        x2 = x.reshape(-1, rec.c_in)
        cols = np.zeros((1, x2.shape[0], rec.k), dtype=np.int64)
        cols[0, :, :rec.c_in] = x2
        out_shape = (*x.shape[:-1], rec.c_out)
    else:
        if x.ndim != 4 or x.shape[1:] != (rec.h, rec.w, rec.c_in):
            raise RecordError(f"layer {rec.name}: input shape {x.shape} is not "
                              f"[B, {rec.h}, {rec.w}, {rec.c_in}]")
        cols = im2col(rec, x)
        oh, ow = rec.out_hw
        out_shape = (x.shape[0], oh, ow, rec.c_out)
    plan = tile_plan(rec, hw, rows=cols.shape[1])
    pad = plan.k - rec.k
    w = rec.w_q
    if pad:
        cols = np.pad(cols, ((0, 0), (0, 0), (0, pad)))
        w = np.pad(w, ((0, 0), (0, pad)))
    try:
        check_nm(w, hw.n, hw.m, name="weights")
    except SparsityError as e:
        raise _refuse(rec, f"{rec.n}:{rec.m} weights do not fit the array's {hw.n}:{hw.m} "
                           f"({str(e).split(': ', 1)[-1]})") from None
    values, indices = compress(w, hw.n, hw.m)
    return Gemm(rec, hw, cols, values, indices, plan, out_shape)


def _banked(a: np.ndarray, nbanks: int, depth_rows: int) -> list[np.ndarray]:
    """Split ``a[items, ...]`` round-robin into ``nbanks`` arrays of ``depth_rows`` items (zero pad)."""
    out = []
    for b in range(nbanks):
        part = a[b::nbanks]
        if part.shape[0] < depth_rows:
            part = np.concatenate([part, np.zeros((depth_rows - part.shape[0], *a.shape[1:]),
                                                  dtype=a.dtype)])
        out.append(part)
    return out


def _write_tile(gm: Gemm, t, d: Path, gi: int) -> list[int]:
    """Write tile ``t``'s bank files (global tile number ``gi``) into ``d``; return its plan words."""
    rec, hw, g = gm.rec, gm.hw, gm.plan.g
    qr, qc = -(-t.rows // hw.rows), -(-t.cols // hw.cols)
    act = gm.cols[t.group, t.p0:t.p0 + t.rows].reshape(t.rows, g, hw.m)
    for r, bank in enumerate(_banked(act, hw.rows, qr)):
        words = pack_words(bank.reshape(qr * g, hw.m), hw.a_bits, rec.a_signed,
                           f"layer {rec.name} activations")
        write_memh(d / f"t{gi}_act{r}.hex", words, hw.m * hw.a_bits)
    sl = slice(t.c0, t.c0 + t.cols)
    vals = gm.values[sl].reshape(t.cols, g, hw.n)
    idx = gm.indices[sl].reshape(t.cols, g, hw.n)
    vw = hw.n * hw.w_bits
    for c, (vb, ib) in enumerate(zip(_banked(vals, hw.cols, qc), _banked(idx, hw.cols, qc))):
        v = pack_words(vb.reshape(qc * g, hw.n), hw.w_bits, True, f"layer {rec.name} weights")
        i = pack_words(ib.reshape(qc * g, hw.n), hw.idx_bits, False, f"layer {rec.name} indices")
        write_memh(d / f"t{gi}_wgt{c}.hex", [a | (b << vw) for a, b in zip(v, i)],
                   vw + hw.n * hw.idx_bits)
    ch = np.stack([rec.bias_eff[sl], rec.M0[sl], rec.sh[sl]], axis=1)
    for c, bank in enumerate(_banked(ch, hw.cols, qc)):
        b = pack_words(bank[:, 0], hw.acc_bits, True, f"layer {rec.name} bias_eff")
        m0 = pack_words(bank[:, 1], hw.mult_bits, False, f"layer {rec.name} M0")
        s = pack_words(bank[:, 2], SH_BITS, False, f"layer {rec.name} sh")
        write_memh(d / f"t{gi}_ch{c}.hex",
                   [x | (y << hw.acc_bits) | (z << (hw.acc_bits + hw.mult_bits))
                    for x, y, z in zip(b, m0, s)], hw.acc_bits + hw.mult_bits + SH_BITS)
    m32 = (1 << 32) - 1
    return [t.rows, g, t.cols, int(rec.a_signed), rec.z_y & m32, rec.lo & m32, rec.hi & m32,
            rec.mode.code, qr * g, qc * g, qc, t.rows * qc]


def prepare(gemms: list[Gemm], run_dir: Path, tiles: list[list[int] | None] | None = None,
            ) -> list[list[int]]:
    """Write ``plan.hex`` and the bank files of several layers' tiles into ``run_dir``.

    Tiles are numbered globally in layer order (layer ``i``'s tile ``j`` is
    ``offsets[i] + j``). ``tiles[i]`` selects layer ``i``'s tiles to run (default all).

    Returns:
        Per layer, the global numbers of the tiles to run, in order.
    """
    n_total = sum(len(g.plan.tiles) for g in gemms)
    if n_total > MAX_TILES:
        raise UnsupportedLayerError(f"layers {', '.join(g.rec.name for g in gemms)}: {n_total} "
                                    f"tiles exceed the harness capacity {MAX_TILES}")
    run_dir.mkdir(parents=True, exist_ok=True)
    plan_words = [n_total]
    out: list[list[int]] = []
    base = 0
    for li, gm in enumerate(gemms):
        want = None if tiles is None or tiles[li] is None else set(tiles[li])
        sel = []
        for t in gm.plan.tiles:
            if want is None or t.index in want:
                plan_words += _write_tile(gm, t, run_dir, base + t.index)
                sel.append(base + t.index)
            else:
                plan_words += [0] * PLAN_WORDS
        out.append(sel)
        base += len(gm.plan.tiles)
    write_memh(run_dir / "plan.hex", plan_words, 32)
    return out


# ------------------------------------------------------------------------------------ collect
_XZ = re.compile(r"[xXzZ]")


def _read_dump(path: Path, lanes: int, bits: int, what: str, layer: str, tile, cb: int,
               cols: int) -> np.ndarray:
    """Parse a ``$writememh`` dump into ``[words, lanes]``; X/Z raises naming memory and index."""
    if not path.is_file():
        raise SimulationError(f"layer {layer} tile {tile.index}: {path.name} was not written")
    words = []
    for line in path.read_text().splitlines():
        line = line.split("//", 1)[0].strip()
        if not line:
            continue
        if _XZ.search(line):
            addr = len(words)
            bitstr = "".join(c * 4 if c in "xXzZ" else f"{int(c, 16):04b}" for c in line)
            for lane in range(lanes):
                chunk = bitstr[max(0, len(bitstr) - (lane + 1) * bits):len(bitstr) - lane * bits]
                ch = (addr % cb) * lanes + lane
                if ch < cols and _XZ.search(chunk):
                    raise SimulationError(
                        f"layer {layer} tile {tile.index}: {what}[{addr}] lane {lane} is X/Z "
                        f"(row {tile.p0 + addr // cb}, channel {tile.c0 + ch}): {line}")
            line = _XZ.sub("0", line)  # X only in lanes past the tile's channels: unused
        words.append(int(line, 16))
    want = tile.rows * cb
    if len(words) != want:
        raise SimulationError(f"layer {layer} tile {tile.index}: {path.name} has {len(words)} "
                              f"words, expected {want}")
    return unpack_words(words, lanes, bits, True)


def collect(gm: Gemm, run_dir: Path, sel: list[int], base: int = 0,
            ) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Read the dumps of global tiles ``sel`` (layer tiles from ``base``): ``(y, acc, cycles)``.

    ``y`` and ``acc`` are ``[P, C_out]``; ``cycles`` maps the layer's tile index to its count.
    """
    rec, hw = gm.rec, gm.hw
    p = gm.plan.p
    y = np.zeros((p, rec.c_out), dtype=np.int64)
    acc = np.zeros((p, rec.c_out), dtype=np.int64)
    stats = {}
    tfile = run_dir / "tiles.txt"
    if not tfile.is_file():
        raise SimulationError(f"layer {rec.name}: the harness wrote no tiles.txt in {run_dir}")
    for line in tfile.read_text().split("\n"):
        f = line.split()
        if len(f) == 3:
            stats[int(f[0])] = (int(f[1]), int(f[2]))
    for gi in sel:
        i = gi - base
        t = gm.plan.tiles[i]
        if gi not in stats:
            raise SimulationError(f"layer {rec.name} tile {i}: never completed")
        err, _ = stats[gi]
        if err:
            raise SimulationError(f"layer {rec.name} tile {i}: accelerator error flags {err:#04x}")
        cb = -(-t.cols // hw.cols)
        for arr, name, mem, bits in ((y, "y", OUT_MEM, Y_BITS), (acc, "acc", ACC_MEM,
                                                                 hw.acc_bits)):
            lanes = _read_dump(run_dir / f"t{gi}_{name}.hex", hw.cols, bits, mem, rec.name, t,
                               cb, t.cols)
            arr[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = \
                lanes.reshape(t.rows, cb * hw.cols)[:, :t.cols]
    return y, acc, {gi - base: stats[gi][1] for gi in sel}


# ------------------------------------------------------------------------------------ run
def run_layer(rec: LayerRecord, hw: HwConfig, sim: str = "verilator", *,
              x: np.ndarray | None = None, build_root: str | Path = "build/sim",
              waves: bool = False, wave_tile: int | None = None,
              timeout_s: float | None = None, keep: bool = False) -> CosimResult:
    """Co-simulate one linear/conv layer on the accelerator RTL, all tiles in one simulator run.

    Args:
        rec: The layer (validated record; ``x_q`` is the input unless ``x`` is given).
        hw: Accelerator parameters (one build per distinct value and simulator).
        sim: ``"verilator"`` or ``"icarus"``.
        x: Input instead of ``rec.x_q`` (linear ``[..., C_in]``, conv ``[B, H, W, C_in]``).
        build_root: Where builds (and the run directories, under each build) live.
        waves: Record a waveform (FST on Verilator; the harness is built with tracing).
        wave_tile: With ``waves``, simulate only this tile (its outputs are returned; the
            other outputs stay 0).
        timeout_s: Wall-clock limit of the simulator run (default from the cycle model).
        keep: Keep the run directory (bank files, dumps, logs); always kept with waves.

    Returns:
        :class:`CosimResult`; compare ``y`` with the golden model via :func:`compare.compare`.

    Raises:
        UnsupportedLayerError: The array cannot run the record.
        SimulationError: Build failure, hang (watchdog or wall clock), error flags, X/Z output.
    """
    if wave_tile is not None and not waves:
        raise SimulationError(f"layer {rec.name}: wave_tile needs waves=True")
    return run_layers([(rec, x)], hw, sim, build_root=build_root, waves=waves,
                      tiles=None if wave_tile is None else [[wave_tile]], timeout_s=timeout_s,
                      keep=keep)[0]


def run_layers(layers: Sequence[LayerRecord | tuple[LayerRecord, np.ndarray | None]],
               hw: HwConfig, sim: str = "verilator", *, build_root: str | Path = "build/sim",
               waves: bool = False, tiles: list[list[int] | None] | None = None,
               timeout_s: float | None = None, keep: bool = False,
               mutate: Callable[[Path], None] | None = None,
               optimize: bool = False, watchdog_margin: int = 1000) -> list[CosimResult]:
    """Co-simulate several layers in ONE simulator run (one process start for all of them).

    Args:
        layers: Records, or ``(record, x)`` pairs.
        hw, sim, build_root, waves, timeout_s, keep: As for :func:`run_layer`.
        tiles: Per layer, the tile indices to run (``None``: all).
        mutate: Called with the run directory after the bank files are written and before the
            simulator starts (fault injection in tests: e.g. truncate a bank file).
        optimize: Build the Verilator model with ``-O2`` (see :func:`build_accel`).
        watchdog_margin: The per-tile watchdog is ``2 * predicted + watchdog_margin`` cycles.

    Returns:
        One :class:`CosimResult` per layer; ``wall_s`` is the shared run's wall time.
    """
    t0 = time.monotonic()
    pairs = [(item, None) if isinstance(item, LayerRecord) else item for item in layers]
    gemms = [to_gemm(rec, hw, x) for rec, x in pairs]
    if tiles is not None:
        for gm, sel in zip(gemms, tiles):
            for i in sel or ():
                if not 0 <= i < len(gm.plan.tiles):
                    raise SimulationError(f"layer {gm.rec.name}: tile {i} is not one of the "
                                          f"{len(gm.plan.tiles)} tiles")
    info = build_accel(hw, sim, build_root, waves=waves, optimize=optimize)
    runs = info.build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    first = re.sub(r"[^A-Za-z0-9_.-]+", "_", gemms[0].rec.name)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{first}-", dir=runs))
    t1 = time.monotonic()
    sels = prepare(gemms, run_dir, tiles)
    bases = np.cumsum([0] + [len(g.plan.tiles) for g in gemms]).tolist()
    order, names, pred = [], [], {}
    for gm, sel, base in zip(gemms, sels, bases):
        for gi in sel:
            pred[gi] = tile_cycles(gm.plan.tiles[gi - base], gm.plan.g, hw)
            order.append(gi)
            names.append(f"{gm.rec.name} tile {gi - base}")
    prep_s = time.monotonic() - t1
    if mutate is not None:
        mutate(run_dir)
    total = sum(pred.values())
    if timeout_s is None:  # generous: measured ~100 (Icarus) / ~140k (Verilator) cycles/s at 8x8
        pes = hw.rows * hw.cols
        timeout_s = 120.0 + total * (4e-4 * pes if sim == "icarus" else 5e-5 + 2e-6 * pes)
    payload = {"names": names, "tiles": order, "predicted": [pred[i] for i in order],
               "limits": [2 * pred[i] + watchdog_margin for i in order]}
    t2 = time.monotonic()
    simmod.run(info, TB_MODULE, test_dir=run_dir, payload=payload, timeout_s=timeout_s,
               waves=waves)
    wall = time.monotonic() - t2
    wave = None
    if waves:
        found = sorted([*run_dir.rglob("*.fst"), *run_dir.rglob("*.vcd"),
                        *info.build_dir.glob("*.fst"), *info.build_dir.glob("*.vcd")],
                       key=lambda p: p.stat().st_mtime)
        wave = found[-1] if found else None
    out = []
    for gm, sel, base in zip(gemms, sels, bases):
        y, acc, measured = collect(gm, run_dir, sel, base)
        res = [TileResult(t.index, t.group, t.p0, t.rows, t.c0, t.cols, measured[t.index],
                          pred[base + t.index])
               for t in (gm.plan.tiles[gi - base] for gi in sel)]
        for r in res:
            if r.cycles_measured != r.cycles_predicted:
                log.warning("layer %s tile %d: %d cycles measured, the cycle model predicts %d",
                            gm.rec.name, r.index, r.cycles_measured, r.cycles_predicted)
        out.append(CosimResult(layer=gm.rec.name, y=y.reshape(gm.out_shape),
                               acc=acc.reshape(gm.out_shape), cycles=sum(measured.values()),
                               tiles=res, sim=sim, build_dir=info.build_dir, run_dir=run_dir,
                               wave_file=wave, wall_s=wall, build_s=info.build_s, prep_s=prep_s,
                               extra={"layers_in_run": float(len(gemms))}))
    if not (keep or waves):
        shutil.rmtree(run_dir, ignore_errors=True)
        for r in out:
            r.run_dir = None
    log.info("%d layer(s) on %s: %d tiles, run %.2f s (total %.2f s)", len(gemms), sim,
             len(order), wall, time.monotonic() - t0)
    return out
