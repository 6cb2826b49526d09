"""Run one MAC layer on the accelerator RTL (``rtl/t2c_accel_top.v``) and read the results back.

Plan, then execute:

1. :func:`to_gemm` checks that the array can run the record (else :class:`UnsupportedLayerError`
   naming the layer and the reason) and turns it into GEMM operands: linear rows are ``x``'s
   flattened leading dims, conv rows come from :func:`t2c_sim.golden.im2col` (one GEMM per conv
   group); ``K`` is padded to a multiple of ``hw.m`` with zero weights and the weights are
   re-compressed to the array's ``hw.n:hw.m``.
2. :func:`t2c_sim.estimate.tile_plan` cuts the GEMM into scratchpad-sized tiles and, when one
   dot product is longer than a bank, into K-chunks (the same plan the cycle model uses). Each
   (tile, chunk) is one accelerator run: the first chunk starts from ``bias_eff``, the next ones
   continue from the partial sums in the accumulator memory, the last one requantizes.
   :func:`prepare` writes one set of memory files per run (:mod:`t2c_sim.export.hexfile`) and
   ``plan.hex``.
3. One simulator process executes every run: the harness ``hdl/t2c_harness.v`` loads the
   memories with ``$readmemh`` (zero simulation time), starts the run, waits for ``done`` and
   dumps the outputs with ``$writememh`` after a tile's last run; the cocotb module only starts
   runs and runs the watchdog (``2 * predicted + 1000`` cycles per run).
4. :func:`collect` parses the dumps (an X/Z digit raises :class:`SimulationError` naming the
   memory, word, row and channel) and reassembles ``y`` (and the raw accumulators).

Conversions and refusals: a record runs when its weights, padded along ``K`` to ``hw.m``,
satisfy ``hw.n:hw.m`` (so ``1:4`` and ``2:4`` records run on a ``2:4`` array, any legal
record runs on a dense ``m:m`` array of the same ``m``); otherwise it is refused naming the
first offending channel and group. Activation x activation matmuls (``Q @ K^T``, ``attn @ V``)
run dense on any array built with operand zero points, rounding profiles and token-wise
``[P, C_out]`` parameters on builds with those features (:mod:`t2c_sim.cosim.features`, which
names the missing feature otherwise). Also refused: other ops, operands wider than the array,
``acc_bits != hw.acc_bits`` (wrapping must agree), ``M0`` beyond ``hw.mult_bits``,
``sh > hw.shift_max``, ``z_y/lo/hi`` beyond 16 bits, and sizes beyond the plan's bounds
(:data:`t2c_sim.estimate.MAX_PLAN_RUNS` runs per layer, :data:`MAX_TILES` runs per simulator
process).

The PE array has two implementations of the same function (``rtl/t2c_pe_array.v``): PE
instances, fastest on Verilator, and lane-packed columns, ~10x faster on Icarus. ``packed=None``
(the default everywhere) picks the fast one for the simulator.
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

from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim import features
from t2c_sim.cosim import sim as simmod
from t2c_sim.errors import RecordError, SimulationError, SparsityError, UnsupportedLayerError
from t2c_sim.estimate import Tile, TilePlan, tile_cycles, tile_plan
from t2c_sim.export.hexfile import pack_limbs, read_memh_fields, write_memh, write_memh_limbs
from t2c_sim.numerics import check_range
from t2c_sim.record import LayerRecord
from t2c_sim.sparse.nm import check_nm, compress

__all__ = ["Y_BITS", "MAX_TILES", "UnsupportedLayerError", "TileResult", "CosimResult", "Gemm",
           "hw_parameters", "harness_sources", "build_accel", "to_gemm", "prepare", "collect",
           "run_layer", "run_layers", "check_supported", "check_capacity", "run_index"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "hdl" / "t2c_harness.v"
TB_MODULE = HERE / "tb_accel_layer.py"
RTL_MODULES = ("t2c_ram", "t2c_nm_pe", "t2c_requant", "t2c_pe_array", "t2c_accel_top")
TOPLEVEL = "t2c_harness"
Y_BITS = 16          # output / z_y / clamp width of the accelerator build
SH_BITS = 6
PLAN_WORDS = 13      # plan.hex words per run (see hdl/t2c_harness.v)
MAX_TILES = 16384    # runs one simulator process can hold (the harness's MAX_TILES)
OUT_MEM = "u_top.u_out.mem_q"
ACC_MEM = "u_top.u_acc.mem_q"


@dataclass(frozen=True)
class TileResult(Tile):
    """One executed tile: its place in the layer (the planned :class:`Tile`) and its cycles.

    ``cycles_*`` sum the tile's runs; ``chunks_*`` list them, one per K-chunk (one entry for a
    layer that is not K-split).
    """

    cycles_measured: int
    cycles_predicted: int
    chunks_measured: tuple[int, ...] = ()
    chunks_predicted: tuple[int, ...] = ()


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
    """GEMM operands of a layer on an array: ``cols[groups, P, K]``, compressed weights, plan.

    ``params``: ``(bias_eff, M0, sh)`` per output column ``[groups * C]`` (the ch memory) or per
    row ``[P, groups * C]`` (the rp memory); ``mode``: the run-mode register; ``w_signed``: the
    weight operand's format; ``lead``: a matmul's leading output dims (``y[*lead, P, C]``).
    """

    rec: LayerRecord
    hw: HwConfig
    cols: np.ndarray
    values: np.ndarray
    indices: np.ndarray
    plan: TilePlan
    out_shape: tuple[int, ...]
    params: tuple[np.ndarray, np.ndarray, np.ndarray] = ()
    mode: int = 0
    w_signed: bool = True
    lead: tuple[int, ...] | None = None

    def unflatten(self, a: np.ndarray) -> np.ndarray:
        """``[P, groups * C]`` results in the layer's output shape."""
        if self.lead is None:
            return a.reshape(self.out_shape)
        p, g, c = self.plan.p, self.plan.groups, self.plan.c_per_group
        return np.ascontiguousarray(a.reshape(p, g, c).transpose(1, 0, 2)).reshape(self.out_shape)


