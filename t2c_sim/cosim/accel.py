"""Our accelerator (``rtl/t2c_accel_top.v``) as a DUT: its back-door packing and its adapter.

Plan, then execute:

1. :func:`to_gemm` checks that the array can run the record (the DUT file's ``accepts``,
   ``t2c_sim/cosim/duts/t2c_accel.yaml``, bound to the array's parameters: else
   :class:`UnsupportedLayerError` naming the layer and the reason) and turns it into GEMM
   operands (:func:`t2c_sim.cosim.gemm.gemm_operands`); ``K`` is padded to a multiple of
   ``hw.m`` with zero weights and the weights are re-compressed to the array's ``hw.n:hw.m``.
   An activation x activation matmul (``Q @ K^T``, ``attn @ V``) runs dense on any array built
   with operand zero points, rounding profiles and token-wise ``[P, C_out]`` parameters on
   builds with those features (:mod:`t2c_sim.cosim.features`: the operands, the parameter
   words, and the refusals naming the missing feature, :meth:`T2cAccelAdapter.check`).
2. :func:`t2c_sim.estimate.tile_plan` cuts the GEMM into scratchpad-sized tiles and, when one
   dot product is longer than a bank, into K-chunks (the same plan the cycle model uses). Each
   (tile, chunk) is one accelerator run. :func:`prepare` writes one set of memory files per run
   (words packed by :mod:`t2c_sim.export.iface`, the owner of the word layouts) and
   ``plan.hex``.
3. The back-door profile (:mod:`t2c_sim.cosim.profiles.backdoor`) builds the harness
   ``hdl/t2c_harness.v`` and runs every run in one simulator process; the harness loads the
   memories with ``$readmemh`` and dumps the outputs with ``$writememh``.
4. :func:`collect` parses the dumps (an X/Z digit raises :class:`SimulationError` naming the
   memory, word, row and channel) and reassembles ``y`` and the raw accumulators.

:class:`T2cAccelAdapter` is the DUT contract's adapter for this accelerator (the YAML file names
it). The PE array has two implementations of the same function (``rtl/t2c_pe_array.v``): PE
instances, fastest on Verilator, and lane-packed columns, ~10x faster on Icarus;
``packed=None`` picks the fast one for the simulator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim import estimate
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim import bulk, features
from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.dut import default_dut
from t2c_sim.cosim.gemm import gemm_operands
from t2c_sim.cosim.result import TileResult
from t2c_sim.errors import ConfigError, RecordError, SimulationError, UnsupportedLayerError
from t2c_sim.estimate import Tile, TilePlan, tile_cycles, tile_plan
from t2c_sim.export import iface
from t2c_sim.export.hexfile import pack_limbs, read_memh_fields, write_memh, write_memh_limbs
from t2c_sim.limits import check_simulable
from t2c_sim.numerics import check_range
from t2c_sim.record import LayerRecord
from t2c_sim.sparse.nm import compress

__all__ = ["Gemm", "HARNESS", "RTL_MODULES", "TOPLEVEL", "OUT_MEM", "ACC_MEM", "default_packed",
           "harness_sources", "to_gemm", "run_index", "sel_run", "selection",
           "selected_runs", "check_capacity", "prepare", "collect",
           "read_stats", "T2cAccelAdapter", "HW_PARAMS", "dut_hw", "run_words", "plan_words_of"]

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "hdl" / "t2c_harness.v"
RTL_MODULES = ("t2c_ram", "t2c_nm_pe", "t2c_requant", "t2c_pe_array", "t2c_accel_top")
TOPLEVEL = "t2c_harness"
OUT_MEM = "u_top.u_out.mem_q"
ACC_MEM = "u_top.u_acc.mem_q"


@dataclass(frozen=True)
class Gemm:
    """GEMM operands of a layer on an array: ``cols[groups, P, K]``, compressed weights, plan.

    ``params``: ``(bias_eff, M0, sh)`` per output column ``[groups * C]`` (the ch memory) or per
    row ``[P, groups * C]`` (the rp memory); ``mode``: the run-mode register
    (:func:`t2c_sim.export.iface.run_mode`); ``w_signed``: the weight operand's format;
    ``lead``: a matmul's leading output dims (``y[*lead, P, C]``).
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
            raise SimulationError(f"RTL source not found (rtl_dir must hold "
                                  f"{', '.join(m + '.v' for m in RTL_MODULES)})", file=str(p))
    return [*srcs, HARNESS]


