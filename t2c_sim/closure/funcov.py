"""Functional coverage of the accelerator's input space: coverpoints, bins, crosses, holes.

Our own small model rather than cocotb-coverage 2.0: cocotb-coverage samples inside a running
cocotb test through decorators into a process-global ``coverage_db``, while here everything
worth covering is known on the host, before and after the simulator runs (the record, the
tile plan, the golden accumulators and outputs), regression jobs run in parallel processes,
and their coverage must merge as plain data. So a :class:`CoverModel` is a frozen list of
coverpoints (named bins) and crosses built for one :class:`~t2c_sim.config.HwConfig`;
:meth:`CoverModel.sample` maps a record (plus optional extra samplers) to the bins it hits;
a :class:`Coverage` holds hit counts as JSON and :meth:`Coverage.merge` adds counts (associative
and commutative, so jobs merge in any order). Bins a configuration cannot reach are listed as
*unreachable* with the reason and are not holes; shape bins (scratchpad limits, K-split
shapes) are found reachable or not by searching the tile plan (:func:`shape_plans`), which
also gives the generator a shape for each.

Coverpoints (per MAC record on the array ``hw``; ``G = ceil(K / hw.m)``):

================ ==========================================================================
layer_kind       linear, conv, conv_grouped (1 < groups < c_in), conv_depthwise
p_class          P = 1, 1 < P < ROWS, P = ROWS, P > ROWS
cols_class       C_out < COLS, C_out = COLS, C_out > COLS (per conv group)
k_mod_m          K (real, per group) mod hw.m: r0 .. r{m-1}
g_vs_rows        G < ROWS (drain stall), G = ROWS, G > ROWS
k_chunks         K-chunks per dot product (accelerator runs per tile): 1, 2, many
ksplit           in a K-split layer: the last chunk is shorter than ROWS (a partial-sum run
                 that stalls), several tiles (the accumulator memory reused), a partial row
                 block or column block in a partial-sum run (the masked lanes of the drain's
                 adder), several blocks per run (partial-sum addresses stepping), a partial
                 sum that wraps at a chunk boundary (``psum_wrap``)
tiles            one tile, several tiles
tile_rem         per tile, the last row / column block: rows full|partial x cols full|partial
limits           a tile fills a scratchpad exactly (``out_full``: rows*CB = OUT_DEPTH,
                 ``act_full``: ceil(rows/ROWS)*G = ACT_DEPTH/ROWS, ``wgt_full``: CB*G =
                 W_DEPTH/COLS, ``ch_full``: CB = CH_DEPTH/COLS), ``sh=SHIFT_MAX`` (legal, no
                 error flag), ``lo=hi`` (a one-value clamp): the edges of the start-time and
                 run-time checks (``err_o``), where an off-by-one refuses a legal layer
nm_pattern       every index pattern of the array's N:M (``hw.n`` sorted indices of ``hw.m``),
                 from the weights re-compressed to ``hw.n:hw.m``
round            rounding x (tie | no_tie), over the four section-2 modes and the three runtime
                 profiles (``ort_fp32``, ``tflite_double``, ``tflite_single``; unreachable on a
                 build without profiles or with an ``M0`` too narrow for them). A section-2 tie
                 is an exact product ``acc*M0`` whose shifted-out bits are exactly one half
                 (``sh > 0`` and ``acc*M0 mod 2^sh == 2^(sh-1)``); a profile's tie is one of
                 any of its rounding steps (:func:`profile_ties`)
params           per_channel (``[C_out]``), per_row (token-wise ``[P, C_out]``, the per-row
                 parameter memory; unreachable without ``row_params``)
matmul           activation x activation matmuls (unreachable without ``zero_points``): the
                 operand zero points (``zp_none``, ``zp_a``, ``zp_b``: only that operand's is
                 nonzero, ``zp_both``), ``trans_b``, ``lead_dims`` (several GEMMs), an unsigned
                 second operand ``b_unsigned``. A matmul samples ``round``, ``shift``,
                 ``saturation``, ``params``, ``z_y``, ``a_signed``, ``p_class``,
                 ``cols_class`` and this point; the shape points of the tile plan come from
                 linear and conv layers
shift            sh = 0, 1..31, 32..63
saturation       high (``z_y + round_shift(acc*M0) > hi``), low (``< lo``), none
acc_wrap         wrapped (golden acc != unwrapped ``bias_eff + x.w`` sum), exact
z_x / z_y        min, zero, max, other (of the record's input / output format range)
a_signed         signed, unsigned
backpressure     none, sparse, bursty, stalled: fed by :meth:`Coverage.sample_backpressure`
                 (the stream DUT profile); unreachable on the memory-mapped accelerator
================ ==========================================================================

Crosses: ``layer_kind x p_class``, ``layer_kind x cols_class``, ``k_chunks x layer_kind``
(a K-split conv goes through im2col, a split depthwise conv has one channel per group);
``round x a_signed`` is not
crossed (rounding is after the accumulator); ``saturation x round`` is left out (every
saturated value is clamped whatever the rounding).

Example::

    model = CoverModel(hw)
    cov = model.empty()
    cov.add(model.sample(rec))
    cov.holes()                 # [("round", "half_up/tie"), ...]
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from t2c_sim import estimate
from t2c_sim.closure.coverdb import BACKPRESSURE_BINS, Coverage, merge_all
from t2c_sim.config import HwConfig, OpKind, RoundMode, RoundProfile
from t2c_sim.cosim.run import Gemm, to_gemm
from t2c_sim.errors import ConfigError
from t2c_sim.estimate.model import per_row_params
from t2c_sim.numerics import round_shift, wrap
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.rounding_profiles import requantize_profile, srdhm

__all__ = ["CoverModel", "Coverage", "ChunkSampler", "Hits", "BACKPRESSURE_BINS", "LIMIT_BINS",
           "KSPLIT_BINS", "MATMUL_BINS", "PROFILES", "shape_plans", "shape_record", "merge_all",
           "limit_plans", "limit_reachability", "profile_ties"]

ChunkSampler = Callable[[LayerRecord, HwConfig], int]
Hits = dict[str, set[str]]
LIMIT_BINS = ("out_full", "act_full", "wgt_full", "ch_full", "sh=SHIFT_MAX", "lo=hi")
KSPLIT_BINS = ("short_last_chunk", "multi_tile", "partial_rows", "partial_cols", "multi_block",
               "psum_wrap")
MODES = tuple(m.value for m in RoundMode)
PROFILES = tuple(p.value for p in RoundProfile)
MATMUL_BINS = ("zp_none", "zp_a", "zp_b", "zp_both", "trans_b", "lead_dims", "b_unsigned")
#: ``M0`` width each profile needs (``t2c_sim.workloads.requant_cases.profiles_fitting``)
PROFILE_MULT_BITS = {"ort_fp32": 24, "tflite_double": 31, "tflite_single": 31}


def shape_record(p: int, g: int, cpg: int, hw: HwConfig) -> LayerRecord:
    """A shape-only linear record: ``P = p`` rows, ``K = g * hw.m``, ``C_out = cpg``."""
    return LayerRecord(name="shape", op=OpKind.LINEAR, c_in=g * hw.m, c_out=cpg, n=hw.n, m=hw.m,
                       x_q=np.zeros((p, 1), dtype=np.int64))


def _limit_hits(plan: estimate.TilePlan, hw: HwConfig) -> set[str]:
    """Scratchpad-limit bins the runs of ``plan`` hit (a run of ``gs`` groups over a tile)."""
    a_bank, w_bank, c_bank = hw.act_depth // hw.rows, hw.w_depth // hw.cols, hw.ch_depth // hw.cols
    out = set()
    for t in plan.tiles:
        cb, qr = -(-t.cols // hw.cols), -(-t.rows // hw.rows)
        if t.rows * cb == hw.out_depth:
            out.add("out_full")
        if cb == c_bank:
            out.add("ch_full")
        for _, gs in plan.chunks:
            if qr * gs == a_bank:
                out.add("act_full")
            if cb * gs == w_bank:
                out.add("wgt_full")
    return out


def _ksplit_hits(plan: estimate.TilePlan, hw: HwConfig) -> set[str]:
    """The shape bins of ``ksplit`` (``psum_wrap`` needs the data: see :meth:`CoverModel.sample`)."""
    if not plan.split:
        return set()
    out = set()
    if plan.chunks[-1][1] < hw.rows:
        out.add("short_last_chunk")
    if len(plan.tiles) > 1:
        out.add("multi_tile")
    for t in plan.tiles:
        if t.rows % hw.rows:
            out.add("partial_rows")
        if t.cols % hw.cols:
            out.add("partial_cols")
        if -(-t.rows // hw.rows) * -(-t.cols // hw.cols) > 1:
            out.add("multi_block")
    return out


def _chunk_bin(n: int) -> str:
    return "1" if n <= 1 else "2" if n == 2 else "many"


@functools.lru_cache(maxsize=64)
def shape_plans(hw: HwConfig) -> Mapping[str, tuple[int, int, int]]:
    """A GEMM ``(P, G, C_out)`` per shape bin it hits on ``hw``: ``"limits/out_full"``,
    ``"k_chunks/many"``, ``"ksplit/short_last_chunk"``, ...

    Found by search over single-group linear layers through the tile plan
    (:func:`t2c_sim.estimate.tile_plan`): unsplit layers over every ``G`` that fits and every
    channel-block count, each at the largest row count one tile holds; K-split layers over
    ``G`` from just past the banks to six times them, a few row and channel counts around the
    array's and past one tile's capacity. A bin missing from the result is not reachable by
    these shapes (the model lists
    it as unreachable with that reason). ``ksplit/psum_wrap`` needs only a split shape.
    """
    a_bank, w_bank, c_bank = hw.act_depth // hw.rows, hw.w_depth // hw.cols, hw.ch_depth // hw.cols
    found: dict[str, tuple[int, int, int]] = {}

    def note(plan: estimate.TilePlan, p: int, g: int, cpg: int) -> None:
        bins = {f"limits/{b}" for b in _limit_hits(plan, hw)}
        bins |= {f"ksplit/{b}" for b in _ksplit_hits(plan, hw)}
        bins.add(f"k_chunks/{_chunk_bin(len(plan.chunks))}")
        if plan.split:
            bins.add("ksplit/psum_wrap")
        for b in sorted(bins):
            found.setdefault(b, (p, g, cpg))

    cap = min(a_bank, w_bank)
    for g in range(1, cap + 1):  # unsplit: the first tile at its largest row count
        col_cap = hw.cols * min(w_bank // g, c_bank, hw.out_depth)
        for cb in range(1, -(-col_cap // hw.cols) + 1):
            cols = min(cb * hw.cols, col_cap)
            row_cap = min(hw.rows * (a_bank // g), hw.out_depth // cb)
            if row_cap >= hw.rows:
                row_cap -= row_cap % hw.rows
            if row_cap >= 1:
                note(estimate.tile_plan(shape_record(row_cap, g, cols, hw), hw), row_cap, g, cols)
    # rows and channels around the array's, and past what one tile can hold (several tiles)
    ps = sorted({1, hw.rows, hw.rows + 1, 3 * hw.rows + 1, hw.out_depth + 1})
    cs = sorted({1, hw.cols, hw.cols + 1, 2 * hw.cols + 1, hw.cols * c_bank + 1})
    gs = sorted({*range(cap + 1, cap + 1 + min(cap, 24)), *(k * cap + 1 for k in (2, 3, 4, 6))})
    for g in gs:
        for p in ps:
            for c in cs:
                note(estimate.tile_plan(shape_record(p, g, c, hw), hw), p, g, c)
    return found


def limit_plans(hw: HwConfig) -> dict[str, tuple[int, int, int]]:
    """For each scratchpad-limit bin a GEMM ``(P, G, C_out)`` that hits it (see :func:`shape_plans`)."""
    return {k.split("/", 1)[1]: v for k, v in shape_plans(hw).items() if k.startswith("limits/")}


def limit_reachability(hw: HwConfig) -> dict[str, str]:
    """``{limit bin: reason}`` for the scratchpad-limit bins no layer can hit on ``hw``."""
    plans = limit_plans(hw)
    return {b: "no tile of the plan fills this scratchpad exactly on this array"
            for b in ("out_full", "act_full", "wgt_full", "ch_full") if b not in plans}


@dataclass(frozen=True)
class CoverModel:
    """Coverpoints and crosses for one array configuration (see the module docstring).

    Args:
        hw: The array.
        chunk_sampler: ``(rec, hw) -> chunks`` per dot product of a DUT whose K-chunks are not
            the accelerator's tile plan (``None``: the plan's, :func:`t2c_sim.estimate.tile_plan`).
        stream: True for a stream DUT (the ``backpressure`` bins become reachable; they are
            fed by :meth:`Coverage.sample_backpressure` from the DUT's own sampler).
    """

    hw: HwConfig
    chunk_sampler: ChunkSampler | None = None
    stream: bool = False
    points: dict[str, tuple[str, ...]] = field(init=False, compare=False)
    crosses: tuple[tuple[str, str], ...] = field(init=False, compare=False)
    unreachable: dict[str, str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        hw = self.hw
        pats = tuple(",".join(map(str, c)) for c in itertools.combinations(range(hw.m), hw.n))
        pts = {
            "layer_kind": ("linear", "conv", "conv_grouped", "conv_depthwise"),
            "p_class": ("P=1", "1<P<ROWS", "P=ROWS", "P>ROWS"),
            "cols_class": ("C_out<COLS", "C_out=COLS", "C_out>COLS"),
            "k_mod_m": tuple(f"r{i}" for i in range(hw.m)),
            "g_vs_rows": ("G<ROWS", "G=ROWS", "G>ROWS"),
            "k_chunks": ("1", "2", "many"),
            "ksplit": KSPLIT_BINS,
            "tiles": ("one", "several"),
            "tile_rem": ("rows_full/cols_full", "rows_full/cols_partial",
                         "rows_partial/cols_full", "rows_partial/cols_partial"),
            "limits": LIMIT_BINS,
            "nm_pattern": pats,
            "round": tuple(f"{m}/{t}" for m in (*MODES, *PROFILES) for t in ("tie", "no_tie")),
            "params": ("per_channel", "per_row"),
            "matmul": MATMUL_BINS,
            "shift": ("0", "1-31", "32-63"),
            "saturation": ("high", "low", "none"),
            "acc_wrap": ("wrapped", "exact"),
            "z_x": ("min", "zero", "max", "other"),
            "z_y": ("min", "zero", "max", "other"),
            "a_signed": ("signed", "unsigned"),
            "backpressure": BACKPRESSURE_BINS,
        }
        crosses = (("layer_kind", "p_class"), ("layer_kind", "cols_class"),
                   ("k_chunks", "layer_kind"))
        un: dict[str, str] = {}
        if hw.rows == 1:
            for b in ("1<P<ROWS", "P=ROWS"):
                un[f"p_class/{b}"] = "ROWS = 1 (P = 1 is P = ROWS)"
            for b in ("rows_partial/cols_full", "rows_partial/cols_partial"):
                un[f"tile_rem/{b}"] = "ROWS = 1: every row block is full"
            un["g_vs_rows/G<ROWS"] = "ROWS = 1: G >= 1"
        for b, why in limit_reachability(hw).items():
            un[f"limits/{b}"] = why
        plans = shape_plans(hw)
        if self.chunk_sampler is None:
            for b in ("2", "many"):
                if f"k_chunks/{b}" not in plans:
                    un[f"k_chunks/{b}"] = ("no tile plan of this many K-chunks on this array "
                                           "(searched up to G = 6x the banks)")
            for b in KSPLIT_BINS:
                if f"ksplit/{b}" not in plans:
                    un[f"ksplit/{b}"] = ("no K-split tile plan of this shape on this array "
                                         "(searched up to G = 6x the banks)")
        else:
            for b in KSPLIT_BINS:
                un[f"ksplit/{b}"] = "the DUT's K-chunks are not the accelerator's tile plan"
        for prof in PROFILES:
            why = "a build without rounding profiles (profiles: 0)" if not hw.profiles else \
                (f"M0 of mult_bits = {hw.mult_bits} is too narrow for {prof} (needs "
                 f"{PROFILE_MULT_BITS[prof]})" if hw.mult_bits < PROFILE_MULT_BITS[prof] else None)
            if why:
                for t in ("tie", "no_tie"):
                    un[f"round/{prof}/{t}"] = why
        if not hw.row_params:
            un["params/per_row"] = "a build without the per-row parameter memory (row_params: 0)"
        if not hw.zero_points:
            for b in MATMUL_BINS:
                un[f"matmul/{b}"] = "a build without operand zero points (zero_points: 0)"
        if hw.rows == 2:
            un["p_class/1<P<ROWS"] = "ROWS = 2: no P strictly between 1 and ROWS"
        if hw.shift_max < 32:
            un["shift/32-63"] = f"shift_max = {hw.shift_max}"
        if hw.cols == 1:
            un["cols_class/C_out<COLS"] = "COLS = 1"
            for b in ("rows_full/cols_partial", "rows_partial/cols_partial"):
                un[f"tile_rem/{b}"] = "COLS = 1: every column block is full"
        if not self.stream:
            for b in BACKPRESSURE_BINS:
                un[f"backpressure/{b}"] = "memory-mapped accelerator: no stream interface"
        dw = "conv_depthwise has one output channel per conv group"
        for y in ("C_out=COLS", "C_out>COLS") if hw.cols > 1 else ("C_out>COLS",):
            un[f"layer_kind*cols_class/conv_depthwise*{y}"] = dw
        for a, b in crosses:
            pts[f"{a}*{b}"] = tuple(f"{x}*{y}" for x in pts[a] for y in pts[b])
            for x in pts[a]:
                for y in pts[b]:
                    why = un.get(f"{a}/{x}") or un.get(f"{b}/{y}")
                    if why:
                        un[f"{a}*{b}/{x}*{y}"] = why
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "crosses", crosses)
        object.__setattr__(self, "unreachable", un)

    @property
    def key(self) -> str:
        """Identifies the bin set (two coverages merge only when their keys agree)."""
        return json.dumps({"hw": self.hw.to_dict(), "chunks": "plan" if self.chunk_sampler is None
                           else "sampler", "stream": self.stream}, sort_keys=True)

    def empty(self) -> Coverage:
        return Coverage(self.key, {p: {b: 0 for b in bins} for p, bins in self.points.items()},
                        dict(self.unreachable))

    # ------------------------------------------------------------------------------ sampling
    def sample(self, rec: LayerRecord) -> Hits:
        """Bins hit by one MAC record with golden ``acc`` and ``y`` (see the module docstring).

        Raises:
            ConfigError: Not a MAC layer, or the golden ``acc`` is missing.
            UnsupportedLayerError: The array cannot run the record.
        """
        hw = self.hw
        if rec.op is OpKind.MATMUL:
            return self._sample_matmul(rec)
        if rec.op not in MAC_OPS:
            raise ConfigError(f"layer {rec.name}: {rec.op.value} is not a MAC layer")
        if rec.acc is None or rec.bias_eff is None:
            raise ConfigError(f"layer {rec.name}: coverage needs the golden acc and bias_eff")
        h: Hits = {p: set() for p in self.points}
        h["params"].add("per_row" if per_row_params(rec) else "per_channel")
        gm = to_gemm(rec, hw)
        plan = gm.plan
        if rec.op is OpKind.LINEAR:
            h["layer_kind"].add("linear")
        elif rec.groups == 1:
            h["layer_kind"].add("conv")
        else:
            h["layer_kind"].add("conv_depthwise" if rec.groups == rec.c_in == rec.c_out
                                else "conv_grouped")
        p = plan.p
        h["p_class"].add("P=1" if p == 1 else "1<P<ROWS" if p < hw.rows else
                         "P=ROWS" if p == hw.rows else "P>ROWS")
        c = plan.c_per_group
        h["cols_class"].add("C_out<COLS" if c < hw.cols else "C_out=COLS" if c == hw.cols
                            else "C_out>COLS")
        kr = rec.k_real if rec.op is OpKind.LINEAR else rec.kh * rec.kw * rec.c_in_g
        h["k_mod_m"].add(f"r{kr % hw.m}")
        for _, g in plan.chunks:  # the G of each run
            h["g_vs_rows"].add("G<ROWS" if g < hw.rows else "G=ROWS" if g == hw.rows
                               else "G>ROWS")
        chunks = len(plan.chunks) if self.chunk_sampler is None else \
            int(self.chunk_sampler(rec, hw))
        h["k_chunks"].add(_chunk_bin(chunks))
        if self.chunk_sampler is None:
            h["ksplit"] |= _ksplit_hits(plan, hw)
        h["tiles"].add("one" if len(plan.tiles) == 1 else "several")
        for t in plan.tiles:
            r = "rows_full" if t.rows % hw.rows == 0 else "rows_partial"
            cc = "cols_full" if t.cols % hw.cols == 0 else "cols_partial"
            h["tile_rem"].add(f"{r}/{cc}")
        h["limits"] |= _limit_hits(plan, hw)
        if int(rec.sh.max()) == hw.shift_max:
            h["limits"].add("sh=SHIFT_MAX")
        if rec.lo == rec.hi:
            h["limits"].add("lo=hi")
        for pat in {tuple(row) for row in gm.indices.reshape(-1, hw.n).tolist()}:
            h["nm_pattern"].add(",".join(map(str, pat)))
        self._requant(rec, h)
        wrapped, psum = _wraps(gm, rec)
        h["acc_wrap"].add("wrapped" if wrapped else "exact")
        if psum and self.chunk_sampler is None:
            h["ksplit"].add("psum_wrap")
        for name, val, rng in (("z_x", rec.z_x, rec.x_range), ("z_y", rec.z_y, rec.y_range)):
            lo, hi = rng
            h[name].add("min" if val == lo else "max" if val == hi else "zero" if val == 0
                        else "other")
        h["a_signed"].add("signed" if rec.a_signed else "unsigned")
        for a, b in self.crosses:
            h[f"{a}*{b}"] = {f"{x}*{y}" for x in h[a] for y in h[b]}
        return h

    def _sample_matmul(self, rec: LayerRecord) -> Hits:
        """Bins of an activation x activation matmul (see the module docstring)."""
        if rec.acc is None:
            raise ConfigError(f"layer {rec.name}: coverage needs the golden acc")
        hw = self.hw
        h: Hits = {p: set() for p in self.points}
        h["params"].add("per_row" if per_row_params(rec) else "per_channel")
        za, zb = int(rec.z_x) != 0, int(rec.z_b) != 0
        h["matmul"].add("zp_both" if za and zb else "zp_a" if za else "zp_b" if zb
                        else "zp_none")
        if rec.trans_b:
            h["matmul"].add("trans_b")
        if rec.x_q is not None and rec.x_q.ndim > 2 and int(np.prod(rec.x_q.shape[:-2])) > 1:
            h["matmul"].add("lead_dims")
        if not rec.b_signed:
            h["matmul"].add("b_unsigned")
        p, c = int(rec.acc.shape[-2]), rec.c_out
        h["p_class"].add("P=1" if p == 1 else "1<P<ROWS" if p < hw.rows else
                         "P=ROWS" if p == hw.rows else "P>ROWS")
        h["cols_class"].add("C_out<COLS" if c < hw.cols else "C_out=COLS" if c == hw.cols
                            else "C_out>COLS")
        r = int(np.prod(rec.acc.shape[:-1]))
        bias = np.zeros(1, np.int64) if rec.bias_eff is None else rec.bias_eff
        view = rec.replace(acc=rec.acc.reshape(r, c),
                           **{k: np.broadcast_to(v.reshape(-1, v.shape[-1]) if v.ndim == 2
                                                 else v, (r, c) if v.ndim == 2 else v.shape)
                              for k, v in (("bias_eff", bias), ("M0", rec.M0), ("sh", rec.sh))})
        self._requant(view, h)
        ylo, yhi = rec.y_range
        h["z_y"].add("min" if rec.z_y == ylo else "max" if rec.z_y == yhi else
                     "zero" if rec.z_y == 0 else "other")
        h["a_signed"].add("signed" if rec.a_signed else "unsigned")
        return h

    @staticmethod
    def _requant(rec: LayerRecord, h: Hits) -> None:
        """Ties, shifts and saturation, per output with the channel's (or row's) parameters."""
        acc = rec.acc.reshape(-1, rec.c_out)
        sh = np.broadcast_to(rec.sh.astype(np.int64), acc.shape)
        if isinstance(rec.mode, RoundProfile):
            m0 = np.broadcast_to(rec.M0.astype(np.int64), acc.shape)
            tie = profile_ties(acc, m0, sh, rec.mode)
            name = rec.mode.value
            if tie.any():
                h["round"].add(f"{name}/tie")
            if (~tie).any():
                h["round"].add(f"{name}/no_tie")
            for s in set(sh.ravel().tolist()):
                h["shift"].add("0" if s == 0 else "1-31" if s < 32 else "32-63")
            wide = 1 << 40
            pre = requantize_profile(acc, m0, sh, rec.z_y, -wide, wide, rec.mode)
            _saturation(pre, rec, h)
            return
        big = int(np.abs(acc).max(initial=0)) * int(rec.M0.max(initial=0)) >= 1 << 62
        if big or int(sh.max(initial=0)) >= 62:  # exact in Python integers
            prod = acc.astype(object) * rec.M0.astype(object)
            one = np.ones_like(sh, dtype=object)
            shi = sh.astype(object)
        else:
            prod = acc * rec.M0.astype(np.int64)
            one = np.ones_like(sh)
            shi = sh
        half = np.where(sh > 0, one << np.maximum(shi - 1, 0), 0)
        tie = (sh > 0) & ((prod & ((one << shi) - 1)) == half)
        mode = rec.mode.value
        if tie.any():
            h["round"].add(f"{mode}/tie")
        if (~tie).any():
            h["round"].add(f"{mode}/no_tie")
        for s in set(sh.ravel().tolist()):
            h["shift"].add("0" if s == 0 else "1-31" if s < 32 else "32-63")
        pre = round_shift(prod, shi, rec.mode) + rec.z_y
        _saturation(pre, rec, h)


def _saturation(pre: np.ndarray, rec: LayerRecord, h: Hits) -> None:
    """Saturation bins of the values before the clamp."""
    if (pre > rec.hi).any():
        h["saturation"].add("high")
    if (pre < rec.lo).any():
        h["saturation"].add("low")
    if ((pre >= rec.lo) & (pre <= rec.hi)).any():
        h["saturation"].add("none")


def _half(v: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Whether the low ``k`` bits of ``v`` (int64, ``0 <= k <= 62``) are exactly one half
    (``k > 0`` and ``v mod 2^k == 2^(k-1)``; two's complement for negative ``v``)."""
    kk = np.clip(k, 1, 62)
    one = np.int64(1)
    return (k > 0) & ((v & ((one << kk) - 1)) == (one << (kk - 1)))


