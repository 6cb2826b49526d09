"""Functional coverage model and coverage-driven generation (t2c_sim.closure.funcov/generate).

The model's bins are checked against an independent oracle written here in plain Python
integers (shapes from the arrays, N:M patterns from the dense weights, ties and saturation
from exact rational arithmetic, wraps from an unbounded sum), over a pool of records that
together hit every reachable bin; every bin is also shown NOT hit by some record of the pool
(the model can fail). Generation closes every reachable bin from an empty start,
deterministically per seed.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import floor

import numpy as np
import pytest

from t2c_sim import estimate
from t2c_sim.closure.funcov import KSPLIT_BINS, Coverage, CoverModel
from t2c_sim.closure.generate import build_record, close_coverage, knobs_for
from t2c_sim.closure.target import backpressure_bin
from t2c_sim.config import HwConfig, OpKind, RoundProfile
from t2c_sim.errors import ConfigError
from t2c_sim.workloads.gen import random_linear_record

HW = HwConfig(rows=3, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=96, w_depth=64,
              out_depth=48, ch_depth=8)
HWS = {
    "3x2_2of4": HW,
    "2x2_2of4": HwConfig(rows=2, cols=2, n=2, m=4, act_depth=64, w_depth=64, out_depth=32,
                         ch_depth=8),
    "4x4_2of8_a4": HwConfig(rows=4, cols=4, n=2, m=8, a_bits=4, w_bits=4, act_depth=256,
                            w_depth=128, out_depth=64, ch_depth=16),
    "1x1_1of4": HwConfig(rows=1, cols=1, n=1, m=4, act_depth=64, w_depth=64, out_depth=32,
                         ch_depth=8),
    "3x2_dense": HwConfig(rows=3, cols=2, n=4, m=4, act_depth=96, w_depth=64, out_depth=48,
                          ch_depth=8),
}


# ------------------------------------------------------------------------------ oracle
def _round(v: int, s: int, mode: str) -> int:
    """round(v / 2^s) by exact rationals (independent of t2c_sim.numerics)."""
    x = Fraction(v, 1 << s)
    q = floor(x)
    frac = x - q
    if mode == "floor" or frac < Fraction(1, 2):
        return q
    if frac > Fraction(1, 2):
        return q + 1
    return {"half_up": q + 1, "half_away": q + 1 if v >= 0 else q,
            "half_even": q + (q % 2)}[mode]


def _half_bits(v: int, k: int) -> bool:
    """v / 2^k has a fractional part of exactly one half."""
    return k > 0 and Fraction(v, 1 << k) - floor(Fraction(v, 1 << k)) == Fraction(1, 2)


def _wrap32(v: int) -> int:
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def _f32(v: int) -> tuple[int, int, bool]:
    """v >= 0 to 24 significant bits, ties to even: (significand, exponent, was a tie)."""
    k = max(v.bit_length() - 24, 0)
    return _round(v, k, "half_even"), k, _half_bits(v, k)


def _profile(a: int, m0: int, s: int, zy: int, prof: str) -> tuple[int, bool]:
    """(value before the clamp, a tie in some rounding step) of one output under a runtime
    rounding profile, from the runtimes' published arithmetic in Python integers."""
    if prof == "tflite_single":          # (acc*M0 + 2^(t-1)) >> t, ties up
        v = a * m0
        return _wrap32(_wrap32(floor(Fraction(v, 1 << s) + Fraction(1, 2))) + zy), \
            _half_bits(v, s)
    if prof == "tflite_double":          # SRDHM (/2^31, ties up), then RDBPOT (ties away)
        left, right = max(31 - s, 0), max(s - 31, 0)
        x = _wrap32(a << left)
        v = x * m0
        r = floor(Fraction(v, 1 << 31) + Fraction(1, 2))     # ties toward +inf
        t2 = _half_bits(r, right)
        f = Fraction(abs(r), 1 << right) if right else Fraction(abs(r))
        mag = floor(f + Fraction(1, 2))
        return _wrap32((mag if r >= 0 else -mag) + zy), _half_bits(v, 31) or t2
    a_sig, a_k, t1 = _f32(abs(a))       # ort_fp32: float32(acc) * float32 scale, rint
    p_sig, p_k, t2 = _f32(a_sig * m0)
    e = a_k + p_k - s
    mag = p_sig << e if e >= 0 else _round(p_sig, -e, "half_even")
    return (mag if a >= 0 else -mag) + zy, t1 or t2 or (e < 0 and _half_bits(p_sig, -e))