# ------------------------------------------------------------------------------------ plan
def _check(rec: LayerRecord, hw: HwConfig) -> None:
    """The DUT file's ``accepts`` for the array ``hw`` and its build features (the one owner of
    what it refuses)."""
    default_dut(hw).check(rec)


def to_gemm(rec: LayerRecord, hw: HwConfig,
            x: np.ndarray | tuple[np.ndarray | None, np.ndarray | None] | None = None, *,
            checked: bool = False) -> Gemm:
    """Check ``rec`` against ``hw`` (unless ``checked``) and build the GEMM operands and plan.

    ``x``: the input (default ``rec.x_q``); for a matmul the pair ``(a, b)`` (default
    ``(rec.x_q, rec.b_q)``; either may be ``None``).

    Raises:
        UnsupportedLayerError: The array cannot run the record.
        RecordError: No input (``x`` and ``rec.x_q`` both missing) or inconsistent shapes.
    """
    if not checked:
        _check(rec, hw)
    if rec.op is OpKind.MATMUL:
        return _matmul_gemm(rec, hw, *(x if x is not None else (None, None)))
    cols, out_shape = gemm_operands(rec, x)
    plan = tile_plan(rec, hw, rows=cols.shape[1])
    pad = plan.k - rec.k
    w = rec.w_q
    if pad:
        cols = np.pad(cols, ((0, 0), (0, 0), (0, pad)))
        w = np.pad(w, ((0, 0), (0, pad)))
    values, indices = compress(w, hw.n, hw.m)
    params = features.layer_params(rec, cols.shape[1])
    mode = iface.run_mode(hw, rec.mode, rowpar=features.per_row(rec))
    return Gemm(rec, hw, cols, values, indices, plan, out_shape, params, mode)


def _matmul_gemm(rec: LayerRecord, hw: HwConfig, a: np.ndarray | None,
                 b: np.ndarray | None) -> Gemm:
    """The GEMM of an activation x activation matmul (:func:`features.matmul_operands`)."""
    a = rec.x_q if a is None else a
    b = rec.b_q if b is None else b
    if a is None or b is None:
        raise RecordError("no input (give (a, b) or store x_q and b_q in the record)",
                          layer=rec.name)
    op = features.matmul_operands(rec, hw, a, b)
    plan = tile_plan(rec, hw, rows=op["p"], groups=op["g"])
    return Gemm(rec, hw, op["cols"], op["values"], op["indices"], plan,
                (*op["lead"], op["p"], rec.c_out), op["params"], op["mode"],
                w_signed=rec.b_signed, lead=op["lead"])


def run_index(plan: TilePlan, tile: int, chunk: int) -> int:
    """Run number of ``(tile, chunk)`` within a layer: tiles in order, each tile's chunks in order."""
    return tile * len(plan.chunks) + chunk


def selection(plan: TilePlan, tiles: Sequence[int] | None) -> list[int]:
    """The selected tile indices of a layer in plan order (``None``: every tile)."""
    if tiles is None:
        return list(range(len(plan.tiles)))
    want = set(tiles)
    return [t.index for t in plan.tiles if t.index in want]


def selected_runs(plan: TilePlan, tiles: Sequence[int] | None) -> int:
    """Harness runs of a layer's selected tiles (every K-chunk of each)."""
    return len(selection(plan, tiles)) * len(plan.chunks)


