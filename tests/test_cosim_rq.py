"""The requantizer features of the accelerator through the normal co-simulation path.

Rounding profiles (SPEC section 10), token-wise (per-row) requantization parameters (section 8)
and activation x activation matmuls with both zero points (section 7) run as layer records
through :func:`t2c_sim.cosim.run.run_layers` (one simulator process per call: plan files, the
harness, the accelerator's own ports), and are compared with the golden model bit for bit
(``np.array_equal``); every tile's cycle counter equals :mod:`t2c_sim.estimate` exactly.

* Directed cases (:mod:`t2c_sim.workloads.requant_cases`): the ties of every rounding step of
  every section-2 mode and profile, their sticky neighbours and the extremes of ``acc``, ``M0``,
  ``sh``, ``z_y``, ``lo``, ``hi``, one case per output, both as token-wise records (``[P, C]``
  parameters: the per-row parameter memory) and as one-row per-channel records (the ch memory).
  The golden ``y`` of these records is first checked against the requantizers called on the
  cases themselves, so the records really carry the cases.
* Random token-wise records (section-2 modes and profiles), K-split on small banks (the per-row
  bias enters once, at the first run's drain).
* Matmul records: every parameter form (``[1]``, ``[C]``, ``[R, 1]``, ``[R, C]``), optional bias,
  ``trans_b``, leading (batch x head) dims, signed and unsigned operands, dense on the 2:4 array,
  multi-tile and K-split.
* Refusals: a build without a feature refuses the record before anything is written, one error
  naming the layer, the missing feature and its key; if the host check is bypassed, the RTL
  itself refuses the run (``err_o[5]``).
* Mutants: RTL copies with one fault each (a profile's rounding step off by one, the per-row
  parameter index off by one, a zero point dropped, ...) must fail these checks.

Fast tier: HW_A (2x2, 2:4; the Verilator build ``tests/test_cosim.py`` makes) on Verilator, a
small case per feature on Icarus, one mutant per feature. Slow tier: the remaining mutants,
a dense 4:4 array, more seeds.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from test_cosim import HW_A
from test_cosim import HW_C as HW_D

from t2c_sim import estimate
from t2c_sim.config import HwConfig, RoundProfile
from t2c_sim.cosim.compare import compare
from t2c_sim.cosim.run import RTL_MODULES, UnsupportedLayerError, prepare, run_layers, to_gemm
from t2c_sim.cosim.sim import RTL_DIR, default_build_root
from t2c_sim.errors import SimulationError
from t2c_sim.numerics import requantize
from t2c_sim.rounding_profiles import requantize_profile
from t2c_sim.workloads.gen import random_linear_record, random_matmul_record, with_profile
from t2c_sim.workloads.requant_cases import (
    BY_CODE,
    ort_directed,
    section2_directed,
    tflite_directed,
    vector_records,
)

pytestmark = pytest.mark.sim

# The arrays of tests/test_cosim.py (one Verilator build for both files): HW_A 2x2, 2:4, small
# banks; HW_D a dense 4:4 array, 3 rows (slow tier).
# Banks of 2 words per block: dot products of more than 2 groups are K-split.
HW_K = HwConfig(rows=2, cols=3, n=2, m=4, a_bits=8, w_bits=8, act_depth=4, w_depth=6,
                out_depth=64, ch_depth=6)
P_RQ = {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16, "PROFILES": 1}


@pytest.fixture(scope="module")
def build_root():
    return default_build_root()


# ------------------------------------------------------------------------------ cases
def directed_cases(seed: int = 3) -> list[tuple]:
    """Every section-2 mode and profile on its ties and extremes (about 17,500 cases)."""
    rng = random.Random(seed)
    return (section2_directed(P_RQ, rng) + ort_directed(P_RQ, rng)
            + tflite_directed(P_RQ, rng, RoundProfile.TFLITE_DOUBLE)
            + tflite_directed(P_RQ, rng, RoundProfile.TFLITE_SINGLE))


def oracle(cases: list[tuple]) -> np.ndarray:
    """The requantizers of the golden model called on the cases themselves."""
    out = np.zeros(len(cases), dtype=np.int64)
    for i, (a, m0, s, zy, lo, hi, c) in enumerate(cases):
        mode = BY_CODE[c]
        if isinstance(mode, RoundProfile):
            out[i] = requantize_profile(np.array([a]), np.array([m0]), np.array([s]), zy, lo, hi,
                                        mode)[0]
        else:
            out[i] = requantize(np.array([a], dtype=object), np.array([m0], dtype=object),
                                np.array([s]), zy, lo, hi, mode)[0]
    return out


def _case_outputs(recs, n_cases_per_rec) -> np.ndarray:
    return np.concatenate([r.y.ravel()[:n] for r, n in zip(recs, n_cases_per_rec)])


def _grouped(cases):
    """Cases in :func:`vector_records`' order (grouped by their record scalars), and group sizes."""
    groups: dict[tuple, list] = {}
    for v in cases:
        groups.setdefault((v[3], v[4], v[5], v[6]), []).append(v)
    keys = sorted(groups)
    return [v for k in keys for v in groups[k]], [len(groups[k]) for k in keys]


