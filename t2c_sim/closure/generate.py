"""Coverage-driven random layers: generate records aimed at the holes of a coverage model.

:func:`close_coverage` repeats: pick a hole (seeded), turn it into constraints on the knobs
of a layer (kind, rows ``P``, channels, reduction length, rounding mode, a forced tie,
shift class, saturation, accumulator wrap, zero points, signedness, an N:M index pattern),
draw the remaining knobs at random, build the record with :mod:`t2c_sim.workloads.gen` plus
the edits the constraints need, recompute its golden ``acc``/``y``, sample it into the
coverage, and keep it when it hit a bin no earlier record hit. It stops when every reachable
bin is hit or the budget (records tried, seconds) runs out, and returns the kept records,
the coverage and the remaining holes. Same model, seed and count budget: same records.

How a constraint is met (``hw`` is the array; ``G = ceil(K / hw.m)``):

* ties: ``M0 = 2^(s-1)`` with ``1 <= s <= 31``, so every odd accumulator is an exact half;
* shift 0: ``M0`` in 1..3, ``sh = 0``; saturation: unit gain (``M0 = 1``, ``sh = 0``) makes
  accumulators of a few hundred overflow an 8-bit output both ways;
* wrap: ``bias_eff`` within 64 of the accumulator's maximum (``wrap_ok`` set);
* conv shapes: one output row (``h = kh``, ``w = kw + P - 1``, no padding), so ``P`` is exact;
* an N:M pattern: channel 0's first group holds nonzeros exactly at the pattern's indices;
* a rounding profile: a section-2 record made as above, then
  :func:`t2c_sim.workloads.gen.with_profile` (float scales drawn to give the record's
  multiplier, ``M0``/``sh`` as an importer makes them); a profile tie sets every multiplier to
  one half at the last step (``ort_fp32``: ``M0 = 2^23, sh = 24``; ``tflite_*``: ``M0 = 2^30,
  sh = 32``), so odd (or ``2 mod 4``) accumulators are exact ties;
* per-row parameters: a token-wise linear record (``bias_eff``/``M0``/``sh`` ``[P, C_out]``);
* a matmul: :func:`t2c_sim.workloads.gen.random_matmul_record` with the zero points, the
  transposed or unsigned second operand, leading dims, per-row parameters and ``P``/``C``
  classes asked for (section-2 modes: profiles replace the requantizer of linear and conv).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from t2c_sim import estimate
from t2c_sim.closure.funcov import (
    MODES,
    PROFILE_MULT_BITS,
    Coverage,
    CoverModel,
    shape_plans,
    shape_record,
)
from t2c_sim.config import HwConfig, qrange
from t2c_sim.golden.layers import run_layer
from t2c_sim.record import LayerRecord
from t2c_sim.sparse.nm import compress
from t2c_sim.workloads.gen import (
    random_conv_record,
    random_linear_record,
    random_matmul_record,
    with_profile,
)

__all__ = ["ClosureResult", "close_coverage", "knobs_for", "build_record", "regolden"]

log = logging.getLogger(__name__)

OUT_BITS = 8   # output width of the generated records


@dataclass
class ClosureResult:
    """What :func:`close_coverage` produced."""

    records: list[LayerRecord]
    coverage: Coverage
    holes: list[tuple[str, str]]
    tried: int
    seconds: float


def _g_max(hw: HwConfig) -> int:
    return max(1, min(hw.act_depth // hw.rows, hw.w_depth // hw.cols, 24))


def knobs_for(hole: tuple[str, str], hw: HwConfig, rng: np.random.Generator) -> dict:
    """Constraints that aim one record at ``hole`` (``(coverpoint, bin)``); others stay random."""
    point, b = hole
    k: dict = {}
    parts = [(point, b)]
    if "*" in point:
        parts = list(zip(point.split("*"), b.split("*")))
    for p, v in parts:
        if p in ("layer_kind", "p_class", "cols_class", "g_vs_rows", "tiles", "a_signed",
                 "z_x", "z_y", "shift", "saturation", "nm_pattern", "limits", "k_chunks",
                 "ksplit", "params", "matmul"):
            k[p] = v
        elif p == "k_mod_m":
            k[p] = int(v[1:])
        elif p == "round":
            mode, tie = v.split("/")
            k["mode"], k["tie"] = mode, tie == "tie"
        elif p == "acc_wrap":
            k["wrap"] = v == "wrapped"
        elif p == "tile_rem":
            r, c = v.split("/")
            k["rows_partial"], k["cols_partial"] = r == "rows_partial", c == "cols_partial"
    return k


def _pick_p(k: dict, hw: HwConfig, rng: np.random.Generator, row_cap: int) -> int:
    cls = k.get("p_class")
    if k.get("tiles") == "several":
        p = row_cap + 1 + int(rng.integers(0, hw.rows + 1))
    elif cls == "P=1":
        p = 1
    elif cls == "1<P<ROWS" and hw.rows > 2:
        p = int(rng.integers(2, hw.rows))
    elif cls == "P=ROWS":
        p = hw.rows
    elif cls == "P>ROWS" or k.get("tiles") == "one":
        p = int(rng.integers(hw.rows + 1, 3 * hw.rows + 2))
    else:
        p = int(rng.integers(1, 3 * hw.rows + 2))
    if "rows_partial" in k and hw.rows > 1:
        if k["rows_partial"] and p % hw.rows == 0:
            p += 1
        if not k["rows_partial"] and p % hw.rows:
            p += hw.rows - p % hw.rows
    if k.get("tiles") == "one":
        p = min(p, row_cap)
    return max(1, p)


def _depthwise_g(hw: HwConfig, p: int, want: str, g0: int) -> int:
    """Taps (= groups G) of a depthwise conv (one channel per group) that the plan splits into
    ``want`` ("2" or "many") chunks, searched upward from ``g0``."""
    for g in range(g0, g0 + 8 * (hw.act_depth + hw.w_depth) + 2):
        n = len(estimate.tile_plan(shape_record(p, g, 1, hw), hw).chunks)
        if (n == 2) if want == "2" else (n > 2):
            return g
    return g0


def _profile_ok(mode: str, hw: HwConfig) -> bool:
    return mode in PROFILE_MULT_BITS and bool(hw.profiles) and hw.acc_bits == 32 \
        and hw.mult_bits >= PROFILE_MULT_BITS[mode]


def build_record(k: dict, hw: HwConfig, rng: np.random.Generator, name: str) -> LayerRecord:
    """A valid record for ``hw`` meeting the knob constraints ``k`` (see the module docstring)."""
    if k.get("matmul"):
        return _matmul_record(k, hw, rng, name)
    mode = k.get("mode")
    if mode in PROFILE_MULT_BITS:
        if not _profile_ok(mode, hw):
            mode = None
        base = {key: v for key, v in k.items() if key not in ("mode", "tie", "shift", "limits",
                                                               "saturation")}
        rec = build_record({**base, "mode": "half_even"}, hw, rng, name)
        rec = with_profile(rng, rec, mode) if mode else rec
        if mode and k.get("tie"):
            m0, sh = ((1 << 23, 24) if mode == "ort_fp32" else (1 << 30, 32))
            rec = regolden(rec.replace(M0=np.full(rec.M0.shape, m0, np.int64),
                                       sh=np.full(rec.sh.shape, sh, np.int64)))
        return rec
    if k.get("params") == "per_row" and hw.row_params:
        k = {**k, "layer_kind": "linear", "token_wise": True}
    m = hw.m
    plans = shape_plans(hw)
    lim = k.get("limits")
    if f"limits/{lim}" in plans:  # a linear GEMM whose first tile fills the scratchpad exactly
        p, g, cols = plans[f"limits/{lim}"]
        k = {**k, "layer_kind": "linear", "g": g, "p": p, "cpg": cols}
    shape = next((plans[f"{pt}/{k[pt]}"] for pt in ("ksplit", "k_chunks")
                  if f"{pt}/{k.get(pt)}" in plans and k.get(pt) != "1"), None)
    if shape is not None:  # a GEMM the plan splits as asked (any layer kind: same GEMM)
        p, g, cols = shape
        k = {**k, "g": g, "p": p, "cpg": cols}
        if k.get("ksplit") == "psum_wrap":
            k["wrap"] = True
    kind = k.get("layer_kind") or str(rng.choice(["linear", "conv", "conv_grouped",
                                                  "conv_depthwise"]))
    if kind == "conv_depthwise" and k.get("k_chunks") in ("2", "many"):
        k = {**k, "g": _depthwise_g(hw, k["p"], k["k_chunks"], k["g"])}
    gmax = _g_max(hw)
    gcls = k.get("g_vs_rows")
    if "g" in k:
        g = k["g"]
    elif gcls == "G<ROWS" and hw.rows > 1:
        g = int(rng.integers(1, min(hw.rows, gmax + 1)))
    elif gcls == "G=ROWS":
        g = min(hw.rows, gmax)
    elif gcls == "G>ROWS":
        g = int(rng.integers(min(hw.rows + 1, gmax), gmax + 1))
    else:
        g = int(rng.integers(1, min(gmax, 3 * hw.rows) + 1))
    r = k.get("k_mod_m", int(rng.integers(0, m)) if "g" not in k else 0)
    k_real = m * (g - 1) + r if r else m * g
    if k_real < 1:
        k_real = m
    if k.get("nm_pattern") and k_real < m:
        k_real = m
    # channels per group
    cc = k.get("cols_class")
    if "cpg" in k:
        cpg = k["cpg"]
    elif kind == "conv_depthwise":
        cpg = 1
    elif cc == "C_out<COLS" and hw.cols > 1:
        cpg = int(rng.integers(1, hw.cols))
    elif cc == "C_out=COLS":
        cpg = hw.cols
    elif cc == "C_out>COLS":
        cpg = int(rng.integers(hw.cols + 1, 3 * hw.cols + 2))
    else:
        cpg = int(rng.integers(1, 3 * hw.cols + 2))
    if "cols_partial" in k and hw.cols > 1 and kind != "conv_depthwise" and "cpg" not in k:
        if k["cols_partial"] and cpg % hw.cols == 0:
            cpg += 1
        if not k["cols_partial"] and cpg % hw.cols:
            cpg += hw.cols - cpg % hw.cols
    a_signed = {"signed": True, "unsigned": False}.get(k.get("a_signed"), bool(rng.integers(2)))
    a_bits, w_bits = min(8, hw.a_bits), min(8, hw.w_bits)
    xlo, xhi = qrange(a_bits, a_signed)
    zx = {"min": xlo, "max": xhi, "zero": 0}.get(k.get("z_x"))
    if zx is None:
        zx = int(rng.integers(xlo + 1, xhi)) or 1
    mode = k.get("mode") or str(rng.choice(MODES))
    if kind == "conv_depthwise":  # K = kw * pad(1, m): G = kw, K_real = kw
        k_real = g if ("k_mod_m" not in k or "g" in k) else (r or m)
        while k_real + m <= gmax and ((gcls == "G>ROWS" and k_real <= hw.rows)
                                      or (gcls == "G=ROWS" and k_real < hw.rows)):
            k_real += m
    g_eff = -(-k_real // m) if kind != "conv_depthwise" else k_real
    a_bank = hw.act_depth // hw.rows
    row_cap = hw.rows * max(1, a_bank // max(1, g_eff))
    p = k["p"] if "p" in k else _pick_p(k, hw, rng, row_cap)
    common = dict(n=hw.n, m=m, a_bits=a_bits, a_signed=a_signed, w_bits=w_bits, y_bits=OUT_BITS,
                  acc_bits=hw.acc_bits, mult_bits=min(hw.mult_bits, 32), mode=mode, name=name,
                  z_x=zx)
    if kind == "linear":
        rec = random_linear_record(rng, c_in=k_real, c_out=cpg, rows=p,
                                   token_wise=bool(k.get("token_wise")), **common)
    elif kind == "conv_depthwise":
        c = int(rng.integers(2, 5))
        rec = random_conv_record(rng, c_in=c, c_out=c, groups=c, h=1, w=k_real + p - 1, kh=1,
                                 kw=k_real, padding=0, **common)
    else:
        groups = 2 if kind == "conv_grouped" else 1
        rec = random_conv_record(rng, c_in=groups * k_real, c_out=groups * cpg, groups=groups,
                                 h=1, w=p, kh=1, kw=1, padding=0, **common)
    return _edit(rec, k, hw, rng)


def _matmul_record(k: dict, hw: HwConfig, rng: np.random.Generator, name: str) -> LayerRecord:
    """A random matmul aimed at ``k`` (``matmul``, ``p_class``, ``cols_class``, ``params``,
    ``a_signed``, ``mode`` of the section-2 modes)."""
    want = k.get("matmul")
    cls = k.get("p_class")
    p = 1 if cls == "P=1" else hw.rows if cls == "P=ROWS" else \
        int(rng.integers(2, hw.rows)) if cls == "1<P<ROWS" and hw.rows > 2 else \
        int(rng.integers(hw.rows + 1, 2 * hw.rows + 2)) if cls == "P>ROWS" else \
        int(rng.integers(1, 2 * hw.rows + 2))
    cc = k.get("cols_class")
    c = int(rng.integers(1, hw.cols)) if cc == "C_out<COLS" and hw.cols > 1 else \
        hw.cols if cc == "C_out=COLS" else \
        int(rng.integers(hw.cols + 1, 2 * hw.cols + 2)) if cc == "C_out>COLS" else \
        int(rng.integers(1, 2 * hw.cols + 2))
    zp = {"zp_none": (0, 0), "zp_a": (None, 0), "zp_b": (0, None)}.get(want, (None, None))
    mode = k.get("mode") if k.get("mode") in MODES else str(rng.choice(MODES))
    params = "row" if k.get("params") == "per_row" else \
        "tensor" if k.get("params") == "per_channel" else \
        str(rng.choice(["tensor", "column", "row", "row_column"]))
    a_signed = {"signed": True, "unsigned": False}.get(k.get("a_signed"), bool(rng.integers(2)))
    return random_matmul_record(
        rng, p=p, k=int(rng.integers(1, 3 * hw.m + 1)), c=c,
        lead=(2,) if want == "lead_dims" else (), a_bits=min(8, hw.a_bits), a_signed=a_signed,
        b_bits=min(8, hw.w_bits), b_signed=want != "b_unsigned", trans_b=want == "trans_b",
        params=params, y_bits=OUT_BITS, acc_bits=hw.acc_bits, mult_bits=min(hw.mult_bits, 32),
        mode=mode, name=name, z_a=zp[0], z_b=zp[1])


def regolden(rec: LayerRecord) -> LayerRecord:
    """``rec`` with its golden ``acc`` and ``y`` recomputed (after an edit), validated."""
    res = run_layer(rec)
    return rec.replace(acc=res.acc, y=res.y).validate()


def _edit(rec: LayerRecord, k: dict, hw: HwConfig, rng: np.random.Generator) -> LayerRecord:
    """Apply the requantizer / pattern / wrap / zero-point constraints and redo the golden run."""
    ch = {}
    c = rec.M0.shape   # [C_out], or [P, C_out] with per-row parameters
    smax = min(hw.shift_max, 63)
    shift = k.get("shift")
    if k.get("tie"):
        s = int(rng.integers(1, min(31, smax) + 1)) if shift != "32-63" else 0
        if shift == "1-31" or s:
            ch["sh"] = np.full(c, s, np.int64)
            ch["M0"] = np.full(c, 1 << (s - 1), np.int64)
    elif shift == "0" or k.get("saturation") in ("high", "low"):
        ch["sh"] = np.zeros(c, np.int64)
        ch["M0"] = rng.integers(1, 4, size=c).astype(np.int64)
    elif shift == "1-31":
        s = int(rng.integers(1, min(31, smax) + 1))
        ch["sh"] = np.full(c, s, np.int64)
        ch["M0"] = rng.integers(1, 1 << min(s + 2, hw.mult_bits - 1), size=c).astype(np.int64)
    elif shift == "32-63" and smax >= 32:
        s = int(rng.integers(32, smax + 1))
        ch["sh"] = np.full(c, s, np.int64)
        ch["M0"] = np.full(c, (1 << min(30, hw.mult_bits - 1)) + int(rng.integers(0, 1 << 20)),
                           np.int64)
    if k.get("limits") == "sh=SHIFT_MAX":
        ch["sh"] = np.full(c, smax, np.int64)
        ch["sh"].reshape(-1)[1:] = rng.integers(0, smax + 1, size=ch["sh"].size - 1)
        ch["M0"] = rng.integers(1, 1 << min(30, hw.mult_bits - 1), size=c).astype(np.int64)
    if k.get("limits") == "lo=hi":
        ch["lo"] = ch["hi"] = int(rng.integers(*rec.y_range))
    if k.get("wrap"):
        top = (1 << (hw.acc_bits - 1)) - 1
        ch["bias_eff"] = top - rng.integers(0, 64, size=rec.bias_eff.shape).astype(np.int64)
        ch["wrap_ok"] = True
    ylo, yhi = rec.y_range
    zy = {"min": ylo, "max": yhi, "zero": 0}.get(k.get("z_y"))
    if zy is not None:
        ch["z_y"] = zy
        ch.setdefault("lo", ylo)
        ch.setdefault("hi", yhi)
    pat = k.get("nm_pattern")
    if pat:
        w = rec.w_q.copy()
        idx = [int(i) for i in pat.split(",")]
        w[0, :hw.m] = 0
        w[0, idx] = rng.choice([-2, -1, 1, 2], size=len(idx))
        vals, ind = compress(w, rec.n, rec.m, name=f"layer {rec.name} w_q")
        ch.update(w_q=w, values=vals, indices=ind)
    if not ch:
        return rec
    return regolden(rec.replace(**ch))


def close_coverage(model: CoverModel, seed: int, *, max_records: int = 400,
                   max_seconds: float | None = None, start: Coverage | None = None,
                   prefix: str = "cov") -> ClosureResult:
    """Generate records until every reachable bin is hit or the budget runs out.

    Args:
        model: The coverage model (its ``hw`` is the array records must run on).
        seed: Seeds ``np.random.default_rng``; equal seeds and count budgets give equal records.
        max_records: Records generated at most (kept or not).
        max_seconds: Wall-clock budget (``None``: none; a time budget ends runs at
            machine-dependent points, so determinism then holds only up to the cut).
        start: Coverage already reached (e.g. merged from a regression); default empty.
        prefix: Record names are ``<prefix><i>``.

    Returns:
        :class:`ClosureResult` with the records that hit a new bin, in order.
    """
    rng = np.random.default_rng(seed)
    cov = start.merge(model.empty()) if start is not None else model.empty()
    t0 = time.monotonic()
    kept: list[LayerRecord] = []
    tried = 0
    holes = cov.holes()
    while holes and tried < max_records and (max_seconds is None or
                                             time.monotonic() - t0 < max_seconds):
        hole = holes[int(rng.integers(len(holes)))]
        knobs = knobs_for(hole, model.hw, rng)
        tried += 1
        rec = build_record(knobs, model.hw, rng, f"{prefix}{tried}")
        hits = model.sample(rec)
        before = set(holes)
        cov.add(hits)
        holes = cov.holes()
        if before - set(holes):
            kept.append(rec)
        log.debug("record %d aimed at %s: %d holes left", tried, hole, len(holes))
    return ClosureResult(kept, cov, holes, tried, time.monotonic() - t0)