# ------------------------------------------------------------------------------------ build
def hw_parameters(hw: HwConfig, packed: bool = False) -> dict[str, int]:
    """Verilog parameters of ``t2c_harness`` / ``t2c_accel_top`` for ``hw`` (``PACKED``: array)."""
    return {"ROWS": hw.rows, "COLS": hw.cols, "N": hw.n, "M": hw.m, "A_BITS": hw.a_bits,
            "W_BITS": hw.w_bits, "ACC_BITS": hw.acc_bits, "MULT_BITS": hw.mult_bits,
            "SHIFT_MAX": hw.shift_max, "ACT_DEPTH": hw.act_depth, "W_DEPTH": hw.w_depth,
            "OUT_DEPTH": hw.out_depth, "CH_DEPTH": hw.ch_depth, "PACKED": int(packed),
            "PROFILES": hw.profiles, "ROW_PARAMS": hw.row_params, "ZERO_POINTS": hw.zero_points}


def default_packed(sim: str) -> bool:
    """The PE array implementation a simulator runs fastest: lane-packed on Icarus only."""
    return sim == "icarus"


def harness_sources(rtl_dir: str | Path | None = None) -> list[Path]:
    """RTL files (from ``rtl_dir``, default the package's ``rtl/``) plus the harness, in order."""
    if rtl_dir is None:
        return [*simmod.rtl_sources(*RTL_MODULES), HARNESS]
    srcs = [Path(rtl_dir) / f"{m}.v" for m in RTL_MODULES]
    for p in srcs:
        if not p.is_file():
            raise SimulationError(f"{p}: RTL source not found (rtl_dir must hold "
                                  f"{', '.join(m + '.v' for m in RTL_MODULES)})")
    return [*srcs, HARNESS]