def sel_run(plan: TilePlan, k: int, chunk: int) -> int:
    """Run number, within a layer's selection, of chunk ``chunk`` of its ``k``-th selected tile.

    Only the selected tiles' runs are numbered (and held in the harness's plan), so a tile
    range of a layer with more runs than one process holds runs in a process of its own; with
    every tile selected it is :func:`run_index`.
    """
    return k * len(plan.chunks) + chunk


def run_words(gm: Gemm, t: Tile, ci: int) -> tuple[dict[str, np.ndarray], list[int]]:
    """The memory words of run ``(t, chunk ci)`` as :func:`t2c_sim.export.hexfile.pack_limbs`
    limbs (``act``, ``wgt`` and, for a tile's first chunk, ``ch``) and its plan words.

    Word layouts: :mod:`t2c_sim.export.iface`. The channel parameters are loaded by the first
    chunk only (they stay in the memory for the tile's other runs).
    """
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    g0, gs = plan.chunks[ci]
    first = ci == 0
    m, n = hw.m, hw.n
    words: dict[str, np.ndarray] = {}
    act = gm.cols[t.group, t.p0:t.p0 + t.rows, g0 * m:(g0 + gs) * m]
    check_range(act, hw.a_bits, rec.a_signed, f"layer {rec.name} activations")
    words["act"] = pack_limbs(*iface.act_fields(act.reshape(t.rows, gs, m), hw))
    sl = slice(t.c0, t.c0 + t.cols)
    vals = gm.values[sl].reshape(t.cols, plan.g, n)[:, g0:g0 + gs]
    idx = gm.indices[sl].reshape(t.cols, plan.g, n)[:, g0:g0 + gs]
    check_range(vals, hw.w_bits, gm.w_signed, f"layer {rec.name} weights")
    check_range(idx, hw.idx_bits, False, f"layer {rec.name} indices")
    words["wgt"] = pack_limbs(*iface.wgt_fields(vals, idx, hw))
    if first:   # per channel: qc ch words; per row (ROWPAR): rows * qc words for the rp memory
        words["ch"] = pack_limbs(*features.param_fields(rec, gm.params, hw, t.p0, t.rows, t.c0,
                                                        t.cols))
    return words, plan_words_of(gm, t, ci)