def check_exact(recs, res, hw, sim: str) -> None:
    """y and acc equal golden's exactly; cycles equal the model per tile and per chunk."""
    assert len(res) == len(recs)
    for rec, r in zip(recs, res):
        mm = compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc, acc_actual=r.acc)
        assert mm is None, f"{sim}: {mm}"
        assert np.array_equal(r.y, rec.y) and np.array_equal(r.acc, rec.acc), f"{sim} {rec.name}"
        plan = estimate.tile_plan(rec, hw)
        assert r.cycles == estimate.cycles(rec, hw), f"{sim} {rec.name}: cycles"
        assert len(r.tiles) == len(plan.tiles)
        for t in r.tiles:
            assert t.chunks_measured == estimate.chunk_cycles(plan, plan.tiles[t.index], hw), \
                f"{sim} {rec.name} tile {t.index}"


def test_directed_records_carry_the_cases() -> None:
    """The records' golden outputs are the requantizers' outputs on the cases (no simulator)."""
    cases = directed_cases()
    ordered, sizes = _grouped(cases)
    want = oracle(ordered)
    for per_row in (True, False):
        recs = vector_records(cases, name="d", per_row=per_row)
        assert len(recs) == len(sizes)
        assert np.array_equal(_case_outputs(recs, sizes), want)
    # every profile and mode is there, with ties: e.g. tflite_single ties at sh = 31..42
    assert {BY_CODE[c].value for *_, c in cases} == {m.value for m in BY_CODE.values()}


# ------------------------------------------------------------------------------ directed
@pytest.mark.parametrize("per_row", [True, False], ids=["token_wise", "per_channel"])
def test_directed_cases_verilator(per_row, build_root) -> None:
    """About 17,500 directed cases per parameter layout, one simulator process."""
    recs = vector_records(directed_cases(), name="d", per_row=per_row)
    check_exact(recs, run_layers(recs, HW_A, "verilator", build_root=build_root), HW_A,
                "verilator")


def _small_directed(seed: int = 4, per_code: int = 40) -> list[tuple]:
    """A few hundred directed cases: ``per_code`` of each mode and profile, drawn at random."""
    rng = random.Random(seed)
    by_code: dict[int, list] = {}
    for v in directed_cases(seed):
        by_code.setdefault(v[6], []).append(v)
    return [v for c in sorted(by_code) for v in rng.sample(by_code[c], per_code)]


def test_directed_cases_icarus(build_root) -> None:
    cases = _small_directed()
    recs = vector_records(cases, name="di", per_row=True) + \
        vector_records(cases, name="dc", per_row=False)
    check_exact(recs, run_layers(recs, HW_A, "icarus", build_root=build_root), HW_A, "icarus")