def _f32_round(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float32 rounding of non-negative int64 ``v`` (< 2^53): ``(sig, k, tie)``, ``sig * 2^k``
    the nearest value of 24 significant bits (ties to even), ``tie`` where it was a tie."""
    bits = np.frexp(v.astype(np.float64))[1].astype(np.int64)  # exact bit length below 2^53
    k = np.maximum(bits - 24, 0)
    return round_shift(v, k, RoundMode.HALF_EVEN), k, _half(v, k)


def profile_ties(acc: np.ndarray, M0: np.ndarray, sh: np.ndarray,
                 profile: RoundProfile | str) -> np.ndarray:
    """Per output, whether any rounding step of ``profile`` meets an exact tie
    (:mod:`t2c_sim.rounding_profiles` has the steps):

    * ``ort_fp32``: ``float32(acc)``, the float32 product, or the final ``rint`` to an integer;
    * ``tflite_double``: SRDHM (``x * M0 mod 2^31 == 2^30``) or RoundingDivideByPOT;
    * ``tflite_single``: the one rounding shift (``acc * M0 mod 2^sh == 2^(sh-1)``).

    ``acc`` int32 values, ``M0``/``sh`` valid for the profile, all broadcast to one shape.
    """
    profile = RoundProfile(profile)
    acc, M0, sh = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (acc, M0, sh)))
    if profile is RoundProfile.TFLITE_SINGLE:
        return _half(acc * M0, sh)
    if profile is RoundProfile.TFLITE_DOUBLE:
        shift = 31 - sh
        x = wrap(acc << np.maximum(shift, 0), 32)
        right = np.maximum(-shift, 0)
        return _half(x * M0, np.full_like(sh, 31)) | _half(srdhm(x, M0), right)
    a_sig, a_k, t1 = _f32_round(np.abs(acc))
    p_sig, p_k, t2 = _f32_round(a_sig * M0)
    e = a_k + p_k - sh
    t3 = (e < 0) & (-e <= 62) & _half(p_sig, np.clip(-e, 0, 62))
    return t1 | t2 | t3


def _wraps(gm: Gemm, rec: LayerRecord) -> tuple[bool, bool]:
    """``(the golden acc differs from the exact sum, an exact partial sum at the end of a
    non-last K-chunk lies outside the accumulator's range)``.

    Exact sums in int64 when ``A_BITS + W_BITS + log2(K) + 2`` bits fit (every layer the
    limits admit), else in Python integers.
    """
    n_g, p, k = gm.cols.shape
    cpg = rec.c_out // n_g
    w = np.zeros((rec.c_out, k), dtype=np.int64)
    w[:, :rec.w_q.shape[1]] = rec.w_q
    exact_ok = rec.a_bits + rec.w_bits + max(1, k).bit_length() + 2 < 62
    dt = np.int64 if exact_ok else object
    lo, hi = -(1 << (rec.acc_bits - 1)), (1 << (rec.acc_bits - 1)) - 1
    run = np.broadcast_to(rec.bias_eff.astype(dt), (p, rec.c_out)).copy()
    psum = False
    m = gm.hw.m
    for i, (g0, gs) in enumerate(gm.plan.chunks):
        k0, k1 = g0 * m, (g0 + gs) * m
        part = np.concatenate([gm.cols[gi, :, k0:k1].astype(dt)
                               @ w[gi * cpg:(gi + 1) * cpg, k0:k1].astype(dt).T
                               for gi in range(n_g)], axis=1)
        run = run + part
        if i < len(gm.plan.chunks) - 1 and ((run < lo) | (run > hi)).any():
            psum = True
    wrapped = not np.array_equal(run, rec.acc.reshape(-1, rec.c_out).astype(dt))
    return wrapped, psum
