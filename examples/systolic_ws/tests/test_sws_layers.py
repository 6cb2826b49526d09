"""sws_top (examples/systolic_ws): random layers through its AXI4-Stream ports, both simulators.

* ``test_layers``: the fast table of layers (odd shapes, every rounding mode, saturation,
  signedness, N:M, conv incl. groups, back-to-back layers) on Icarus and Verilator, without and
  with seeded random back-pressure on both streams. Outputs must equal the t2c_sim golden model
  (``np.array_equal``, inside the testbench); the cycles measured by the testbench's monitor
  (first input beat accepted .. last output beat accepted) must equal ``cycles_o``, and without
  back-pressure also ``cycle_model.cycles``; with back-pressure the measured and modelled cycles
  and the difference (stall cycles caused by the back-pressure) are printed.
* ``test_wrap``: accumulators that wrap at ``ACC_BITS = 20`` (``MULT_BITS = 16``, 16-bit lanes).
* ``test_hazards_and_sweep``: arrays where the input hold rules bind (2 x 7, 7 x 1) and the
  1 x 1 corner, with targeted shapes and a random shape/format sweep.
* ``test_big_array`` (slow): an 8 x 8 array, larger multi-tile layers.
* ``test_mutant_is_caught``: a mutated copy of one RTL file must fail the same check (outputs,
  cycles, or the testbench's timeout); ``test_error_mutant_is_caught`` likewise for the flags.
* ``test_errors``: refused descriptors, framing errors and out-of-range parameters set ``err_o``.
* ``test_raw_harness``: the Python-free HDL harness used by ``bench_sws.py`` is exact too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import sws_cases as sc

from t2c_sim.cosim import sim
from t2c_sim.errors import MismatchError, SimulationError

RTL, TB, TOP, SOURCES = sc.RTL, sc.TB, sc.TOP, sc.SOURCES

FAST = {"ROWS": 4, "COLS": 4, "LANES": 4, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32,
        "MULT_BITS": 32, "Y_BITS": 8, "ACC_DEPTH": 8}
WRAP = {"ROWS": 3, "COLS": 2, "LANES": 4, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 20,
        "MULT_BITS": 16, "Y_BITS": 16, "ACC_DEPTH": 5}
BIG = {"ROWS": 8, "COLS": 8, "LANES": 8, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32,
       "MULT_BITS": 32, "Y_BITS": 8, "ACC_DEPTH": 32}


BP = {"none": (0.0, 0.0), "both": (0.3, 0.4), "out": (0.0, 0.7)}


@pytest.mark.sim
@pytest.mark.parametrize("bp", list(BP))
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_layers(simulator: str, bp: str) -> None:
    seed = 1101 + list(BP).index(bp)
    print(f"seed={seed}")
    cases = sc.fast_cases(np.random.default_rng(seed))
    pin, pout = BP[bp]
    res = sc.run_cases(simulator, FAST, cases, pause_in=pin, pause_out=pout, seed=seed)
    sc.report(res, f"{simulator}, back-pressure {bp} (p_in={pin}, p_out={pout})")


@pytest.mark.sim
@pytest.mark.parametrize("simulator", [
    "icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_wrap(simulator: str) -> None:
    seed = 1201
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    cases = sc.wrap_cases(rng, 20, 16) + sc.fast_cases(rng, acc_bits=20, mult_bits=16)[:3]
    assert any(np.any(np.abs(c.bias) > (1 << 18)) for c in cases)
    sc.run_cases(simulator, WRAP, cases, pause_in=0.2, pause_out=0.2, seed=seed)


# Arrays whose shape makes the two hold rules bind: a wide, short array (weight-bank hold) and a
# tall, narrow one with tiny row tiles (accumulator-bank hold), plus the 1 x 1 corner case.
ASYM = {
    "wide2x7": {**FAST, "ROWS": 2, "COLS": 7, "LANES": 8, "ACC_DEPTH": 3},
    "tall7x1": {**FAST, "ROWS": 7, "COLS": 1, "LANES": 8, "ACC_DEPTH": 2},
    "one1x1": {**FAST, "ROWS": 1, "COLS": 1, "LANES": 4, "ACC_DEPTH": 1},
}
HAZARD_SHAPES = [(1, 5, 3), (1, 9, 7), (2, 6, 2), (1, 1, 3), (5, 1, 4), (3, 2, 5), (4, 3, 3)]


def hazard_cases(rng: np.random.Generator, n_sweep: int) -> list[sc.Case]:
    out = []
    for i, (p, k, c) in enumerate(HAZARD_SHAPES):
        rec = sc.random_linear_record(rng, rows=p, c_in=k, c_out=c, name=f"hz{i}_{p}x{k}x{c}",
                                      mode=sc.MODES[i % 4])
        out += sc.cases_of(rec)
    return out + sc.sweep_cases(rng, n_sweep, 12, 12, 10)


@pytest.mark.sim
@pytest.mark.parametrize("simulator", [
    "icarus", pytest.param("verilator", marks=pytest.mark.slow)])
@pytest.mark.parametrize("array", list(ASYM))
def test_hazards_and_sweep(simulator: str, array: str) -> None:
    """Random shapes on arrays where the hold rules bind; exact outputs and cycles."""
    seed = 1301 + list(ASYM).index(array)
    print(f"seed={seed}")
    params = ASYM[array]
    cases = hazard_cases(np.random.default_rng(seed), 12)
    stalls = [sc.schedule(c.shape, params)["in_stall"] for c in cases]
    if array != "one1x1":
        assert any(stalls), "no case makes the accelerator hold its input: the table is too weak"
    res = sc.run_cases(simulator, params, cases, seed=seed)
    sc.report(res, f"{simulator}, {array}: model input stalls {sum(stalls)}")
    bp = sc.run_cases(simulator, params, cases, pause_in=0.25, pause_out=0.5, seed=seed)
    sc.report(bp, f"{simulator}, {array}, back-pressure p_in=0.25 p_out=0.5")


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("simulator", sim.SIMULATORS)
def test_big_array(simulator: str) -> None:
    """An 8 x 8 array with multi-tile layers in every dimension, with and without back-pressure."""
    seed = 1401
    rng = np.random.default_rng(seed)
    recs = [sc.random_linear_record(rng, rows=70, c_in=45, c_out=19, name="fc70x45x19"),
            sc.random_conv_record(rng, c_in=6, c_out=12, h=7, w=7, name="conv7x7", mode="half_up"),
            sc.random_linear_record(rng, rows=33, c_in=64, c_out=24, n=2, m=4, name="nm64")]
    cases = [c for r in recs for c in sc.cases_of(r)] + sc.sweep_cases(rng, 10, 40, 40, 20)
    sc.report(sc.run_cases(simulator, BIG, cases, seed=seed), f"{simulator}, 8x8")
    sc.report(sc.run_cases(simulator, BIG, cases, pause_in=0.3, pause_out=0.3, seed=seed),
           f"{simulator}, 8x8, back-pressure 0.3/0.3")


# ------------------------------------------------------------------------------ mutants
MUTANTS = {
    # file, anchor, replacement, parameter set
    "requant_half_even_flipped": (
        "sws_requant.v", "2'd0:    bias_d = half_d - $signed({{(R_BITS - 1){1'b0}}, !odd_d});",
        "2'd0:    bias_d = half_d - $signed({{(R_BITS - 1){1'b0}}, odd_d});", "FAST"),
    "requant_half_away_as_half_up": (
        "sws_requant.v", "2'd2:    bias_d = half_d - $signed({{(R_BITS - 1){1'b0}}, v_d[R_BITS-1]});",
        "2'd2:    bias_d = half_d;", "FAST"),
    "ctrl_k_loop_off_by_one": (
        "sws_ctrl.v", "lastk_d = krem_q <= ROWS_L;", "lastk_d = krem_q < ROWS_L;", "FAST"),
    "ctrl_lane_mask_off_by_one": (
        "sws_ctrl.v", "av_mask_d[j] = (j < kr_d);", "av_mask_d[j] = (j <= kr_d);", "FAST"),
    "accbuf_bias_ignored": (
        "sws_accbuf.v", "add_wrap(acc_first_w ? bias_q[acc_bank_w]", "add_wrap(1'b0 ? bias_q[acc_bank_w]",
        "FAST"),
    "requant_no_clamp": (
        "sws_requant.v", "y_d = lo_d[Y_BITS-1:0];", "y_d = z_d[Y_BITS-1:0];", "FAST"),
    "ctrl_no_weight_hold": (
        "sws_ctrl.v", "HOLD_L = COLS_I - ONE_I;", "HOLD_L = {IDX_BITS{1'b0}};", "wide2x7"),
    "ctrl_no_bank_hold": (
        "sws_ctrl.v", "sub_q == 2'd0 && abusy_q[tbank_q]);", "sub_q == 2'd0 && 1'b0);", "tall7x1"),
    # the DUT stops accepting activations: the testbench's timeout must report it
    "ctrl_hangs_in_activations": (
        "sws_ctrl.v", "S_DESC, S_ACT, S_DISCARD: ready_d = 1'b1;", "S_DESC, S_DISCARD: ready_d = 1'b1;",
        "FAST"),
    # outputs stay right, only the timing changes: the cycle check must catch it
    "ctrl_weight_hold_one_cycle_long": (
        "sws_ctrl.v", "HOLD_L = COLS_I - ONE_I;", "HOLD_L = COLS_I;", "wide2x7"),
}


def mutant_sources(tmp_path: Path, name: str) -> list[Path]:
    fname, old, new, _ = {**MUTANTS, **ERROR_MUTANTS}[name]
    d = tmp_path / "rtl"
    d.mkdir()
    for f in SOURCES:
        shutil.copy(f, d / f.name)
    src = (d / fname).read_text()
    if old not in src:
        raise AssertionError(f"mutation anchor {old!r} not found in {fname}")
    (d / fname).write_text(src.replace(old, new, 1))
    return sorted(d.glob("*.v"))


@pytest.mark.sim
@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutant_is_caught(mutant: str, tmp_path: Path) -> None:
    """A mutated RTL file fails the layer check (outputs, cycles, or a hang)."""
    pset = MUTANTS[mutant][3]
    params = FAST if pset == "FAST" else ASYM[pset]
    rng = np.random.default_rng(1501)
    cases = sc.fast_cases(rng) if pset == "FAST" else hazard_cases(rng, 0)
    with pytest.raises((MismatchError, SimulationError)) as ei:
        sc.run_cases("icarus", params, cases, sources=mutant_sources(tmp_path, mutant),
                  build_root=tmp_path / "build", timeout_s=300)
    msg = str(ei.value)
    print(f"{mutant}: {msg[:300]}")
    if isinstance(ei.value, SimulationError):
        # Icarus: an output beat carrying X (a read of an unwritten accumulator or parameter)
        # stops the stream sink; that is the mutant being caught, not an infrastructure fault.
        assert "non-0/1 values" in msg, msg


def test_mutant_anchors_exist() -> None:
    """Every mutation anchor is present exactly once (a stale anchor would silently test nothing)."""
    for name, (fname, old, _new, _p) in {**MUTANTS, **ERROR_MUTANTS}.items():
        assert (RTL / fname).read_text().count(old) == 1, name


# ------------------------------------------------------------------------------ error flags
def _set_word(frame: np.ndarray, beat: int, value: int) -> np.ndarray:
    f = frame.copy()
    f[beat, :4] = np.frombuffer(int(value & 0xFFFFFFFF).to_bytes(4, "little"), dtype=np.uint8)
    return f


def error_steps(params: dict, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Refused descriptors, framing errors, out-of-range parameters, then good layers."""
    good = sc.cases_of(sc.random_linear_record(rng, rows=5, c_in=7, c_out=6, name="good",
                                               acc_bits=int(params["ACC_BITS"]),
                                               mult_bits=int(params["MULT_BITS"])))[0]
    frame = sc.pack_layer(good.x, good.w, good.bias, good.m0, good.sh, z_y=good.z_y, lo=good.lo,
                          hi=good.hi, mode=good.mode, a_signed=good.a_signed, params=params)
    desc = frame[:7]
    junk = rng.integers(0, 256, size=(5, frame.shape[1]), dtype=np.uint8)
    shape = {"rows": 5, "c_out": 6, "y_signed": good.y_signed}
    arrays = {
        "p_zero": _set_word(desc, 0, 0),
        "k_zero_junk": np.concatenate([_set_word(desc, 1, 0), junk]),
        "lo_gt_hi_junk": np.concatenate([_set_word(_set_word(desc, 4, 10), 5, 9), junk]),
        "bad_flags": _set_word(desc, 6, 0x20),
        "good": frame, "good_head": frame[:40], "good_tail": frame[40:],
        "desc_head": frame[:3], "desc_tail": frame[3:],
        "m0_too_big": _set_word(frame, 8, 1 << int(params["MULT_BITS"])),
        "sh_too_big": _set_word(frame, 9, 64),
        "y_good": good.y,
    }
    refused = {"rows": 1, "c_out": 1, "y_signed": True, "outputs": 0}
    steps = [
        {"name": "p_zero", "frames": ["p_zero"], "err": 0b001, **refused},
        {"name": "good_after_refusal", "frames": ["good"], "err": 0, "outputs": 1, "y": "y_good",
         **shape},
        {"name": "k_zero_discarded", "frames": ["k_zero_junk"], "err": 0b001, **refused},
        {"name": "lo_gt_hi_discarded", "frames": ["lo_gt_hi_junk"], "err": 0b001, **refused},
        {"name": "bad_flags", "frames": ["bad_flags"], "err": 0b001, **refused},
        {"name": "early_tlast", "frames": ["good_head", "good_tail"], "err": 0b010, "outputs": 1,
         "y": "y_good", **shape},
        {"name": "tlast_in_descriptor", "frames": ["desc_head", "desc_tail"], "err": 0b010,
         "outputs": 1, "y": "y_good", **shape},
        {"name": "sh_too_big", "frames": ["sh_too_big"], "err": 0b100, "outputs": 1, **shape},
        {"name": "good_clears_flags", "frames": ["good"], "err": 0, "outputs": 1, "y": "y_good",
         **shape},
    ]
    if int(params["MULT_BITS"]) < 32:
        steps.insert(-1, {"name": "m0_too_big", "frames": ["m0_too_big"], "err": 0b100,
                          "outputs": 1, **shape})
    return steps, arrays