def build_accel(hw: HwConfig, sim: str = "verilator", build_root: str | Path = "build/sim", *,
                waves: bool = False, optimize: bool = False, packed: bool | None = None,
                rtl_dir: str | Path | None = None) -> simmod.BuildInfo:
    """Build the harness once per ``(sim, hw, waves, sources)`` (cached by :func:`sim.build`).

    Verilator gets ``--timing`` (the harness clock is ``always #5``), ``--no-public-flat-rw``
    (undoes the cocotb runner's ``--public-flat-rw``: only the harness signals the testbench
    touches are public, through metacomments; everything public runs several times slower);
    :func:`sim.build` adds ``--output-split 0`` to every Verilator build. ``optimize`` compiles
    the model with ``-O2`` (long runs, benchmarks) instead of the fast-to-build default.
    ``packed`` selects the PE array implementation (``None``: :func:`default_packed`);
    ``rtl_dir`` builds another copy of the RTL (same file names; e.g. a mutant in a test).
    """
    args = []
    if sim == "verilator":
        args = ["--timing", "--no-public-flat-rw"]
        args += ["-CFLAGS", "-O2"] if optimize else []
    packed = default_packed(sim) if packed is None else packed
    return simmod.build(sim, TOPLEVEL, harness_sources(rtl_dir), hw_parameters(hw, packed),
                        build_root, waves=waves, build_args=args)


# ------------------------------------------------------------------------------------ plan
_refuse = features.refuse


