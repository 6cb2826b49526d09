"""Exact cycle model of ``rtl/t2c_accel_top.v`` and the host tile plan (shared with co-simulation).

The host cuts a MAC layer into **tiles**: GEMMs ``rows x cols`` (output rows ``P`` by output
channels) over one conv group, small enough for the scratchpads. A dot product of ``G = K/M``
groups that does not fit one scratchpad bank is cut along ``K`` into **chunks** (K-splitting,
SPEC section 6): contiguous chunks of balanced length, at most ``min(A, W) // d`` groups each
(``A, W``: activation / weight bank depth in words; ``d`` chosen for the fewest cycles), the same
for every tile. Each (tile, chunk) is one accelerator **run** (``start`` to ``done``): the first
chunk starts from ``bias_eff``, later ones continue from the partial sums the previous run left
in the accumulator memory, and only the last one requantizes. Inside a run the RTL walks
``NB = ceil(rows/ROWS) * ceil(cols/COLS)`` blocks of the PE array, each streaming the chunk's
``Gc`` groups. A block occupies ``T = max(Gc, ROWS)`` issue slots (slots past ``Gc`` stall so that
the drain buffer, read one row per cycle, is never overwritten). The run's cycle counter then
reads exactly::

    cycles(run) = (NB - 1) * max(Gc, ROWS) + Gc + ROWS + CONTROL_OVERHEAD + (RQ_LATENCY if last)

with ``RQ_LATENCY = 3`` (``t2c_requant``; a run that is not the last chunk ends when its partial
sums are written, without the requantizer) and ``CONTROL_OVERHEAD = 2`` (one cycle from issue to
scratchpad data, one to capture the block into the drain buffer). A tile's cycles are the sum
over its chunks, a layer's the sum over its tiles; host-side memory loads are not counted
(docs/rtl.md). Pure Python/NumPy: no torch, no cocotb.

Example: a linear layer ``P = 8, C_in = 64, C_out = 8`` on a 4x4 2:4 array is one tile with
``G = 16``, ``NB = 2 * 2 = 4``: ``3 * 16 + 16 + 4 + 3 + 2 = 73`` cycles. With banks of 6 words
(``act_depth = w_depth = 24``) its dot products do not fit: chunks of at most 6 groups need
4x4 tiles (four tiles of three runs, 148 cycles), chunks of at most 3 leave room for the whole
8x8 layer in one tile: chunks of 3, 3, 3, 3, 2, 2 groups, six runs of ``3 * 4 + 3 + 4 + 2 = 21``
(``G = 3 < ROWS``: each block stalls one slot) or 20 cycles, plus 3 for the last: 127 cycles,
the plan's choice.

**Activation x activation matmul** (SPEC section 7, ``Q @ K^T`` and ``attn @ V``) runs on an
array built with operand zero points (``hw.zero_points``): each leading (batch, head) index is
one GEMM of ``P`` rows by ``C`` columns (a "group", like a conv group: its own rows' operand
``a`` and its own ``b``), and ``b`` is dense: on an ``N:M`` array each group of ``M``
activation lanes carries ``N`` consecutive ``k`` with the identity indices ``0 .. N-1``, so a
dot product of ``K`` takes ``G = ceil(K / N)`` groups (on a dense ``M:M`` array, ``K / M``).
Plans, tiles and cycles are then those of any layer; per-row (token-wise) requantization
parameters cost no cycle (the drain reads them with the row).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from t2c_sim.config import HwConfig, OpKind
from t2c_sim.errors import RecordError, UnsupportedLayerError
from t2c_sim.record import MAC_OPS, LayerRecord

__all__ = [
    "RQ_LATENCY", "CONTROL_OVERHEAD", "MAX_PLAN_RUNS", "Tile", "TilePlan", "gemm_rows", "gemm_k",
    "gemm_groups", "array_ops", "per_row_params", "split_k", "tile_plan", "tile_cycles",
    "chunk_cycles", "cycles", "per_layer", "macs", "utilization",
]

RQ_LATENCY = 3        # t2c_requant LATENCY
CONTROL_OVERHEAD = 2  # issue -> scratchpad data (1) + capture into the drain buffer (1)
MAX_PLAN_RUNS = 1 << 20  # accelerator runs (tiles x chunks) one layer's plan may hold
SPLIT_CANDIDATES = 8     # a split layer's chunk length is chosen among min(A, W) // d, d <= 8


@dataclass(frozen=True)
class Tile:
    """One accelerator run: output rows ``p0 .. p0+rows-1`` and channels ``c0 .. c0+cols-1``.

    ``c0`` is the absolute output channel of the layer; ``group`` is the conv group whose GEMM
    the tile belongs to (channels of group ``g`` are ``g*C_out/groups ..``).
    """

    index: int
    group: int
    p0: int
    rows: int
    c0: int
    cols: int


@dataclass(frozen=True)
class TilePlan:
    """Immutable plan of one layer on one array: GEMM shape and tiles in execution order.

    Attributes:
        layer: Layer name.
        p: GEMM rows (``B*OH*OW`` for conv, the product of ``x``'s leading dims for linear).
        k: Reduction length padded to a multiple of ``hw.m``.
        g: Groups of ``hw.m`` per dot product (``k / hw.m``).
        groups: Conv groups (one GEMM each).
        c_per_group: Output channels per conv group.
        tiles: Tiles, channel tiles outer and row tiles inner, group by group.
        chunks: K-chunks ``(g0, gs)`` (first group, groups) every tile runs, in order: one
            ``(0, g)`` for a layer whose dot product fits the banks.
    """

    layer: str
    p: int
    k: int
    g: int
    groups: int
    c_per_group: int
    tiles: tuple[Tile, ...]
    chunks: tuple[tuple[int, int], ...]

    @property
    def split(self) -> bool:
        """Whether the dot products are K-split (more than one chunk)."""
        return len(self.chunks) > 1

    @property
    def runs(self) -> int:
        """Accelerator runs of the layer: tiles times chunks."""
        return len(self.tiles) * len(self.chunks)


def array_ops(hw: HwConfig) -> tuple[OpKind, ...]:
    """Ops the array runs: linear and conv2d, and the activation x activation matmul when the
    build has operand zero points (``hw.zero_points``)."""
    return (*MAC_OPS, OpKind.MATMUL) if hw.zero_points else MAC_OPS


def _matmul_shape(rec: LayerRecord) -> tuple[int, int]:
    """``(G, P)`` of a matmul record: leading-index count and rows per GEMM (from ``x_q``, ``y``
    or ``acc``, shaped ``[..., P, K]`` / ``[..., P, C]``)."""
    for a in (rec.x_q, rec.y, rec.acc):
        if a is not None and a.ndim >= 2:
            return int(np.prod(a.shape[:-2], dtype=np.int64)), int(a.shape[-2])
    raise RecordError(f"layer {rec.name}: matmul without x_q, y or acc: its rows P are unknown")


def per_row_params(rec: LayerRecord) -> bool:
    """Whether the record's requantizer parameters are per row (token-wise ``[P, C_out]`` or a
    matmul's ``[R, 1]`` / ``[R, C]``): the array then reads them per output row (no cycle more;
    the host and a DMA load ``rows`` times more parameter words)."""
    return any(a is not None and a.ndim == 2 for a in (rec.bias_eff, rec.M0, rec.sh))


def gemm_groups(rec: LayerRecord) -> int:
    """Independent GEMMs of a record: conv groups, 1 for linear, the leading (batch x head)
    indices of a matmul."""
    if rec.op is OpKind.CONV2D:
        return rec.groups
    if rec.op is OpKind.MATMUL:
        return _matmul_shape(rec)[0]
    return 1


def gemm_rows(rec: LayerRecord) -> int:
    """GEMM rows ``P`` of a MAC or matmul record (needs ``x_q``, ``y`` or ``acc`` for a linear
    layer or a matmul; a matmul's ``P`` is per leading index)."""
    if rec.op is OpKind.MATMUL:
        return _matmul_shape(rec)[1]
    if rec.op is OpKind.CONV2D:
        oh, ow = rec.out_hw
        for a in (rec.x_q, rec.y, rec.acc):
            if a is not None:
                return int(a.shape[0]) * oh * ow
        return oh * ow  # batch 1
    if rec.op is OpKind.LINEAR:
        if rec.x_q is not None:
            return int(np.prod(rec.x_q.shape[:-1], dtype=np.int64))
        for a in (rec.y, rec.acc):
            if a is not None:
                return int(np.prod(a.shape[:-1], dtype=np.int64))
        raise RecordError(f"layer {rec.name}: linear layer without x_q, y or acc: rows P unknown")
    raise RecordError(f"layer {rec.name}: {rec.op.value} is not a MAC layer (no GEMM)")


def gemm_k(rec: LayerRecord, hw: HwConfig) -> int:
    """Reduction length of the record (``rec.k``) padded to a multiple of ``hw.m``; a matmul's
    dense ``K`` laid out ``hw.n`` per group of ``hw.m`` lanes: ``ceil(K / n) * m``."""
    if rec.op is OpKind.MATMUL:
        return -(-rec.c_in // hw.n) * hw.m
    return -(-rec.k // hw.m) * hw.m


def split_k(g: int, cap: int) -> tuple[tuple[int, int], ...]:
    """Cut ``g`` groups into the fewest contiguous chunks of at most ``cap`` groups, balanced.

    Chunk lengths differ by at most one, longer ones first: ``split_k(16, 6) == ((0, 6),
    (6, 5), (11, 5))``. Balanced chunks keep the last one from being short (a chunk shorter than
    the array's rows stalls). Returns ``((g0, gs), ...)``.
    """
    if g < 1 or cap < 1:
        raise ValueError(f"split_k needs g >= 1 and cap >= 1, got g={g}, cap={cap}")
    nk = -(-g // cap)
    base, extra = divmod(g, nk)
    out, g0 = [], 0
    for i in range(nk):
        gs = base + (1 if i < extra else 0)
        out.append((g0, gs))
        g0 += gs
    return tuple(out)


def _tile_dims(p: int, cpg: int, gc: int, hw: HwConfig, a_bank: int, w_bank: int,
               c_bank: int) -> tuple[int, int]:
    """Tile channels and rows for chunks of at most ``gc`` groups (see :func:`tile_plan`)."""
    col_cap = hw.cols * min(w_bank // gc, c_bank, hw.out_depth)
    ct = min(cpg, col_cap)
    cb = -(-ct // hw.cols)
    row_cap = min(hw.rows * (a_bank // gc), hw.out_depth // cb)
    if row_cap >= hw.rows:
        row_cap -= row_cap % hw.rows
    return ct, min(p, row_cap)


def _grid_cycles(p: int, cpg: int, ct: int, pt: int, chunks: tuple[tuple[int, int], ...],
                 hw: HwConfig) -> int:
    """Cycles of one conv group's tiles (closed form over the four tile shapes)."""
    total = 0
    for r, nr in ((pt, p // pt), (p % pt, 1 if p % pt else 0)):
        for c, nc in ((ct, cpg // ct), (cpg % ct, 1 if cpg % ct else 0)):
            if nr and nc:
                t = Tile(0, 0, 0, r, 0, c)
                total += nr * nc * sum(tile_cycles(t, gs, hw, last=i == len(chunks) - 1)
                                       for i, (_, gs) in enumerate(chunks))
    return total


def tile_plan(rec: LayerRecord, hw: HwConfig, rows: int | None = None,
              groups: int | None = None) -> TilePlan:
    """Cut a MAC layer into scratchpad-sized tiles and K-chunks (the plan host and model share).

    With ``G = gemm_k / hw.m`` and bank depths ``A = act_depth // rows``, ``W = w_depth // cols``,
    ``C = ch_depth // cols``, and ``Gc`` the longest K-chunk, a tile holds
    ``cols <= COLS * min(W // Gc, C, out_depth)`` channels and
    ``rows <= min(ROWS * (A // Gc), out_depth // ceil(cols / COLS))`` rows (rounded down to a
    multiple of ``ROWS`` when at least ``ROWS``). Channel tiles are outer, row tiles inner; every
    tile runs every chunk, in order.

    K-chunks: a dot product that fits (``G <= min(A, W)``) is one chunk ``(0, G)``. One that
    does not is split into ``split_k(G, min(A, W) // d)`` for the ``d`` in ``1 ..
    SPLIT_CANDIDATES`` whose plan has the fewest cycles (then the fewest runs, then the smallest
    ``d``): shorter chunks leave room for more rows and channels per tile, so the array's fill
    and drain are paid over more blocks per run (e.g. a ResNet-18 layer4 conv on a 4x4 array:
    3 chunks of 384 groups in 8x8 tiles instead of 2 of 576 in 4x4 tiles, 2.5x fewer runs).

    Args:
        rec: A linear, conv or matmul record.
        hw: The array.
        rows: GEMM rows ``P`` (default :func:`gemm_rows`).
        groups: Independent GEMMs (default :func:`gemm_groups`; a matmul's leading indices).

    Raises:
        RecordError: Not a layer the array runs, or an empty GEMM.
        UnsupportedLayerError: The array cannot hold one group of one row and one channel
            (a bank of 0 words), or the plan would exceed :data:`MAX_PLAN_RUNS` runs.
    """
    if rec.op not in (*MAC_OPS, OpKind.MATMUL):
        raise RecordError(f"layer {rec.name}: {rec.op.value} has no GEMM to tile")
    p = gemm_rows(rec) if rows is None else int(rows)
    k = gemm_k(rec, hw)
    g = k // hw.m
    groups = gemm_groups(rec) if groups is None else int(groups)
    cpg = rec.c_out if rec.op is OpKind.MATMUL else rec.c_out // groups  # matmul: C per index
    a_bank, w_bank, c_bank = hw.act_depth // hw.rows, hw.w_depth // hw.cols, hw.ch_depth // hw.cols
    if g < 1 or p < 1 or cpg < 1:
        raise RecordError(f"layer {rec.name}: empty GEMM (P={p}, K={k}, C_out={rec.c_out})")
    if min(a_bank, w_bank, c_bank) < 1:
        raise UnsupportedLayerError(
            f"layer {rec.name}: cannot run on the accelerator: a scratchpad bank holds no word "
            f"(act_depth/rows={a_bank}, w_depth/cols={w_bank}, ch_depth/cols={c_bank})")
    cap = min(a_bank, w_bank)
    if g <= cap:
        chunks = ((0, g),)
        ct, pt = _tile_dims(p, cpg, g, hw, a_bank, w_bank, c_bank)
    else:  # K-split: the chunk length among cap // d with the fewest cycles, then runs
        best = None
        for d in range(1, SPLIT_CANDIDATES + 1):
            if cap // d < 1 or (d > 1 and cap // d == cap // (d - 1)):
                continue
            ch = split_k(g, cap // d)
            ct_d, pt_d = _tile_dims(p, cpg, ch[0][1], hw, a_bank, w_bank, c_bank)
            key = (_grid_cycles(p, cpg, ct_d, pt_d, ch, hw) * groups,
                   -(-cpg // ct_d) * -(-p // pt_d) * len(ch), d)
            if best is None or key < best[0]:
                best = (key, ch, ct_d, pt_d)
        _, chunks, ct, pt = best
    runs = groups * -(-cpg // ct) * -(-p // pt) * len(chunks)
    if runs > MAX_PLAN_RUNS:
        raise UnsupportedLayerError(
            f"layer {rec.name}: cannot run on the accelerator: {runs} runs (P={p}, C_out="
            f"{rec.c_out}, {len(chunks)} K-chunks) exceed the plan limit of {MAX_PLAN_RUNS} runs")
    tiles = []
    for grp in range(groups):
        for c in range(0, cpg, ct):
            for p0 in range(0, p, pt):
                tiles.append(Tile(len(tiles), grp, p0, min(pt, p - p0), grp * cpg + c,
                                  min(ct, cpg - c)))
    return TilePlan(rec.name, p, k, g, groups, cpg, tuple(tiles), chunks)


def tile_cycles(tile: Tile, g: int, hw: HwConfig, *, last: bool = True) -> int:
    """Cycle counter of one run of ``g`` groups over ``tile``.

    ``(NB-1)*max(g, ROWS) + g + ROWS + 2``, plus ``RQ_LATENCY`` when the run is a dot product's
    last chunk (``last``; the only kind of run an unsplit layer has).
    """
    nb = math.ceil(tile.rows / hw.rows) * math.ceil(tile.cols / hw.cols)
    return ((nb - 1) * max(g, hw.rows) + g + hw.rows + CONTROL_OVERHEAD
            + (RQ_LATENCY if last else 0))


def chunk_cycles(plan: TilePlan, tile: Tile, hw: HwConfig) -> tuple[int, ...]:
    """Cycle counters of ``tile``'s runs, one per K-chunk of ``plan``, in order."""
    n = len(plan.chunks)
    return tuple(tile_cycles(tile, gs, hw, last=i == n - 1) for i, (_, gs) in enumerate(plan.chunks))


def cycles(rec: LayerRecord, hw: HwConfig, rows: int | None = None) -> int:
    """Predicted total of the accelerator's cycle counter over the layer's runs (exact)."""
    plan = tile_plan(rec, hw, rows)
    return sum(sum(chunk_cycles(plan, t, hw)) for t in plan.tiles)


def per_layer(records: Iterable[LayerRecord], hw: HwConfig) -> dict[str, int]:
    """``{layer name: cycles}``; layers the array does not run (pools, add, flatten, the
    non-linear ops; matmul on a build without zero points) count 0 cycles."""
    ops = array_ops(hw)
    return {r.name: (cycles(r, hw) if r.op in ops else 0) for r in records}


def _useful_per_row(rec: LayerRecord, hw: HwConfig) -> int:
    """Most useful products one GEMM row can have: per ``hw.m``-group, ``min(N, real positions)``.

    Real positions exclude the N:M channel padding of the record and the ``hw.m`` padding of K.
    Used when a record carries no weights (a shape from a topology file).
    """
    if rec.op is OpKind.LINEAR:
        real = np.zeros(rec.k, dtype=np.int64)
        real[:rec.c_in] = 1
    else:
        tap = np.zeros(rec.c_in_p, dtype=np.int64)
        tap[:rec.c_in_g] = 1
        real = np.tile(tap, rec.kh * rec.kw)
    real = np.pad(real, (0, gemm_k(rec, hw) - real.size)).reshape(-1, hw.m).sum(axis=1)
    n = min(hw.n, rec.n) if rec.m == hw.m else hw.n
    return int(np.minimum(real, n).sum())


def macs(rec: LayerRecord, hw: HwConfig, rows: int | None = None) -> dict[str, int]:
    """MAC counts of a MAC layer on ``hw``.

    Returns:
        ``dense``: ``P * C_out * K_real`` (no N:M or M padding: the dense-equivalent work);
        ``issued``: ``P * C_out * G * hw.n`` (multiplier slots the tiles spend on real outputs,
        including products with a zero or padding weight);
        ``nonzero``: ``P * count_nonzero(w_q)`` (products with a nonzero weight; 0 without weights);
        ``useful``: ``nonzero`` when the record has weights, else the structural maximum
        ``P * C_out * sum_groups min(N, real positions in the group)``.
    """
    plan = tile_plan(rec, hw, rows)
    if rec.op is OpKind.MATMUL:   # dense: every product is useful
        r = plan.p * plan.groups
        dense = r * rec.c_out * rec.c_in
        return {"dense": dense, "issued": r * rec.c_out * plan.g * hw.n, "nonzero": dense,
                "useful": dense}
    nz = int(np.count_nonzero(rec.w_q)) if rec.w_q is not None else 0
    useful = plan.p * nz if rec.w_q is not None else plan.p * rec.c_out * _useful_per_row(rec, hw)
    return {"dense": plan.p * rec.c_out * rec.k_real,
            "issued": plan.p * rec.c_out * plan.g * hw.n,
            "nonzero": plan.p * nz,
            "useful": useful}


def utilization(rec: LayerRecord, hw: HwConfig, rows: int | None = None) -> float:
    """``useful MACs / (cycles * ROWS * COLS * N)`` in [0, 1]: the share of multiplier slots doing work.

    Useful MACs are products with a nonzero weight on a real (non-padding) input (see
    :func:`macs`), so padding of ``C_in`` to a multiple of ``M``, zero weights kept in an N:M
    group, idle array edges, fill, drain and stalls all lower it.
    Example: a conv with ``C_in = 1`` on a 2:4 array issues 2 products per group of which at
    most 1 is useful, so its utilization is at most 0.5.
    """
    return macs(rec, hw, rows)["useful"] / (cycles(rec, hw, rows) * hw.rows * hw.cols * hw.n)