ERROR_MUTANTS = {
    "ctrl_flags_not_checked": ("sws_ctrl.v", "|| (word_d[31:3] != 29'd0);", "|| 1'b0;", "FAST"),
    "ctrl_sh_range_not_checked": ("sws_ctrl.v", "sub_q == 2'd2 && word_d[31:6] != 26'd0",
                                  "sub_q == 2'd2 && 1'b0", "FAST"),
    "ctrl_tlast_not_checked": ("sws_ctrl.v", "(s_axis_tlast != expect_last_d)) begin", "1'b0) begin",
                               "FAST"),
}


@pytest.mark.sim
@pytest.mark.parametrize("mutant", list(ERROR_MUTANTS))
def test_error_mutant_is_caught(mutant: str, tmp_path: Path) -> None:
    """A parser that misses one error check fails test_errors' steps."""
    steps, arrays = error_steps(FAST, np.random.default_rng(1601))
    info = sim.build("icarus", TOP, mutant_sources(tmp_path, mutant), FAST, tmp_path / "build")
    with pytest.raises(MismatchError, match="err_o|timeout") as ei:
        sim.run(info, TB, testcase="run_errors", payload={"params": FAST, "steps": steps},
                arrays=arrays, timeout_s=300)
    print(f"{mutant}: {str(ei.value)[:300]}")