# ------------------------------------------------------------------------------ token-wise
def token_wise_cases(seed: int = 31) -> list:
    rng = np.random.default_rng(seed)
    recs = []
    for i, (mode, kw) in enumerate([
            ("half_even", dict(c_in=12, c_out=5, rows=7)),
            ("floor", dict(c_in=20, c_out=3, rows=9, a_signed=False, relu=True)),
            ("half_away", dict(c_in=24, c_out=4, rows=5, n=1, m=4)),
            ("half_up", dict(c_in=9, c_out=7, rows=3, y_signed=False))]):
        recs.append(random_linear_record(rng, name=f"tw{i}_{mode}", mode=mode, token_wise=True,
                                         **{"n": 2, "m": 4, **kw}))
    for j, prof in enumerate(RoundProfile):
        base = random_linear_record(rng, name=f"twp{j}_{prof.value}", c_in=16, c_out=5, rows=6,
                                    n=2, m=4, token_wise=True)
        recs.append(with_profile(rng, base, prof))
        base = random_linear_record(rng, name=f"chp{j}_{prof.value}", c_in=16, c_out=5, rows=6,
                                    n=2, m=4)
        recs.append(with_profile(rng, base, prof))
    return recs


@pytest.mark.parametrize("sim,hw", [("verilator", HW_A), ("icarus", HW_K)], ids=["A", "K"])
def test_token_wise_and_profile_records(sim, hw, build_root) -> None:
    """Random token-wise records (every mode) and profile records (per channel and token-wise);
    on HW_K every record is K-split (bias once, at the first run's drain, per row)."""
    recs = token_wise_cases()
    if hw is HW_K:
        assert all(len(estimate.tile_plan(r, hw).chunks) > 1 for r in recs)
    check_exact(recs, run_layers(recs, hw, sim, build_root=build_root), hw, sim)


# ------------------------------------------------------------------------------ matmul
def matmul_cases(seed: int = 41) -> list:
    """(record) table: parameter forms, bias, trans_b, leading dims, operand formats."""
    rng = np.random.default_rng(seed)
    table = [
        dict(p=5, k=12, c=3, params="tensor"),
        dict(p=4, k=9, c=5, params="column", bias="column", trans_b=True),
        dict(p=6, k=7, c=4, params="row", lead=(2,), b_signed=False),
        dict(p=3, k=16, c=6, params="row_column", bias="row_column", lead=(2, 2), trans_b=True,
             a_signed=False, mode="half_up"),
        dict(p=7, k=5, c=2, params="tensor", bias="tensor", a_bits=4, b_bits=6, mode="floor",
             relu=True),
        dict(p=2, k=30, c=9, params="row", bias="row", lead=(3,), trans_b=True,
             mode="half_away", y_signed=False),
    ]
    return [random_matmul_record(rng, name=f"mm{i}_{kw['params']}", **kw)
            for i, kw in enumerate(table)]


@pytest.mark.parametrize("sim,hw", [("verilator", HW_A), ("icarus", HW_K),
                                    pytest.param("verilator", HW_D, marks=pytest.mark.slow),
                                    pytest.param("icarus", HW_A, marks=pytest.mark.slow)],
                         ids=["A-verilator", "K-icarus", "D-verilator", "A-icarus"])
def test_matmul_records(sim, hw, build_root) -> None:
    """Activation x activation matmuls, dense on the array (2:4 or 4:4), both zero points."""
    recs = matmul_cases()
    if hw is HW_K:
        assert all(len(estimate.tile_plan(r, hw).chunks) > 1 for r in recs)
    if hw is HW_A:
        assert any(len(estimate.tile_plan(r, hw).tiles) > 1 for r in recs)
    check_exact(recs, run_layers(recs, hw, sim, build_root=build_root), hw, sim)


# ------------------------------------------------------------------------------ refusals
def _profile_rec():
    rng = np.random.default_rng(5)
    return with_profile(rng, random_linear_record(rng, name="fc_prof", c_in=8, c_out=4, rows=3,
                                                  n=2, m=4), "tflite_double")