def check_supported(rec: LayerRecord, hw: HwConfig) -> None:
    """Raise :class:`UnsupportedLayerError` unless ``hw`` can run ``rec`` (see module docstring)."""
    features.check_features(rec, hw)
    need = ("M0", "sh") if rec.op is OpKind.MATMUL else ("w_q", "bias_eff", "M0", "sh")
    for f in need:
        if getattr(rec, f) is None:
            raise _refuse(rec, f"{f} is missing")
    w_bits = rec.b_bits if rec.op is OpKind.MATMUL else rec.w_bits
    if rec.a_bits > hw.a_bits or w_bits > hw.w_bits:
        raise _refuse(rec, f"operands a{rec.a_bits}/w{w_bits} are wider than the array's "
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


def to_gemm(rec: LayerRecord, hw: HwConfig,
            x: np.ndarray | tuple[np.ndarray | None, np.ndarray | None] | None = None) -> Gemm:
    """Check ``rec`` against ``hw`` and build the GEMM operands and the tile plan.

    ``x``: the input (default ``rec.x_q``); for a matmul the pair ``(a, b)`` (default
    ``(rec.x_q, rec.b_q)``; either may be ``None``).

    Raises:
        UnsupportedLayerError: The array cannot run the record.
        RecordError: No input (``x`` and ``rec.x_q`` both missing) or inconsistent shapes.
    """
    from t2c_sim.golden import im2col

    check_supported(rec, hw)
    if rec.op is OpKind.MATMUL:
        return _matmul_gemm(rec, hw, *(x if x is not None else (None, None)))
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
    params = features.layer_params(rec, cols.shape[1])
    mode = features.run_mode(hw, rec.mode, rowpar=features.per_row(rec))
    return Gemm(rec, hw, cols, values, indices, plan, out_shape, params, mode)


def _matmul_gemm(rec: LayerRecord, hw: HwConfig, a: np.ndarray | None,
                 b: np.ndarray | None) -> Gemm:
    """The GEMM of an activation x activation matmul (:func:`features.matmul_operands`)."""
    a = rec.x_q if a is None else a
    b = rec.b_q if b is None else b
    if a is None or b is None:
        raise RecordError(f"layer {rec.name}: no input (give (a, b) or store x_q and b_q in "
                          f"the record)")
    op = features.matmul_operands(rec, hw, a, b)
    plan = tile_plan(rec, hw, rows=op["p"], groups=op["g"])
    return Gemm(rec, hw, op["cols"], op["values"], op["indices"], plan,
                (*op["lead"], op["p"], rec.c_out), op["params"], op["mode"],
                w_signed=rec.b_signed, lead=op["lead"])


def run_index(plan: TilePlan, tile: int, chunk: int) -> int:
    """Run number of ``(tile, chunk)`` within a layer: tiles in order, each tile's chunks in order."""
    return tile * len(plan.chunks) + chunk


def _blocked(a: np.ndarray, lanes: int, blocks: int) -> np.ndarray:
    """``a[items, ...]`` zero-padded to ``blocks * lanes`` items, as ``[blocks, lanes, ...]``."""
    out = np.zeros((blocks * lanes, *a.shape[1:]), dtype=np.int64)
    out[:a.shape[0]] = a
    return out.reshape(blocks, lanes, *a.shape[1:])


def _write_run(gm: Gemm, t: Tile, ci: int, d: Path, gi: int) -> list[int]:
    """Write run ``(t, chunk ci)``'s memory files (global run number ``gi``); return its plan words.

    Word layouts as in ``rtl/t2c_accel_top.v``: act words ``q*Gc + g`` lane-major (activation of
    row ``q*ROWS + r``, lane ``i`` at field ``i*ROWS + r``); wgt words ``q*Gc + g`` with channel
    ``q*COLS + c`` at field block ``c`` (N values, then N indices); ch words ``q``: the COLS
    biases, then the COLS M0, then the COLS shifts. The channel parameters are loaded by the
    first chunk only (they stay in the memory for the tile's other runs).
    """
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    g0, gs = plan.chunks[ci]
    first, last = ci == 0, ci == len(plan.chunks) - 1
    qr, qc = -(-t.rows // hw.rows), -(-t.cols // hw.cols)
    m, n = hw.m, hw.n
    act = gm.cols[t.group, t.p0:t.p0 + t.rows, g0 * m:(g0 + gs) * m]
    check_range(act, hw.a_bits, rec.a_signed, f"layer {rec.name} activations")
    act = _blocked(act.reshape(t.rows, gs, m), hw.rows, qr)         # [qr, ROWS, gs, M]
    act = act.transpose(0, 2, 3, 1).reshape(qr * gs, m * hw.rows)   # field i*ROWS + r
    write_memh_limbs(d / f"t{gi}_act.hex", pack_limbs(act, np.full(act.shape[1], hw.a_bits)),
                     m * hw.rows * hw.a_bits)
    sl = slice(t.c0, t.c0 + t.cols)
    vals = gm.values[sl].reshape(t.cols, plan.g, n)[:, g0:g0 + gs]
    idx = gm.indices[sl].reshape(t.cols, plan.g, n)[:, g0:g0 + gs]
    check_range(vals, hw.w_bits, gm.w_signed, f"layer {rec.name} weights")
    check_range(idx, hw.idx_bits, False, f"layer {rec.name} indices")
    wgt = _blocked(np.concatenate([vals, idx], axis=2), hw.cols, qc)  # [qc, COLS, gs, 2N]
    wgt = wgt.transpose(0, 2, 1, 3).reshape(qc * gs, hw.cols * 2 * n)
    wwidth = np.tile([hw.w_bits] * n + [hw.idx_bits] * n, hw.cols)
    write_memh_limbs(d / f"t{gi}_wgt.hex", pack_limbs(wgt, wwidth), int(wwidth.sum()))
    n_ch = 0
    if first:  # per channel: qc ch words; per row (ROWPAR): rows * qc words for the rp memory
        ch, cwidth = features.param_fields(rec, gm.params, hw, t.p0, t.rows, t.c0, t.cols)
        write_memh_limbs(d / f"t{gi}_ch.hex", pack_limbs(ch, cwidth), int(cwidth.sum()))
        n_ch = ch.shape[0]
    m32 = (1 << 32) - 1
    return [t.rows, gs, t.cols, int(rec.a_signed), rec.z_y & m32, rec.lo & m32, rec.hi & m32,
            gm.mode, qr * gs, qc * gs, n_ch, t.rows * qc if last else 0,
            int(first) | int(last) << 1]


def check_capacity(gemms: Sequence[Gemm]) -> int:
    """Total runs of ``gemms``; raise :class:`UnsupportedLayerError` beyond :data:`MAX_TILES`."""
    n_total = sum(g.plan.runs for g in gemms)
    if n_total > MAX_TILES:
        raise UnsupportedLayerError(
            f"layer {', '.join(g.rec.name for g in gemms)}: {n_total} accelerator runs exceed "
            f"the limit of {MAX_TILES} runs per simulator process (co-simulate fewer layers "
            f"at once, or fewer tiles with tiles=...)")
    return n_total


def prepare(gemms: list[Gemm], run_dir: Path, tiles: list[list[int] | None] | None = None,
            ) -> list[list[int]]:
    """Write ``plan.hex`` and the memory files of several layers' runs into ``run_dir``.

    Runs are numbered globally in layer order (layer ``i``'s tile ``j``, chunk ``k`` is run
    ``bases[i] + run_index(plan, j, k)``, ``bases`` the cumulative run counts). ``tiles[i]``
    selects layer ``i``'s tiles to run, with all their chunks (default all).

    Returns:
        Per layer, the selected tile indices, in order.

    Raises:
        UnsupportedLayerError: More runs than one simulator process holds (:data:`MAX_TILES`).
    """
    n_total = check_capacity(gemms)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan_words = [n_total]
    out: list[list[int]] = []
    base = 0
    for li, gm in enumerate(gemms):
        want = None if tiles is None or tiles[li] is None else set(tiles[li])
        sel = []
        for t in gm.plan.tiles:
            if want is None or t.index in want:
                for ci in range(len(gm.plan.chunks)):
                    plan_words += _write_run(gm, t, ci, run_dir,
                                             base + run_index(gm.plan, t.index, ci))
                sel.append(t.index)
            else:
                plan_words += [0] * (PLAN_WORDS * len(gm.plan.chunks))
        out.append(sel)
        base += gm.plan.runs
    write_memh(run_dir / "plan.hex", plan_words, 32)
    return out


# ------------------------------------------------------------------------------------ collect
_XZ = re.compile(r"[xXzZ]")


def _read_dump(path: Path, lanes: int, bits: int, what: str, layer: str, tile: Tile, cb: int,
               cols: int) -> np.ndarray:
    """Parse a ``$writememh`` dump into ``[words, lanes]``; X/Z raises naming memory and index.

    X/Z digits only in lanes past the tile's channels (never written) are read as 0.
    """
    if not path.is_file():
        raise SimulationError(f"layer {layer} tile {tile.index}: {path.name} was not written")
    want = tile.rows * cb
    try:
        return read_memh_fields(path, [bits] * lanes, True, want)
    except RecordError as e:
        if not _XZ.search(path.read_text()):
            raise SimulationError(f"layer {layer} tile {tile.index}: {e}") from None
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
        words.append(line)
    if len(words) != want:
        raise SimulationError(f"layer {layer} tile {tile.index}: {path.name} has {len(words)} "
                              f"words, expected {want}")
    fixed = path.with_suffix(".noxz.hex")
    fixed.write_text("\n".join(words) + "\n")
    return read_memh_fields(fixed, [bits] * lanes, True, want)


def read_stats(run_dir: Path, layer: str) -> dict[int, tuple[int, int]]:
    """``tiles.txt`` of a run directory: ``{global run: (err, cycles)}``."""
    tfile = run_dir / "tiles.txt"
    if not tfile.is_file():
        raise SimulationError(f"layer {layer}: the harness wrote no tiles.txt in {run_dir}")
    stats = {}
    for line in tfile.read_text().split("\n"):
        f = line.split()
        if len(f) == 3:
            stats[int(f[0])] = (int(f[1]), int(f[2]))
    return stats


def collect(gm: Gemm, run_dir: Path, sel: list[int], base: int = 0,
            ) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, ...]]]:
    """Read the dumps of layer tiles ``sel`` (the layer's runs start at global run ``base``).

    Returns:
        ``(y, acc, cycles)``: ``y`` and ``acc`` are ``[P, groups * C]`` (``[P, C_out]`` but for a
        matmul, see :meth:`Gemm.unflatten`); ``cycles`` maps each tile's
        index to its runs' cycle counters, one per K-chunk.
    """
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    y = np.zeros((plan.p, plan.groups * plan.c_per_group), dtype=np.int64)
    acc = np.zeros_like(y)
    stats = read_stats(run_dir, rec.name)
    nk = len(plan.chunks)
    cyc = {}
    for i in sel:
        t = plan.tiles[i]
        runs = [base + run_index(plan, i, ci) for ci in range(nk)]
        for ci, gi in enumerate(runs):
            what = f"tile {i}" + (f" chunk {ci}" if nk > 1 else "")
            if gi not in stats:
                raise SimulationError(f"layer {rec.name} {what}: never completed")
            if stats[gi][0]:
                raise SimulationError(f"layer {rec.name} {what}: accelerator error flags "
                                      f"{stats[gi][0]:#04x}")
        cyc[i] = tuple(stats[gi][1] for gi in runs)
        cb = -(-t.cols // hw.cols)
        for arr, name, mem, bits in ((y, "y", OUT_MEM, Y_BITS), (acc, "acc", ACC_MEM,
                                                                 hw.acc_bits)):
            lanes = _read_dump(run_dir / f"t{runs[-1]}_{name}.hex", hw.cols, bits, mem, rec.name,
                               t, cb, t.cols)
            arr[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = \
                lanes.reshape(t.rows, cb * hw.cols)[:, :t.cols]
    return y, acc, cyc


# ------------------------------------------------------------------------------------ run
def run_layer(rec: LayerRecord, hw: HwConfig, sim: str = "verilator", *,
              x: np.ndarray | None = None, build_root: str | Path = "build/sim",
              waves: bool = False, wave_tile: int | None = None,
              timeout_s: float | None = None, keep: bool = False,
              packed: bool | None = None) -> CosimResult:
    """Co-simulate one linear/conv layer on the accelerator RTL, all runs in one simulator process.

    Args:
        rec: The layer (validated record; ``x_q`` is the input unless ``x`` is given).
        hw: Accelerator parameters (one build per distinct value and simulator).
        sim: ``"verilator"`` or ``"icarus"``.
        x: Input instead of ``rec.x_q`` (linear ``[..., C_in]``, conv ``[B, H, W, C_in]``).
        build_root: Where builds (and the run directories, under each build) live.
        waves: Record a waveform (FST on Verilator; the harness is built with tracing).
        wave_tile: With ``waves``, simulate only this tile (all its K-chunks; its outputs are
            returned, the other outputs stay 0).
        timeout_s: Wall-clock limit of the simulator run (default from the cycle model).
        keep: Keep the run directory (memory files, dumps, logs); always kept with waves.
        packed: PE array implementation (``None``: the simulator's fast one, see module doc).

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
                      keep=keep, packed=packed)[0]


def run_layers(layers: Sequence[LayerRecord | tuple[LayerRecord, np.ndarray | None]],
               hw: HwConfig, sim: str = "verilator", *, build_root: str | Path = "build/sim",
               waves: bool = False, tiles: list[list[int] | None] | None = None,
               timeout_s: float | None = None, keep: bool = False,
               mutate: Callable[[Path], None] | None = None,
               optimize: bool = False, watchdog_margin: int = 1000,
               packed: bool | None = None, rtl_dir: str | Path | None = None,
               ) -> list[CosimResult]:
    """Co-simulate several layers in ONE simulator run (one process start for all of them).

    Args:
        layers: Records, or ``(record, x)`` pairs (a matmul's ``x`` is the pair ``(a, b)``).
        hw, sim, build_root, waves, timeout_s, keep, packed: As for :func:`run_layer`.
        tiles: Per layer, the tile indices to run (``None``: all).
        mutate: Called with the run directory after the memory files are written and before
            the simulator starts (fault injection in tests: e.g. truncate a file, edit plan.hex).
        optimize: Build the Verilator model with ``-O2`` (see :func:`build_accel`).
        watchdog_margin: The per-run watchdog is ``2 * predicted + watchdog_margin`` cycles.
        rtl_dir: Build this copy of the RTL instead of the package's (see :func:`build_accel`).

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
    check_capacity(gemms)  # before the build: a refused size costs no simulator
    info = build_accel(hw, sim, build_root, waves=waves, optimize=optimize, packed=packed,
                       rtl_dir=rtl_dir)
    runs = info.build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    first = re.sub(r"[^A-Za-z0-9_.-]+", "_", gemms[0].rec.name)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{first}-", dir=runs))
    t1 = time.monotonic()
    sels = prepare(gemms, run_dir, tiles)
    bases = np.cumsum([0] + [g.plan.runs for g in gemms]).tolist()
    order, names, pred = [], [], {}
    for gm, sel, base in zip(gemms, sels, bases):
        nk = len(gm.plan.chunks)
        for i in sel:
            t = gm.plan.tiles[i]
            for ci, (_, gs) in enumerate(gm.plan.chunks):
                gi = base + run_index(gm.plan, i, ci)
                pred[gi] = tile_cycles(t, gs, hw, last=ci == nk - 1)
                order.append(gi)
                names.append(f"{gm.rec.name} tile {i}" + (f" chunk {ci}/{nk}" if nk > 1 else ""))
    prep_s = time.monotonic() - t1
    if mutate is not None:
        mutate(run_dir)
    total = sum(pred.values())
    if timeout_s is None:  # generous: measured ~10k (Icarus) / ~140k (Verilator) cycles/s at 8x8
        pes = hw.rows * hw.cols
        timeout_s = 120.0 + total * (4e-5 * pes if sim == "icarus" else 5e-5 + 2e-6 * pes)
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
        nk = len(gm.plan.chunks)
        res = []
        for i in sel:
            t = gm.plan.tiles[i]
            want = tuple(pred[base + run_index(gm.plan, i, ci)] for ci in range(nk))
            res.append(TileResult(t.index, t.group, t.p0, t.rows, t.c0, t.cols,
                                  sum(measured[i]), sum(want), measured[i], want))
        for r in res:
            if r.chunks_measured != r.chunks_predicted:
                log.warning("layer %s tile %d: %s cycles measured, the cycle model predicts %s",
                            gm.rec.name, r.index, list(r.chunks_measured),
                            list(r.chunks_predicted))
        out.append(CosimResult(layer=gm.rec.name, y=gm.unflatten(y), acc=gm.unflatten(acc),
                               cycles=sum(r.cycles_measured for r in res),
                               tiles=res, sim=sim, build_dir=info.build_dir, run_dir=run_dir,
                               wave_file=wave, wall_s=wall, build_s=info.build_s, prep_s=prep_s,
                               extra={"layers_in_run": float(len(gemms))}))
    if not (keep or waves):
        shutil.rmtree(run_dir, ignore_errors=True)
        for r in out:
            r.run_dir = None
    log.info("%d layer(s) on %s: %d runs, run %.2f s (total %.2f s)", len(gemms), sim,
             len(order), wall, time.monotonic() - t0)
    return out