def plan_words_of(gm: Gemm, t: Tile, ci: int, wgt: bool = True, ch: bool = True) -> list[int]:
    """The plan words of run ``(t, chunk ci)``. The requantizer parameters are loaded by a
    tile's first chunk (``qc`` ch words, or per row ``rows * qc`` rp words); ``wgt``/``ch``
    False: the memory already holds this run's words (0 to load)."""
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    gs = plan.chunks[ci][1]
    first, last = ci == 0, ci == len(plan.chunks) - 1
    qr, qc = -(-t.rows // hw.rows), -(-t.cols // hw.cols)
    n_ch = t.rows * qc if gm.mode & iface.ROWPAR else qc
    return iface.plan_words(rows=t.rows, groups=gs, cols=t.cols,
                            a_signed=int(rec.a_signed), z_y=rec.z_y, lo=rec.lo, hi=rec.hi,
                            mode=gm.mode, n_act=qr * gs, n_wgt=qc * gs if wgt else 0,
                            n_ch=n_ch if first and ch else 0, n_out=t.rows * qc if last else 0,
                            flags=(iface.FLAG_FIRST if first else 0)
                            | (iface.FLAG_LAST if last else 0))


def _write_run(gm: Gemm, t: Tile, ci: int, d: Path, gi: int) -> list[int]:
    """Write run ``(t, chunk ci)``'s memory files (global run number ``gi``); return its plan
    words (:func:`run_words`)."""
    words, plan = run_words(gm, t, ci)
    ww = iface.widths(gm.hw)
    for kind, limbs in words.items():
        write_memh_limbs(d / f"t{gi}_{kind}.hex", limbs, getattr(ww, kind))
    return plan


def check_capacity(gemms: Sequence[Gemm], limit: int = iface.MAX_RUNS,
                   tiles: Sequence[Sequence[int] | None] | None = None) -> int:
    """Total runs of ``gemms`` (their selected ``tiles``, default all); raise
    :class:`UnsupportedLayerError` beyond ``limit``."""
    n_total = sum(selected_runs(g.plan, None if tiles is None else tiles[i])
                  for i, g in enumerate(gemms))
    if n_total > limit:
        raise UnsupportedLayerError(
            f"layer {', '.join(g.rec.name for g in gemms)}: {n_total} accelerator runs exceed "
            f"the limit of {limit} runs per simulator process (co-simulate fewer layers "
            f"at once, or fewer tiles with tiles=...)")
    return n_total


def prepare(gemms: list[Gemm], run_dir: Path, tiles: list[list[int] | None] | None = None,
            limit: int = iface.MAX_RUNS) -> list[list[int]]:
    """Write ``plan.hex`` and the memory files of several layers' runs into ``run_dir``.

    Only the selected runs are written, numbered in layer order (chunk ``c`` of layer ``i``'s
    ``k``-th selected tile is run ``bases[i] + sel_run(plan, k, c)``, ``bases`` the cumulative
    selected run counts). ``tiles[i]`` selects layer ``i``'s tiles to run, with all their
    chunks (default all).

    Returns:
        Per layer, the selected tile indices, in order.

    Raises:
        UnsupportedLayerError: More runs than one simulator process holds (``limit``).
    """
    n_total = check_capacity(gemms, limit, tiles)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan_words = [n_total]
    out: list[list[int]] = []
    base = 0
    for li, gm in enumerate(gemms):
        sel = selection(gm.plan, None if tiles is None else tiles[li])
        by_index = {t.index: t for t in gm.plan.tiles}
        chosen = [by_index[i] for i in sel]
        # the whole layer packed once (bulk.py), unless a tile is off the block grid
        text = bulk.layer_text(gm) if chosen and bulk.aligned(gm, chosen) else None
        held_w = held_ch = None  # what the weight / channel memories hold (runs in order)
        for k, t in enumerate(chosen):
            for ci in range(len(gm.plan.chunks)):
                gi = base + sel_run(gm.plan, k, ci)
                if text is None:
                    plan_words += _write_run(gm, t, ci, run_dir, gi)
                    continue
                # consecutive runs of one column block reload only their activations
                # (per-row parameters differ per row tile: their words always reload)
                kw, kc = (t.group, t.c0, t.cols, ci), (t.group, t.c0, t.cols)
                if gm.mode & iface.ROWPAR:
                    kc = (*kc, t.p0, t.rows)
                wgt, ch = kw != held_w, ci == 0 and kc != held_ch
                bulk.write_run(text, gm, t, ci, run_dir, gi, wgt=wgt, ch=ch)
                plan_words += plan_words_of(gm, t, ci, wgt=wgt, ch=ch)
                held_w, held_ch = kw, kc
        out.append(sel)
        base += len(sel) * len(gm.plan.chunks)
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
    """Read the dumps of layer tiles ``sel`` (as :func:`prepare` returned them; the layer's runs
    start at global run ``base``, numbered by :func:`sel_run`).

    Returns:
        ``(y, acc, cycles)``: ``y`` and ``acc`` are ``[P, groups * C]`` (``[P, C_out]`` but for a
        matmul, see :meth:`Gemm.unflatten`); ``cycles`` maps each tile's index to its runs'
        cycle counters, one per K-chunk.
    """
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    y = np.zeros((plan.p, plan.groups * plan.c_per_group), dtype=np.int64)
    acc = np.zeros_like(y)
    stats = read_stats(run_dir, rec.name)
    nk = len(plan.chunks)
    cyc = {}
    for k, i in enumerate(sel):
        runs = [base + sel_run(plan, k, ci) for ci in range(nk)]
        for ci, gi in enumerate(runs):
            what = f"tile {i}" + (f" chunk {ci}" if nk > 1 else "")
            if gi not in stats:
                raise SimulationError(f"layer {rec.name} {what}: never completed")
            if stats[gi][0]:
                raise SimulationError(f"layer {rec.name} {what}: accelerator error flags "
                                      f"{stats[gi][0]:#04x}")
        cyc[i] = tuple(stats[gi][1] for gi in runs)
    tiles = [plan.tiles[i] for i in sel]
    lasts = [base + sel_run(plan, k, nk - 1) for k in range(len(sel))]
    fast = [bulk.read_dumps(gm, run_dir, tiles, lasts, name, bits)
            for name, bits in (("y", iface.Y_BITS), ("acc", hw.acc_bits))]
    if fast[0] is not None and fast[1] is not None:  # every dump clean: parsed at once
        return fast[0], fast[1], cyc
    for t, last in zip(tiles, lasts):  # the per-tile reader names a bad dump's word and lane
        cb = -(-t.cols // hw.cols)
        for arr, name, mem, bits in ((y, "y", OUT_MEM, iface.Y_BITS),
                                     (acc, "acc", ACC_MEM, hw.acc_bits)):
            lanes = _read_dump(run_dir / f"t{last}_{name}.hex", hw.cols, bits, mem, rec.name,
                               t, cb, t.cols)
            arr[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = \
                lanes.reshape(t.rows, cb * hw.cols)[:, :t.cols]
    return y, acc, cyc


# ------------------------------------------------------------------------------------ adapter
#: Verilog parameters of ``t2c_accel_top`` that are fields of the array (:class:`HwConfig`).
HW_PARAMS = {"ROWS": "rows", "COLS": "cols", "N": "n", "M": "m", "A_BITS": "a_bits",
             "W_BITS": "w_bits", "ACC_BITS": "acc_bits", "MULT_BITS": "mult_bits",
             "SHIFT_MAX": "shift_max", "ACT_DEPTH": "act_depth", "W_DEPTH": "w_depth",
             "OUT_DEPTH": "out_depth", "CH_DEPTH": "ch_depth", **iface.FEATURE_PARAMS}


def dut_hw(dut: Any) -> HwConfig:
    """The array a bound DUT of ours builds: ``dut.hw`` with the DUT's parameters applied (a
    ``--dut-param ROWS=8`` must reach the plan and the packers, not only the RTL), within the
    simulation limits (:func:`t2c_sim.limits.check_simulable`).

    Raises:
        ConfigError: A parameter outside the array's bounds or the limits, or an interface
            width other than :mod:`t2c_sim.export.iface`'s (naming the parameter).
    """
    for name, want in (("Y_BITS", iface.Y_BITS), ("SH_BITS", iface.SH_BITS)):
        if name in dut.params and dut.params[name] != want:
            raise ConfigError(f"must be {want} (owned by t2c_sim/export/iface.py, which packs "
                              f"the words), got {dut.params[name]}", **dut.param_key(name))
    vals = {f: int(dut.params[p]) for p, f in HW_PARAMS.items() if p in dut.params}
    hw = dut.hw
    if any(getattr(hw, f) != v for f, v in vals.items()):
        try:
            hw = HwConfig.from_dict({**hw.to_dict(), **vals})
        except ConfigError as e:
            p = next((k for k, f in HW_PARAMS.items() if f == e.key),
                     "M" if e.key == "nm" else None)
            raise (ConfigError(e.detail, **dut.param_key(p)) if p else e) from None
    try:
        check_simulable(hw)
    except ConfigError as e:
        p = next((k for k, f in HW_PARAMS.items() if f == e.key), "ROWS")
        raise ConfigError(e.detail, **dut.param_key(p)) from None
    return hw


class T2cAccelAdapter:
    """The adapter of our accelerator in the DUT contract (back-door profile).

    Configure = :func:`to_gemm` (tile plan), load operands = :func:`prepare` (memory files and
    plan words), start / wait = the harness (``hdl/t2c_harness.v``: sequenced by itself from
    the profile's run list, or by the profile's cocotb module when recording waves),
    read results = :func:`collect`; the cycle model is :func:`t2c_sim.estimate.tile_cycles`
    per run (exact). ``hw`` (the array) is what the DUT file's parameters were bound from.
    """

    max_runs = iface.MAX_RUNS
    #: the harness runs a run list by itself (``+t2c_seq=FILE``): no cocotb on the default path
    self_sequenced = True

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.hw: HwConfig = dut_hw(dut)

    # -- what the build runs beyond the DUT file's accepts (its features)
    def check(self, rec: LayerRecord) -> None:
        """Refuse what the build's features do not cover (:func:`features.check_features`)."""
        features.check_features(rec, self.hw, self.dut.name)

    # -- the cycle model of a whole layer, and utilization (reports)
    def layer_cycles(self, rec: LayerRecord) -> int:
        return int(estimate.cycles(rec, self.hw))

    def utilization(self, rec: LayerRecord) -> float:
        return float(estimate.utilization(rec, self.hw))

    # -- the harness (build)
    def harness(self, sim: str, packed: bool | None = None, rtl_dir: str | Path | None = None,
                ) -> tuple[list[Path], str, dict[str, int]]:
        """``(sources, toplevel, parameters)`` of the back-door harness build."""
        packed = default_packed(sim) if packed is None else packed
        params = dict(self.dut.params)
        params["PACKED"] = int(packed)
        srcs = harness_sources(rtl_dir) if rtl_dir is not None else [*self.dut.sources, HARNESS]
        return srcs, TOPLEVEL, iface.harness_parameters(params)

    # -- configure a layer
    def configure(self, rec: LayerRecord, x: np.ndarray | None) -> Gemm:
        return to_gemm(rec, self.hw, x, checked=True)

    def units(self, gm: Gemm) -> int:
        return len(gm.plan.tiles)

    def runs(self, gm: Gemm, tiles: Sequence[int] | None = None) -> int:
        """Harness runs of a layer's selected ``tiles`` (default all)."""
        return selected_runs(gm.plan, tiles)

    # -- load operands (files for the harness) and the predicted cycles per run
    def load(self, gemms: list[Gemm], run_dir: Path, tiles: list[list[int] | None] | None,
             limit: int) -> list[list[int]]:
        return prepare(gemms, run_dir, tiles, limit)

    def schedule(self, gm: Gemm, sel: list[int], base: int) -> list[tuple[int, str, int]]:
        """``(global run, name, predicted cycles)`` of the selected tiles' runs, in order."""
        out = []
        nk = len(gm.plan.chunks)
        for k, i in enumerate(sel):
            t = gm.plan.tiles[i]
            for ci, (_, gs) in enumerate(gm.plan.chunks):
                name = f"{gm.rec.name} tile {i}" + (f" chunk {ci}/{nk}" if nk > 1 else "")
                out.append((base + sel_run(gm.plan, k, ci), name,
                            tile_cycles(t, gs, self.hw, last=ci == nk - 1)))
        return out

    # -- read results and cycles
    def read(self, gm: Gemm, run_dir: Path, sel: list[int], base: int,
             predicted: dict[int, int]) -> tuple[np.ndarray, np.ndarray, list[TileResult]]:
        y, acc, measured = collect(gm, run_dir, sel, base)
        nk = len(gm.plan.chunks)
        res = []
        for k, i in enumerate(sel):
            t = gm.plan.tiles[i]
            want = tuple(predicted[base + sel_run(gm.plan, k, ci)] for ci in range(nk))
            res.append(TileResult(t.index, t.group, t.p0, t.rows, t.c0, t.cols,
                                  sum(measured[i]), sum(want), measured[i], want))
        return gm.unflatten(y), gm.unflatten(acc), res