REFUSALS = [  # (id, record factory, the build lacking the feature, words the error must hold)
    ("profile", _profile_rec, HwConfig(profiles=0),
     ["layer 'fc_prof'", "DUT t2c_accel", "rounding profile tflite_double", "profiles: 0",
      "[hw.profiles]"]),
    ("token_wise", lambda: random_linear_record(np.random.default_rng(6), name="fc_tw", c_in=8,
                                                c_out=4, rows=3, n=2, m=4, token_wise=True),
     HwConfig(row_params=0), ["layer 'fc_tw'", "per-row", "row_params: 0", "[hw.row_params]"]),
    ("matmul", lambda: matmul_cases()[0], HwConfig(zero_points=0),
     ["layer 'mm0_tensor'", "matmul", "zero_points: 0", "[hw.zero_points]"]),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_build_without_feature_refuses_record(case, tmp_path) -> None:
    """One error naming the layer, the feature and its key; nothing is written; the build with
    the feature takes the same record."""
    _, make, hw, words = case
    rec = make()
    with pytest.raises(UnsupportedLayerError) as ei:
        to_gemm(rec, hw)
    msg = str(ei.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert not (tmp_path / "run").exists()
    prepare([to_gemm(rec, HwConfig())], tmp_path / "run")   # the default build has it


def test_rtl_refuses_a_mode_its_build_lacks(build_root) -> None:
    """With the host check bypassed (a plan whose mode word asks for a profile on a build
    without profiles), the accelerator itself refuses the run: err_o[5]."""
    hw = HwConfig(rows=2, cols=2, n=2, m=4, act_depth=64, w_depth=64, out_depth=32, ch_depth=8,
                  profiles=0)
    rec = random_linear_record(np.random.default_rng(7), name="fc_sec2", c_in=8, c_out=2, rows=2,
                               n=2, m=4)

    def ask_for_profile(run_dir: Path) -> None:
        words = (run_dir / "plan.hex").read_text().split()
        words[1 + 7] = f"{RoundProfile.TFLITE_SINGLE.code:08x}"    # run 0's mode word
        (run_dir / "plan.hex").write_text("\n".join(words) + "\n")

    with pytest.raises(SimulationError, match=r"layer fc_sec2 tile 0: accelerator error flags 0x20 "
                                              r"\(lo>hi\|run-mode\)"):
        run_layers([rec], hw, "icarus", build_root=build_root, mutate=ask_for_profile)


# ------------------------------------------------------------------------------ mutants
def _mutant_rtl(tmp_path: Path, module: str, old: str, new: str,
                extra: tuple[str, ...] = ()) -> Path:
    """A copy of rtl/ (the core's modules and ``extra``) with one replacement in ``module``.v
    (the anchor must exist once)."""
    d = tmp_path / "rtl"
    d.mkdir()
    for m in (*RTL_MODULES, *extra):
        (d / f"{m}.v").write_text((RTL_DIR / f"{m}.v").read_text())
    f = d / f"{module}.v"
    src = f.read_text()
    assert src.count(old) == 1, f"mutation anchor {old!r} not found once in {module}.v"
    f.write_text(src.replace(old, new))
    return d


MUTANTS = {
    # the second rounding step of tflite_double (RDBPOT) shifts by one bit too few
    "tflite_double_rdbpot_shift_off_by_one": (
        "t2c_requant", "e3 = (sh1_q > 31) ? $signed({2'b00, sh1_q}) - 8'sd31 : 8'sd0;",
        "e3 = (sh1_q > 31) ? $signed({2'b00, sh1_q}) - 8'sd30 : 8'sd0;"),
    # tflite_single rounds at sh - 1
    "tflite_single_shift_off_by_one": (
        "t2c_requant", "m2 = MODE_HALF_UP;   // (a * M0 + 2^(sh-1)) >> sh",
        "m2 = MODE_HALF_UP;   s2 = s2 - 8'd1;"),
    # ort_fp32's float32 product keeps 23 significant bits
    "ort_fp32_product_rounding_off_by_one": (
        "t2c_requant", "k2 = (l2 > 8'd24) ? l2 - 8'd24 : 8'd0;",
        "k2 = (l2 > 8'd24) ? l2 - 8'd23 : 8'd0;"),
    # the rounding code loses bit 2: every profile runs as a section-2 mode
    "mode_bit2_dropped": (
        "t2c_accel_top", "mode_q <= cfg_mode_i[2:0];", "mode_q <= {1'b0, cfg_mode_i[1:0]};"),
    # the per-row parameter memory is read at the drain's current address, not one row ahead:
    # each row gets the parameters of the row before it
    "per_row_index_off_by_one": (
        "t2c_accel_top", ".raddr_i (acc_ra[OA_W-1:0]),\n        .rdata_o (rp_rd)",
        ".raddr_i (doaddr_q[OA_W-1:0]),\n        .rdata_o (rp_rd)"),
    # ROWPAR runs take M0/sh from the ch memory anyway
    "per_row_m0_from_channel": (
        "t2c_accel_top", "wire [M0_W-1:0]   rq_m0 = rowpar_q ? rp_rd[BIAS_W +: M0_W] : dm0_q;",
        "wire [M0_W-1:0]   rq_m0 = dm0_q;"),
    # the per-row bias never enters (first run of a ROWPAR layer starts from 0)
    "per_row_bias_dropped": (
        "t2c_accel_top", "if (!drmask_q[drow_q] || (first_q && !rowpar_q)) begin",
        "if (!drmask_q[drow_q] || first_q) begin"),
    # the activation zero point is not subtracted
    "za_dropped": ("t2c_accel_top", ".za_i         (za_q),", ".za_i         ({A_BITS{1'b0}}),"),
    # the weight-operand zero point is not subtracted
    "zw_dropped": ("t2c_accel_top", ".zw_i         (zw_q),", ".zw_i         ({W_BITS{1'b0}}),"),
    # an unsigned second operand is sign-extended
    "w_unsigned_ignored": ("t2c_accel_top", ".w_unsigned_i (wuns_q),", ".w_unsigned_i (1'b0),"),
}
# one mutant per feature in the fast tier
MUTANTS_FAST = ("tflite_single_shift_off_by_one", "per_row_index_off_by_one", "za_dropped",
                "mode_bit2_dropped")


def mutant_cases() -> list:
    """Small records that together use every feature (Icarus, HW_A); the per-channel matmuls
    come first, so the ch memory holds real words when a ROWPAR record runs."""
    return (matmul_cases() + vector_records(_small_directed(5), name="mu", per_row=True)
            + token_wise_cases())


@pytest.fixture(scope="module")
def mutant_records():
    return mutant_cases()


@pytest.mark.parametrize("mutant", [m if m in MUTANTS_FAST else
                                    pytest.param(m, marks=pytest.mark.slow) for m in MUTANTS])
def test_rtl_mutant_is_caught(mutant, mutant_records, tmp_path) -> None:
    """Each fault makes some record differ from golden, localized by the comparison (or, where
    the fault reads a word no run wrote, the X/Z check names the layer, tile, row and channel)."""
    recs = mutant_records
    rtl = _mutant_rtl(tmp_path, *MUTANTS[mutant])
    try:
        res = run_layers(recs, HW_A, "icarus", build_root=tmp_path / "b", rtl_dir=rtl)
    except SimulationError as e:
        assert re.search(r"layer \S+ tile \d+: u_top\.u_out\.mem_q\[\d+\] lane \d+ is X/Z "
                         r"\(row \d+, channel \d+\)", str(e)), str(e)
        print(f"{mutant}: X/Z caught: {str(e).split('; log')[0]}")
        return
    caught = [str(mm) for rec, r in zip(recs, res)
              if (mm := compare(rec, rec.y, r.y, tiles=r.tiles, acc_expected=rec.acc,
                                acc_actual=r.acc)) is not None]
    assert caught, f"{mutant}: no record differs"
    print(f"{mutant}: {len(caught)}/{len(recs)} records differ; first: {caught[0]}")
    with pytest.raises(AssertionError):
        check_exact(recs, res, HW_A, "icarus")


# ------------------------------------------------------------------------------ t2c-sim run
HW_A_ARGS = [a for k, v in (("rows", 2), ("cols", 2), ("n", 2), ("m", 4), ("act_depth", 64),
                            ("w_depth", 64), ("out_depth", 32), ("ch_depth", 8))
             for a in ("--hw-param", f"{k}={v}")]


def cli_records() -> list:
    """One record per feature: a matmul (per-row-and-column parameters, bias, leading dims,
    trans_b, unsigned a), a token-wise tflite_double linear, directed tflite_single cases."""
    recs = vector_records(_small_directed(6, 16), name="cli", per_row=True)
    return [matmul_cases()[3], token_wise_cases()[6],
            next(r for r in recs if r.mode is RoundProfile.TFLITE_SINGLE)]


def test_cli_run_every_feature_verilator(tmp_path, build_root, capsys) -> None:
    """``t2c-sim run RECORDS_DIR``: every layer co-simulated, passes, measured cycles equal the
    estimate."""
    from t2c_sim.cli import EXIT_OK, main
    from t2c_sim.export import save_network

    recs = cli_records()
    save_network(recs, tmp_path / "net")
    rc = main(["run", str(tmp_path / "net"), "--sim", "verilator", *HW_A_ARGS, "--build-root",
               str(build_root), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == EXIT_OK, capsys.readouterr().err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert [ly["name"] for ly in res["layers"]] == [r.name for r in recs]
    for ly in res["layers"]:
        (o,) = ly["sims"]
        assert o["verdict"] == "pass", ly
        assert o["cycles_measured"] == ly["cycles_est"] > 0, ly["name"]
    assert res["layers"][0]["macs"] == int(np.prod(recs[0].y.shape)) * recs[0].c_in


def test_cli_matmul_mismatch_is_localized(tmp_path, build_root, capsys) -> None:
    """A wrong golden output of a matmul with leading dims is found at its (leading index, row,
    channel) and in the tile that computed it; the repro bundle re-runs that tile."""
    from t2c_sim.cli import EXIT_FAIL, main
    from t2c_sim.export import save_network

    rec = random_matmul_record(np.random.default_rng(43), name="attn", p=5, k=9, c=3, lead=(2,),
                               params="row", trans_b=True)
    g, p, c = 1, 3, 2
    y = rec.y.copy()
    y[g, p, c] = rec.y[g, p, c] + 1 if rec.y[g, p, c] < rec.hi else rec.y[g, p, c] - 1
    save_network([rec.replace(y=y)], tmp_path / "net")
    rc = main(["run", str(tmp_path / "net"), "--sim", "icarus", *HW_A_ARGS, "--build-root",
               str(build_root), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == EXIT_FAIL
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    (o,) = res["layers"][0]["sims"]
    mm = o["mismatch"]
    assert (mm["row"], mm["channel"], mm["count"]) == (g * 5 + p, c, 1)
    assert f"row {g * 5 + p} [{g},{p}], channel {c}" in mm["message"]
    plan = estimate.tile_plan(rec, HW_A)
    col = g * rec.c_out + c        # the GEMM column of leading index g, channel c
    (want,) = [t.index for t in plan.tiles if t.p0 <= p < t.p0 + t.rows and
               t.c0 <= col < t.c0 + t.cols]
    assert mm["tile"] == want and len(plan.tiles) > 1
    assert mm["acc_expected"] == mm["acc_actual"] == int(rec.acc[g, p, c])
    capsys.readouterr()
    assert main(["repro", o["repro"], "--no-progress"]) == EXIT_FAIL
    out = capsys.readouterr().out
    assert "STILL FAILS" in out and f"row {g * 5 + p}" in out and f"channel {c}" in out


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_cli_refuses_record_the_build_lacks(case, tmp_path, build_root, capsys) -> None:
    """Exit 2, one stderr line naming the layer and the missing feature; nothing is written."""
    from t2c_sim.cli import EXIT_USAGE, main
    from t2c_sim.export import save_network

    _, make, hw, words = case
    feature = next(f for f in ("profiles", "row_params", "zero_points") if not getattr(hw, f))
    save_network([make()], tmp_path / "net")
    capsys.readouterr()
    rc = main(["run", str(tmp_path / "net"), "--sim", "icarus", "--hw-param", f"{feature}=0",
               "--build-root", str(build_root), "--out", str(tmp_path / "o"), "--no-progress"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == EXIT_USAGE
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------ front door
def front_door_cases() -> list:
    """Token-wise profile, per-channel profile and token-wise section-2 records (the front
    door's DUT file takes profiles and token-wise parameters; matmuls run on the back door)."""
    tw = token_wise_cases()
    return [tw[6], tw[5], tw[0]]


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_front_door_runs_profiles_and_token_wise(sim, build_root) -> None:
    """Through the AXI front door (``--dut t2c_axi_accel``: DMA, descriptors with the 32-bit
    run-mode word, the ch segment of a ROWPAR job into the rp memory), K-split on HW_K: outputs
    and accumulators equal golden and the back door; the front-door cycles equal
    :func:`t2c_sim.estimate.frontdoor.frontdoor_cycles` of the record (which lays per-row
    parameters out one word per row) and the DUT's model."""
    from t2c_sim.cosim.axi_frontdoor import run_layers_frontdoor
    from t2c_sim.cosim.compare import cycle_mismatch
    from t2c_sim.estimate.frontdoor import AxiConfig, frontdoor_cycles

    recs = front_door_cases()
    hw, axi = HW_K, AxiConfig(burst_len=4, rd_latency=3)
    assert all(len(estimate.tile_plan(r, hw).chunks) > 1 for r in recs)
    res = run_layers_frontdoor(recs, hw, sim, axi, build_root=build_root)
    ref = run_layers(recs, hw, sim, build_root=build_root)
    for rec, r, b in zip(recs, res, ref):
        assert np.array_equal(r.y, rec.y) and np.array_equal(r.acc, rec.acc), rec.name
        assert np.array_equal(b.y, rec.y) and np.array_equal(b.acc, rec.acc), rec.name
        fd = frontdoor_cycles(rec, hw, axi)
        (unit,) = r.tiles
        assert (unit.cycles_measured, unit.cycles_predicted) == (fd.total, fd.total), rec.name
        assert cycle_mismatch(r) is None and b.cycles == fd.core, rec.name


def test_front_door_refuses_matmul() -> None:
    """The front door's DUT file has no matmul: one error naming the layer, the DUT and why."""
    from t2c_sim.cosim.axi_frontdoor import frontdoor_dut

    with pytest.raises(UnsupportedLayerError, match=r"layer 'mm0_tensor': cannot run on DUT "
                                                    r"t2c_axi_accel: matmul layers are not "
                                                    r"accepted .*back door.*\[accepts\.ops\]"):
        frontdoor_dut(HW_K).check(matmul_cases()[0])


FRONT_DOOR_MUTANTS = {
    # a ROWPAR job's ch segment goes to the ch memory instead of the rp memory
    "dma_rowpar_segment_to_ch": (
        "t2c_axi_dma", "assign hw_sel_o  = (rd_wseg == 2'd2 && j_rowpar) ? 2'd3 : rd_wseg;",
        "assign hw_sel_o  = rd_wseg;"),
    # the DMA hands the core only the two low bits of the run-mode word (the old 2-bit mode)
    "dma_mode_truncated": (
        "t2c_axi_dma", "assign cfg_mode_o     = cur_q[F_MODE*32 +: 32];",
        "assign cfg_mode_o     = {30'd0, cur_q[F_MODE*32 +: 2]};"),
}


@pytest.mark.parametrize("mutant", list(FRONT_DOOR_MUTANTS))
def test_front_door_mutant_is_caught(mutant, tmp_path) -> None:
    """The front-door check fails on a DMA that drops the run mode's new fields: the core gets
    parameters no run wrote (it flags the job, so nothing is stored) or the wrong rounding."""
    from t2c_sim.cosim.axi_frontdoor import AXI_RTL_MODULES, run_layers_frontdoor
    from t2c_sim.estimate.frontdoor import AxiConfig

    module, old, new = FRONT_DOOR_MUTANTS[mutant]
    rtl = _mutant_rtl(tmp_path, module, old, new, extra=AXI_RTL_MODULES)
    recs = front_door_cases()[:1]            # token-wise tflite_double
    try:
        (r,) = run_layers_frontdoor(recs, HW_K, "icarus", AxiConfig(), build_root=tmp_path / "b",
                                    rtl_dir=rtl, timeout_s=300)
    except SimulationError as e:
        assert re.search(r"twp1_tflite_double", str(e)), str(e)
        print(f"{mutant}: {str(e)[:300]}")
        return
    assert compare(recs[0], recs[0].y, r.y) is not None, f"{mutant}: outputs still equal"