def _requant_oracle(rec, acc: list[int], rows: int, out: dict[str, set[str]]) -> None:
    """round, saturation, shift of outputs ``acc`` (``rows`` x ``c_out``, row-major)."""
    c = rec.c_out
    m0s = np.broadcast_to(rec.M0, (rows, c)) if rec.M0.ndim == 2 else \
        np.broadcast_to(rec.M0.reshape(1, -1), (rows, c))
    shs = np.broadcast_to(rec.sh, (rows, c)) if rec.sh.ndim == 2 else \
        np.broadcast_to(rec.sh.reshape(1, -1), (rows, c))
    ties, notie, sat, shifts = False, False, set(), set()
    prof = isinstance(rec.mode, RoundProfile)
    for i, a in enumerate(acc):
        m0, s = int(m0s[i // c, i % c]), int(shs[i // c, i % c])
        if prof:
            pre, t = _profile(a, m0, s, rec.z_y, rec.mode.value)
        else:
            v = a * m0
            t = _half_bits(v, s)
            pre = rec.z_y + _round(v, s, rec.mode.value)
        ties |= t
        notie |= not t
        sat.add("high" if pre > rec.hi else "low" if pre < rec.lo else "none")
        shifts.add("0" if s == 0 else "1-31" if s < 32 else "32-63")
    out["round"] = ({f"{rec.mode.value}/tie"} if ties else set()) | \
        ({f"{rec.mode.value}/no_tie"} if notie else set())
    out["saturation"] = sat
    out["shift"] = shifts


def matmul_oracle(rec, hw: HwConfig) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    p, c = rec.y.shape[-2], rec.c_out
    out["p_class"] = {"P=1" if p == 1 else "1<P<ROWS" if p < hw.rows else
                      "P=ROWS" if p == hw.rows else "P>ROWS"}
    out["cols_class"] = {"C_out<COLS" if c < hw.cols else "C_out=COLS" if c == hw.cols
                         else "C_out>COLS"}
    rows = int(np.prod(rec.y.shape[:-1]))
    per_row = any(a is not None and a.ndim == 2 for a in (rec.M0, rec.sh, rec.bias_eff))
    out["params"] = {"per_row" if per_row else "per_channel"}
    za, zb = rec.z_x != 0, rec.z_b != 0
    mm = {"zp_both" if za and zb else "zp_a" if za else "zp_b" if zb else "zp_none"}
    lead = rec.x_q.shape[:-2]
    mm |= {"trans_b"} if rec.trans_b else set()
    mm |= {"lead_dims"} if lead and int(np.prod(lead)) > 1 else set()
    mm |= set() if rec.b_signed else {"b_unsigned"}
    out["matmul"] = mm
    _requant_oracle(rec, [int(v) for v in rec.acc.reshape(-1)], rows, out)
    lo, hi = rec.y_range
    out["z_y"] = {"min" if rec.z_y == lo else "max" if rec.z_y == hi else "zero" if rec.z_y == 0
                  else "other"}
    out["a_signed"] = {"signed" if rec.a_signed else "unsigned"}
    for point in ("layer_kind", "k_chunks", "nm_pattern", "acc_wrap", "z_x"):
        out[point] = set()   # the shape points come from linear and conv layers
    return out


def oracle(rec, hw: HwConfig) -> dict[str, set[str]]:
    if rec.op is OpKind.MATMUL:
        return matmul_oracle(rec, hw)
    out: dict[str, set[str]] = {"matmul": set()}
    if rec.op is OpKind.LINEAR:
        out["layer_kind"] = {"linear"}
    elif rec.groups == 1:
        out["layer_kind"] = {"conv"}
    else:
        out["layer_kind"] = {"conv_depthwise" if rec.groups == rec.c_in == rec.c_out
                             else "conv_grouped"}
    p = int(np.prod(rec.y.shape[:-1]))
    out["p_class"] = {"P=1" if p == 1 else "1<P<ROWS" if p < hw.rows else
                      "P=ROWS" if p == hw.rows else "P>ROWS"}
    cpg = rec.c_out // (rec.groups if rec.op is OpKind.CONV2D else 1)
    out["cols_class"] = {"C_out<COLS" if cpg < hw.cols else "C_out=COLS" if cpg == hw.cols
                         else "C_out>COLS"}
    k_real = rec.c_in if rec.op is OpKind.LINEAR else rec.kh * rec.kw * (rec.c_in // rec.groups)
    out["k_mod_m"] = {f"r{k_real % hw.m}"}
    # K-chunks: the plan's (its own tests check it against the RTL); the bins from it by hand
    plan = estimate.tile_plan(rec, hw)
    chunks = [gs for _, gs in plan.chunks]
    assert sum(chunks) == plan.g and all(0 < gs <= min(hw.act_depth // hw.rows,
                                                        hw.w_depth // hw.cols) for gs in chunks)
    out["g_vs_rows"] = {"G<ROWS" if gs < hw.rows else "G=ROWS" if gs == hw.rows else "G>ROWS"
                        for gs in chunks}
    out["k_chunks"] = {"1" if len(chunks) == 1 else "2" if len(chunks) == 2 else "many"}
    ks = set()
    if len(chunks) > 1:
        if chunks[-1] < hw.rows:
            ks.add("short_last_chunk")
        if len(plan.tiles) > 1:
            ks.add("multi_tile")
        for tile in plan.tiles:
            if tile.rows % hw.rows:
                ks.add("partial_rows")
            if tile.cols % hw.cols:
                ks.add("partial_cols")
            if -(-tile.rows // hw.rows) * -(-tile.cols // hw.cols) > 1:
                ks.add("multi_block")
    # N:M patterns: per group of hw.m weights, nonzero positions, then zero positions, first N
    pats = set()
    w = [list(map(int, row)) + [0] * (-len(row) % hw.m) for row in rec.w_q]
    for row in w:
        for g0 in range(0, len(row), hw.m):
            grp = row[g0:g0 + hw.m]
            nz = [i for i, v in enumerate(grp) if v != 0]
            z = [i for i, v in enumerate(grp) if v == 0]
            pats.add(",".join(map(str, sorted((nz + z)[:hw.n]))))
    out["nm_pattern"] = pats
    acc = [int(v) for v in rec.acc.reshape(-1)]
    c = rec.c_out
    per_row = rec.M0.ndim == 2
    out["params"] = {"per_row" if per_row else "per_channel"}
    _requant_oracle(rec, acc, len(acc) // c, out)
    # wraps: unbounded dot products from the dense record, and the partial sums at the end
    # of every chunk but the last (K in chunks of gs * hw.m)
    x = rec.x_q
    wrapped = False
    top = 1 << (rec.acc_bits - 1)
    if rec.op is OpKind.LINEAR:
        xs = x.reshape(-1, rec.c_in)
        ends = list(itertools.accumulate(gs * hw.m for gs in chunks))[:-1]
        for r_i, row in enumerate(xs):
            for ch in range(c):
                terms = [int(a) * int(b) for a, b in zip(row, rec.w_q[ch][:rec.c_in])]
                bias = int(rec.bias_eff[r_i, ch] if per_row else rec.bias_eff[ch])
                exact = bias + sum(terms)
                wrapped |= exact != int(rec.acc.reshape(-1, c)[r_i, ch])
                for e in ends:
                    part = bias + sum(terms[:e])
                    if not -top <= part < top:
                        ks.add("psum_wrap")
        out["acc_wrap"] = {"wrapped" if wrapped else "exact"}
        out["ksplit"] = ks
    else:
        out["ksplit"] = ks  # shapes only: partial sums of a conv are not computed here
    lo, hi = rec.x_range
    out["z_x"] = {"min" if rec.z_x == lo else "max" if rec.z_x == hi else "zero" if rec.z_x == 0
                  else "other"}
    lo, hi = rec.y_range
    out["z_y"] = {"min" if rec.z_y == lo else "max" if rec.z_y == hi else "zero" if rec.z_y == 0
                  else "other"}
    out["a_signed"] = {"signed" if rec.a_signed else "unsigned"}
    return out


_POOL: dict[str, list] = {}


def pool(name: str) -> list:
    """Records of three coverage-closing runs plus plain random layers, on HWS[name]."""
    if name not in _POOL:
        hw = HWS[name]
        recs = []
        for seed in (1, 2, 3):
            recs += close_coverage(CoverModel(hw), seed, max_records=300).records
        r = np.random.default_rng(7)
        recs += [random_linear_record(r, c_in=9, c_out=3, rows=4, n=hw.n, m=hw.m,
                                      a_bits=min(8, hw.a_bits), w_bits=min(8, hw.w_bits),
                                      name=f"rand{i}") for i in range(3)]
        _POOL[name] = recs
    return _POOL[name]


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("hwname", list(HWS))
def test_model_agrees_with_oracle(hwname: str) -> None:
    hw = HWS[hwname]
    model = CoverModel(hw)
    for rec in pool(hwname):
        hits = model.sample(rec)
        exp = oracle(rec, hw)
        for point, bins in exp.items():
            got = hits[point]
            if point == "ksplit" and rec.op is not OpKind.LINEAR:
                got = got - {"psum_wrap"}
            assert got == bins, f"{rec.name} {point}: model {hits[point]} oracle {bins}"
        for a, b in model.crosses:
            assert hits[f"{a}*{b}"] == {f"{x}*{y}" for x in exp[a] for y in exp[b]}


@pytest.mark.parametrize("hwname", list(HWS))
def test_every_bin_hit_and_avoided(hwname: str) -> None:
    """Each reachable bin is hit by some pool record and NOT hit by another (can fail)."""
    model = CoverModel(HWS[hwname])
    samples = [model.sample(r) for r in pool(hwname)]
    for point, bins in model.points.items():
        for b in bins:
            if f"{point}/{b}" in model.unreachable:
                assert not any(b in s[point] for s in samples), f"unreachable {point}/{b} hit"
                continue
            assert any(b in s[point] for s in samples), f"{point}/{b} never hit"
            if sum(f"{point}/{x}" not in model.unreachable for x in bins) == 1:
                continue  # the point's only reachable bin (k_chunks/1 without a chunk sampler)
            assert any(b not in s[point] for s in samples), f"{point}/{b} hit by every record"


@pytest.mark.parametrize("point,bin_", [
    (p, b) for p, bins in CoverModel(HW).points.items() for b in bins
    if f"{p}/{b}" not in CoverModel(HW).unreachable])
def test_aimed_record_hits_its_bin(point: str, bin_: str) -> None:
    """A record built for one hole hits it (within a few seeds: ties need an odd accumulator)."""
    model = CoverModel(HW)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        rec = build_record(knobs_for((point, bin_), HW, rng), HW, rng, "aim")
        if bin_ in model.sample(rec)[point]:
            return
    pytest.fail(f"no record aimed at {point}/{bin_} hit it (seeds 0..5)")


def test_close_coverage_from_empty_is_deterministic() -> None:
    model = CoverModel(HW)
    a = close_coverage(model, 11, max_records=300)
    b = close_coverage(model, 11, max_records=300)
    assert a.holes == [] and a.coverage.percent() == 100.0
    assert [r.name for r in a.records] == [r.name for r in b.records]
    for x, y in zip(a.records, b.records):
        assert np.array_equal(x.w_q, y.w_q) and np.array_equal(x.y, y.y)
    assert a.coverage.counts == b.coverage.counts
    c = close_coverage(model, 12, max_records=300)
    assert [r.name for r in c.records] != [r.name for r in a.records] or \
        any(not np.array_equal(x.x_q, y.x_q) for x, y in zip(a.records, c.records))


def test_budget_leaves_holes_listed() -> None:
    model = CoverModel(HW)
    r = close_coverage(model, 3, max_records=2)
    assert r.tried == 2 and r.holes and r.holes == r.coverage.holes()
    assert "holes (" in r.coverage.report()


def test_merge_is_associative_and_json_round_trips() -> None:
    model = CoverModel(HW)
    recs = pool("3x2_2of4")[:9]
    parts = [model.empty() for _ in range(3)]
    for i, rec in enumerate(recs):
        parts[i % 3].add(model.sample(rec))
    ab_c = parts[0].merge(parts[1]).merge(parts[2])
    a_bc = parts[0].merge(parts[1].merge(parts[2]))
    c_ba = parts[2].merge(parts[1]).merge(parts[0])
    assert ab_c.counts == a_bc.counts == c_ba.counts
    whole = model.empty()
    for rec in recs:
        whole.add(model.sample(rec))
    assert whole.counts == ab_c.counts
    back = Coverage.from_json(ab_c.to_json())
    assert back.counts == ab_c.counts and back.unreachable == ab_c.unreachable
    with pytest.raises(ConfigError, match="cannot merge"):
        ab_c.merge(CoverModel(HWS["2x2_2of4"]).empty())


def test_unreachable_bins_and_pluggable_samplers() -> None:
    model = CoverModel(HW)
    assert "k_chunks/2" not in model.unreachable and "ksplit/psum_wrap" not in model.unreachable
    # 96/3 = 32-word activation banks: chunks of at least 32 // 8 = 4 > ROWS = 3 groups
    assert "ksplit/short_last_chunk" in model.unreachable
    cov = model.empty()
    assert ("backpressure", "bursty") not in cov.holes()
    with pytest.raises(ConfigError, match="backpressure"):
        cov.sample_backpressure("jittery")
    stream = CoverModel(HW, chunk_sampler=lambda rec, hw: 3, stream=True)
    scov = stream.empty()
    assert ("backpressure", "bursty") in scov.holes() and ("k_chunks", "many") in scov.holes()
    assert all(k in stream.unreachable for k in (f"ksplit/{b}" for b in KSPLIT_BINS))
    scov.sample_backpressure("bursty")
    rec = pool("3x2_2of4")[0]
    scov.add(stream.sample(rec))
    assert ("backpressure", "bursty") not in scov.holes()
    assert ("k_chunks", "many") not in scov.holes() and ("k_chunks", "1") in scov.holes()
    assert stream.key != model.key and CoverModel(HW).key == model.key


@pytest.mark.parametrize("trace,expect", [
    ([1, 1, 1, 1], "none"), ([1, 0, 1, 1, 0, 1], "sparse"), ([1, 0, 0, 0, 1], "sparse"),
    ([0, 0, 1, 0, 0, 1], "bursty"), ([1] + [0] * 8 + [1], "stalled"), ([0] * 7, "sparse"),
    ([0] * 8, "stalled"),
])
def test_backpressure_sampler(trace: list[int], expect: str) -> None:
    assert backpressure_bin(trace) == expect
    with pytest.raises(ConfigError):
        backpressure_bin([])
    with pytest.raises(ConfigError):
        backpressure_bin([1, 2])


def test_bad_bins_and_files_are_one_line_errors(tmp_path) -> None:
    cov = CoverModel(HW).empty()
    with pytest.raises(ConfigError, match="'nope' is not in the model"):
        cov.add({"nope": {"x"}})
    with pytest.raises(ConfigError, match="bin 'P=7' is not a bin of coverpoint 'p_class'"):
        cov.add({"p_class": {"P=7"}})
    bad = tmp_path / "cov.json"
    bad.write_text("{\"key\": 1}")
    with pytest.raises(ConfigError, match=f"{bad}: not a coverage file"):
        Coverage.load(bad)


def test_nm_patterns_are_all_combinations() -> None:
    for name, hw in HWS.items():
        pats = CoverModel(hw).points["nm_pattern"]
        assert len(pats) == len(list(itertools.combinations(range(hw.m), hw.n))), name


HW_A = HWS["2x2_2of4"]  # act 64 (bank 32), w 64 (bank 32), out 32, ch 8 (bank 4)


@pytest.mark.parametrize("p,c_in,c_out,sh_max_ch,lo_hi,expect", [
    # hand-computed: one tile; rows*CB vs 32, ceil(rows/2)*G vs 32, CB*G vs 32, CB vs 4
    (32, 4, 2, False, False, {"out_full"}),
    (31, 4, 2, False, False, set()),
    (32, 8, 2, False, False, {"act_full"}),            # G=2: 16*2 = 32; rows*1 = 32 too
    (4, 4, 8, False, False, {"ch_full"}),              # CB = 4
    (4, 32, 8, False, False, {"ch_full", "wgt_full"}),  # G = 8: CB*G = 32
    (4, 4, 2, True, False, {"sh=SHIFT_MAX"}),
    (4, 4, 2, False, True, {"lo=hi"}),
])
def test_limit_bins_hand_computed(p, c_in, c_out, sh_max_ch, lo_hi, expect) -> None:
    from t2c_sim.golden.layers import run_layer

    rec = random_linear_record(np.random.default_rng(p + c_in), c_in=c_in, c_out=c_out, rows=p,
                               n=2, m=4)
    edits = {}
    if sh_max_ch:
        edits["sh"] = np.array([63] + [3] * (c_out - 1))
    if lo_hi:
        edits["lo"] = edits["hi"] = 5
    if edits:
        rec = rec.replace(**edits)
        res = run_layer(rec)
        rec = rec.replace(acc=res.acc, y=res.y).validate()
    got = CoverModel(HW_A).sample(rec)["limits"]
    if c_in == 8:
        expect = expect | {"out_full"}
    assert got == expect