@pytest.mark.sim
@pytest.mark.parametrize("simulator,pset", [("icarus", "FAST"), ("icarus", "WRAP"),
                                            pytest.param("verilator", "FAST", marks=pytest.mark.slow)])
def test_errors(simulator: str, pset: str) -> None:
    """Refused layers produce no output and set err_o[0]; framing sets err_o[1]; bad M0/sh err_o[2]."""
    params = FAST if pset == "FAST" else WRAP
    steps, arrays = error_steps(params, np.random.default_rng(1601))
    info = sim.build(simulator, TOP, SOURCES, params, sim.default_build_root())
    sim.run(info, TB, testcase="run_errors", payload={"params": params, "steps": steps},
            arrays=arrays, timeout_s=300)


# ------------------------------------------------------------------------------ raw harness
@pytest.mark.sim
@pytest.mark.parametrize("simulator", [
    "icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_raw_harness(simulator: str, tmp_path: Path) -> None:
    """The Python-free harness (used by bench_sws.py) gives golden outputs and model cycles."""
    seed = 1701
    rng = np.random.default_rng(seed)
    cases = sc.fast_cases(rng)[:4]
    cmd = sc.raw_build(simulator, FAST, sim.default_build_root())
    for i, c in enumerate(cases):
        for pin, pout in ((0, 0), (30, 40)):
            r = sc.raw_run(cmd, c, FAST, tmp_path / f"{i}-{pin}", pause_in=pin, pause_out=pout,
                           seed=seed + i, simulator=simulator)
            assert np.array_equal(r["y"], c.y), (c.name, pin)
            assert r["err"] == 0 and r["cycles"] == r["cycles_o"], (c.name, r)
            model = sc.model_cycles(c.shape, FAST)
            assert r["cycles"] == model if pin == 0 else r["cycles"] > model, (c.name, r, model)
