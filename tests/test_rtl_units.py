"""RTL unit tests (requantizer, N:M PE, PE array in both implementations) on Icarus and
Verilator, lint of the non-default array implementation, and the sim.py infrastructure.

The simulator tests build through :mod:`t2c_sim.cosim.sim` (cached under ``build/sim``) and
run the cocotb testbenches in ``testbenches/``; a failing vector raises ``MismatchError``.
Mutation tests prove the testbenches can fail: a deliberately broken copy of the RTL must be
caught.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from t2c_sim.cosim import sim
from t2c_sim.errors import MismatchError, SimulationError

BUILD_ROOT = sim.default_build_root()

REQUANT_SETS = {
    # section 2 and the three runtime profiles (the accelerator's requantizer)
    "m32": {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16},
    # section 2 only fits (M0 is too narrow for any profile); profiles built but unused
    "m16": {"ACC_BITS": 24, "MULT_BITS": 16, "SHIFT_BITS": 6, "Y_BITS": 8},
    # a 32-bit output shows float32(acc) of ort_fp32 directly (m32 = 1) and the left shifts
    "m32y32": {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 32},
    # ort_fp32 on a 24-bit accumulator (sign-extended to int32); TFLite's M0 does not fit
    "a24m24": {"ACC_BITS": 24, "MULT_BITS": 24, "SHIFT_BITS": 6, "Y_BITS": 12},
    # a build without the profiles: section 2 exactly as before
    "noprof": {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16, "PROFILES": 0},
}
# Verilator repeats of the extra requantizer sets run in `make test-full` (Icarus covers them),
# and so do the two extra profile sets on Icarus.
REQUANT_SLOW_ON_VERILATOR = ("m32y32", "a24m24", "noprof")
REQUANT_SLOW = ("m32y32", "a24m24")
PE_SETS = {
    "2of4_8b": {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 4, "IDX_BITS": 2},
    "1of4_8b": {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 1, "M": 4, "IDX_BITS": 2},
    "4of4_dense": {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 4, "M": 4, "IDX_BITS": 2},
    "2of8_4b": {"A_BITS": 4, "W_BITS": 4, "ACC_BITS": 24, "N": 2, "M": 8, "IDX_BITS": 3},
    "2of4_wrap": {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 17, "N": 2, "M": 4, "IDX_BITS": 2},
    # M not a power of two: indices 5..7 exist and must select 0
    "2of5_oob_idx": {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 5, "IDX_BITS": 3},
}


def _run_unit(simulator: str, top: str, params: dict, payload: dict,
              sources: list[Path] | None = None, build_root: Path = BUILD_ROOT) -> float:
    t0 = time.monotonic()
    info = sim.build(simulator, top, sources or sim.rtl_sources(top), params, build_root)
    tb = sim.TB_DIR / f"test_{top.removeprefix('t2c_')}.py"
    sim.run(info, tb, payload={"params": params, **payload}, timeout_s=300)
    return time.monotonic() - t0


# ------------------------------------------------------------------------------ RTL units
@pytest.mark.sim
@pytest.mark.parametrize("simulator,pset", [
    pytest.param(s, p, marks=pytest.mark.slow, id=f"{p}-{s}")
    if (s == "verilator" and p in REQUANT_SLOW_ON_VERILATOR) or p in REQUANT_SLOW
    else pytest.param(s, p, id=f"{p}-{s}")
    for p in REQUANT_SETS for s in sim.SIMULATORS])
def test_requant(simulator: str, pset: str) -> None:
    """Section-2 modes and, where the build and M0 width allow, every rounding profile against
    ``rounding_profiles`` (directed ties of each rounding step, extremes, random)."""
    seed = 11 + list(REQUANT_SETS).index(pset)
    print(f"seed={seed}")
    _run_unit(simulator, "t2c_requant", REQUANT_SETS[pset],
              {"seed": seed, "n_random": 3000, "n_profile": 1000})


# Verilator repeats of the parameter sets Icarus already covers run only in `make test-full`.
PE_SLOW_ON_VERILATOR = ("1of4_8b", "4of4_dense", "2of5_oob_idx")


@pytest.mark.sim
@pytest.mark.parametrize("simulator,pset", [
    pytest.param(s, p, marks=pytest.mark.slow, id=f"{p}-{s}")
    if (s == "verilator" and p in PE_SLOW_ON_VERILATOR) else pytest.param(s, p, id=f"{p}-{s}")
    for p in PE_SETS for s in sim.SIMULATORS])
def test_nm_pe(simulator: str, pset: str) -> None:
    seed = 21 + list(PE_SETS).index(pset)
    print(f"seed={seed}")
    _run_unit(simulator, "t2c_nm_pe", PE_SETS[pset], {"seed": seed, "n_cycles": 1500})


# PE array (both implementations, PACKED 0/1): shapes, a minimal ACC_BITS (wraps), M not a
# power of two (indices >= M), more than 8 kept values (the packed column's loop), 1x1 dense.
ARRAY_SETS = {
    "3x2_2of4": {"ROWS": 3, "COLS": 2, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 4,
                 "IDX_BITS": 2},
    "2x3_wrap17": {"ROWS": 2, "COLS": 3, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 17, "N": 2,
                   "M": 4, "IDX_BITS": 2},
    "2x2_2of5_oob": {"ROWS": 2, "COLS": 2, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2,
                     "M": 5, "IDX_BITS": 3},
    "3x1_9of16_4b": {"ROWS": 3, "COLS": 1, "A_BITS": 4, "W_BITS": 4, "ACC_BITS": 24, "N": 9,
                     "M": 16, "IDX_BITS": 4},
    "1x1_dense1": {"ROWS": 1, "COLS": 1, "A_BITS": 6, "W_BITS": 5, "ACC_BITS": 20, "N": 1,
                   "M": 1, "IDX_BITS": 1},
    # operand zero points (activation x activation matmul): ZP = 1, also at the minimal
    # ACC_BITS = A_BITS + W_BITS + 3 (wraps), with M not a power of two and N > 8
    "3x2_2of4_zp": {"ROWS": 3, "COLS": 2, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2,
                    "M": 4, "IDX_BITS": 2, "ZP": 1},
    "2x3_wrap19_zp": {"ROWS": 2, "COLS": 3, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 19, "N": 2,
                      "M": 4, "IDX_BITS": 2, "ZP": 1},
    "2x2_2of5_oob_zp": {"ROWS": 2, "COLS": 2, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2,
                        "M": 5, "IDX_BITS": 3, "ZP": 1},
    "3x1_9of16_4b_zp": {"ROWS": 3, "COLS": 1, "A_BITS": 4, "W_BITS": 4, "ACC_BITS": 24, "N": 9,
                        "M": 16, "IDX_BITS": 4, "ZP": 1},
}
# zero-point sets in the fast tier (lane-packed on Icarus, like the others)
ARRAY_FAST = ("3x2_2of4", "2x3_wrap17", "2x2_2of5_oob", "3x1_9of16_4b", "1x1_dense1",
              "3x2_2of4_zp", "2x3_wrap19_zp")


def _run_array(simulator: str, pset: str, packed: int, sources: list[Path] | None = None,
               build_root: Path = BUILD_ROOT, n_cycles: int = 300) -> None:
    params = {**ARRAY_SETS[pset], "PACKED": packed}
    seed = 41 + list(ARRAY_SETS).index(pset)
    print(f"seed={seed}")
    srcs = sources or sim.rtl_sources("t2c_nm_pe", "t2c_pe_array")
    info = sim.build(simulator, "t2c_pe_array", srcs, params, build_root)
    sim.run(info, sim.TB_DIR / "test_pe_array.py",
            payload={"params": params, "seed": seed, "n_cycles": n_cycles}, timeout_s=300)


# Fast tier: the lane-packed array on Icarus (the PE-instance array runs in every fast Verilator
# co-simulation); every other combination in the slow tier.
@pytest.mark.sim
@pytest.mark.parametrize("simulator,pset,packed", [
    pytest.param(s, p, k, id=f"{p}-{s}-packed{k}",
                 marks=[] if (s, k) == ("icarus", 1) and p in ARRAY_FAST else [pytest.mark.slow])
    for p in ARRAY_SETS for s in sim.SIMULATORS for k in (0, 1)])
def test_pe_array(simulator: str, pset: str, packed: int) -> None:
    _run_array(simulator, pset, packed)


@pytest.mark.sim
def test_pe_array_testbench_catches_packed_mutant(tmp_path: Path) -> None:
    """Without the lane offset, a negative lane borrows from its neighbour: the bench fails."""
    src = (sim.RTL_DIR / "t2c_pe_array.v").read_text()
    old = "+ kv) & lmask;  // the sum is self-determined and all signed"
    assert old in src
    (tmp_path / "t2c_pe_array.v").write_text(src.replace(old, ") & lmask;"))
    with pytest.raises(MismatchError, match=r"drain row \d+ mismatch at cycle \d+"):
        _run_array("icarus", "3x2_2of4", 1, [sim.RTL_DIR / "t2c_nm_pe.v",
                                            tmp_path / "t2c_pe_array.v"], tmp_path / "b")


# scripts/lint_rtl.py lints the tops with their default parameters (PACKED = 0); the
# lane-packed array is linted here, through the top, in shapes that reach its corner cases.
PACKED_LINT = ["", "-GROWS=3 -GCOLS=2 -GN=4 -GM=4", "-GN=2 -GM=5", "-GROWS=1 -GCOLS=1 -GN=1 -GM=1",
               "-GROWS=2 -GCOLS=2 -GN=9 -GM=16 -GA_BITS=4 -GW_BITS=4 -GACC_BITS=24"]


@pytest.mark.sim
@pytest.mark.parametrize("params", PACKED_LINT, ids=lambda s: s or "default")
def test_packed_array_is_lint_clean(params: str) -> None:
    import subprocess

    env = sim.find_tools()["env"]
    g = ["-GPACKED=1", *params.split()]
    files = [str(sim.RTL_DIR / f) for f in ("t2c_accel_top.v",)]
    v = subprocess.run(["verilator", "--lint-only", "-Wall", "-y", str(sim.RTL_DIR),
                        "--top-module", "t2c_accel_top", *g, *files], env=env,
                       capture_output=True, text=True)
    assert v.returncode == 0 and "%Warning" not in v.stderr, v.stderr[-3000:]
    ip = [f"-Pt2c_accel_top.{a[2:]}" for a in g]
    i = subprocess.run(["iverilog", "-Wall", "-g2005", "-o", "/dev/null", "-s", "t2c_accel_top",
                        *ip, *sorted(str(p) for p in sim.RTL_DIR.glob("*.v"))], env=env,
                       capture_output=True, text=True)
    assert i.returncode == 0 and not i.stdout.strip() and not i.stderr.strip(), i.stderr[-3000:]


def _mutant(tmp_path: Path, name: str, old: str, new: str) -> list[Path]:
    src = (sim.RTL_DIR / f"{name}.v").read_text()
    if old not in src:
        raise AssertionError(f"mutation anchor {old!r} not found in {name}.v")
    dst = tmp_path / f"{name}.v"
    dst.write_text(src.replace(old, new, 1))
    return [dst]


MUTANTS = {
    "requant_half_even_as_half_up": (
        "t2c_requant", "MODE_HALF_EVEN: up_d = half_d & (sticky_d | q_d[0]);",
        "MODE_HALF_EVEN: up_d = half_d;"),
    "requant_no_saturation": (
        "t2c_requant", "y_d = lo2_q;", "y_d = sum_d[Y_BITS-1:0];"),
    # runtime rounding profiles: each rounding step of each profile broken once
    "requant_srdhm_without_nudge": (
        "t2c_requant", "            s2 = 8'd31;\n            m2 = MODE_HALF_UP;",
        "            s2 = 8'd31;\n            m2 = 2'd3;"),
    "requant_srdhm_nudge_away_from_zero": (
        "t2c_requant", "            s2 = 8'd31;\n            m2 = MODE_HALF_UP;",
        "            s2 = 8'd31;\n            m2 = MODE_HALF_AWAY;"),
    "requant_rdbpot_ties_up": (
        "t2c_requant", "h3 & (st3 | ~v3[V3-1])", "h3"),
    "requant_f32_conversion_drops_sticky": (
        "t2c_requant", "opa = $signed(q1 + {31'd0, h1 & (st1 | q1[0])});",
        "opa = $signed(q1 + {31'd0, h1 & q1[0]});"),
    "requant_f32_product_truncated": (
        "t2c_requant", "            s2 = k2;\n            m2 = MODE_HALF_EVEN;",
        "            s2 = k2;\n            m2 = 2'd3;"),
    "requant_ort_final_ties_up": (
        "t2c_requant", "up3 = (mode2_q == ORT_FP32) ? h3 & (st3 | q3[0])",
        "up3 = (mode2_q == ORT_FP32) ? h3"),
    # (int32(int32(r) + z_y) == int32(r + z_y): dropping only tflite_single's inner wrap would
    # be an equivalent mutant; dropping the outer one is not)
    "requant_tflite_double_no_int32_wrap": (
        "t2c_requant", "assign wrap32_p = (mode2_q == TFLITE_DOUBLE) || (mode2_q == TFLITE_SINGLE);",
        "assign wrap32_p = (mode2_q == TFLITE_SINGLE);"),
    "requant_tflite_single_no_int32_wrap": (
        "t2c_requant", "assign wrap32_p = (mode2_q == TFLITE_DOUBLE) || (mode2_q == TFLITE_SINGLE);",
        "assign wrap32_p = (mode2_q == TFLITE_DOUBLE);"),
    "pe_ignores_a_signed": (
        "t2c_nm_pe", "a_d   = $signed({a_signed_i & sel_d[A_BITS-1], sel_d});",
        "a_d   = $signed({sel_d[A_BITS-1], sel_d});"),
    "pe_clear_without_products": (
        "t2c_nm_pe", "    if (valid_i) begin\n      acc_d = acc_d + sum_d;",
        "    if (valid_i && !clear_i) begin\n      acc_d = acc_d + sum_d;"),
}


# One mutant per profile in the fast tier; the other profile steps in `make test-full`.
MUTANTS_SLOW = ("requant_srdhm_nudge_away_from_zero", "requant_rdbpot_ties_up",
                "requant_f32_product_truncated", "requant_ort_final_ties_up",
                "requant_tflite_single_no_int32_wrap")


@pytest.mark.sim
@pytest.mark.parametrize("mutant", [pytest.param(m, marks=pytest.mark.slow) if m in MUTANTS_SLOW
                                    else m for m in MUTANTS])
def test_testbench_catches_mutant(mutant: str, tmp_path: Path) -> None:
    """A broken RTL copy must fail its testbench with a MismatchError naming the vector."""
    top, old, new = MUTANTS[mutant]
    params = REQUANT_SETS["m32"] if top == "t2c_requant" else PE_SETS["2of4_8b"]
    with pytest.raises(MismatchError, match=r"mismatch at (vector|cycle) \d+"):
        _run_unit("icarus", top, params, {"seed": 5, "n_random": 300, "n_cycles": 300,
                                          "n_profile": 100},
                  sources=_mutant(tmp_path, top, old, new), build_root=tmp_path / "b")


WAIT_TB = """
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

@cocotb.test()
async def test_wait(dut):
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns", impl="gpi").start())
    await ClockCycles(dut.clk_i, 5)
"""


@pytest.mark.sim
@pytest.mark.parametrize("simulator,top,bad,needle", [
    ("icarus", "t2c_nm_pe", {**PE_SETS["2of4_8b"], "N": 5}, "N=5 must be in 1..M"),
    ("verilator", "t2c_nm_pe", {**PE_SETS["2of4_8b"], "N": 5}, "N=5 must be in 1..M"),
    ("icarus", "t2c_nm_pe", {**PE_SETS["2of4_8b"], "IDX_BITS": 3}, "IDX_BITS=3 but M=4 needs 2"),
    ("icarus", "t2c_nm_pe", {**PE_SETS["2of4_8b"], "ACC_BITS": 16}, "ACC_BITS=16 must be in"),
    ("icarus", "t2c_requant", {**REQUANT_SETS["m32"], "SHIFT_BITS": 7},
     "SHIFT_BITS=7 is outside 1..6"),
])
def test_illegal_parameters_stop_the_simulation(simulator: str, top: str, bad: dict,
                                                needle: str, tmp_path: Path) -> None:
    """Illegal parameters stop the simulation at time 0 with a $fatal naming the instance."""
    tb = tmp_path / "tb_wait.py"
    tb.write_text(WAIT_TB)
    info = sim.build(simulator, top, sim.rtl_sources(top), bad, BUILD_ROOT)
    with pytest.raises(SimulationError) as ei:
        sim.run(info, tb, timeout_s=60)
    log = Path(re.search(r"log: (\S+)", str(ei.value)).group(1)).read_text()
    assert f"{top}: {needle}" in log, log[-2000:]


# ------------------------------------------------------------------------------ sim.py
TINY_V = """`timescale 1ns / 1ps
module tiny #(parameter integer W = 4) (input wire clk_i, output reg [W-1:0] q_o);
  initial q_o = {W{1'b0}};
  always @(posedge clk_i) q_o <= q_o + 1'b1;
endmodule
"""

TINY_TB = """
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import SimulationError

@cocotb.test()
async def test_tiny(dut):
    what = load_payload()["what"]
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns", impl="gpi").start())
    await ClockCycles(dut.clk_i, 3)
    if what == "hang":
        while True:
            await Timer(1, unit="us")
    if what == "fail":
        assert int(dut.q_o.value) == 99, "boom: q_o is not 99"
    if what == "xz":
        raise SimulationError("y_o is X at vector 7")
"""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    v = tmp_path / "tiny.v"
    v.write_text(TINY_V)
    tb = tmp_path / "tb_tiny.py"
    tb.write_text(TINY_TB)
    return v, tb


def test_build_key_distinct_and_stable(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    v, _ = tiny
    from t2c_sim.cosim.sim.builder import _build_key as k

    base = k("icarus", "tiny", [v], {"W": 4}, [], {}, False, [])
    assert base == k("icarus", "tiny", [v], {"W": 4}, [], {}, False, [])
    others = {
        k("icarus", "tiny", [v], {"W": 5}, [], {}, False, []),
        k("verilator", "tiny", [v], {"W": 4}, [], {}, False, []),
        k("icarus", "tiny", [v], {"W": 4}, [], {}, True, []),
        k("icarus", "tiny", [v], {"W": 4}, [], {"X": 1}, False, []),
    }
    assert base not in others and len(others) == 4
    v.write_text(TINY_V + "// edited\n")
    assert k("icarus", "tiny", [v], {"W": 4}, [], {}, False, []) != base


def test_missing_iverilog_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SimulationError) as ei:
        sim.find_tools(("icarus",), path=str(tmp_path))
    msg = str(ei.value)
    assert msg == "iverilog not found; run `make setup` (or apt-get install iverilog)"


def test_missing_verilator_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SimulationError) as ei:
        sim.find_tools(("verilator",), verilator_root=tmp_path)
    assert "\n" not in str(ei.value) and str(ei.value).startswith("verilator not found")


def test_find_tools_env() -> None:
    tools = sim.find_tools()
    env = tools["env"]
    assert env["VERILATOR_ROOT"] == tools["verilator_root"]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(tools["verilator_root"]) / "bin")
    assert Path(tools["verilator"]).is_file() and Path(tools["iverilog"]).is_file()


@pytest.mark.sim
def test_build_dirs_reused_and_distinct(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    v, tb = tiny
    a = sim.build("icarus", "tiny", [v], {"W": 4}, tmp_path / "b")
    b = sim.build("icarus", "tiny", [v], {"W": 4}, tmp_path / "b")
    c = sim.build("icarus", "tiny", [v], {"W": 6}, tmp_path / "b")
    assert not a.reused and b.reused and b.build_dir == a.build_dir
    assert c.build_dir != a.build_dir and not c.reused
    assert sim.run(b, tb, payload={"what": "pass"}).is_file()


@pytest.mark.sim
def test_concurrent_builds_of_one_key_build_once(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    v, _ = tiny
    with ThreadPoolExecutor(3) as ex:
        infos = list(ex.map(lambda _: sim.build("icarus", "tiny", [v], {"W": 3}, tmp_path), range(3)))
    assert len({i.build_dir for i in infos}) == 1
    assert sorted(i.reused for i in infos) == [False, True, True]


@pytest.mark.sim
def test_hung_testbench_is_killed(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    v, tb = tiny
    info = sim.build("icarus", "tiny", [v], {}, tmp_path / "b")
    t0 = time.monotonic()
    with pytest.raises(SimulationError, match=r"^tiny \(icarus\).*3 s timeout; killed"):
        sim.run(info, tb, payload={"what": "hang"}, timeout_s=3)
    assert time.monotonic() - t0 < 30
    # no simulator of this build is left running
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(info.build_dir) in cmd:
            left.append(pid)
    assert not left, f"simulator processes left running: {left}"


@pytest.mark.sim
def test_failure_and_error_classes(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    v, tb = tiny
    info = sim.build("icarus", "tiny", [v], {}, tmp_path / "b")
    with pytest.raises(MismatchError, match="test_tiny failed: AssertionError: boom: q_o is not 99"):
        sim.run(info, tb, payload={"what": "fail"})
    with pytest.raises(SimulationError, match="y_o is X at vector 7") as ei:
        sim.run(info, tb, payload={"what": "xz"})
    assert not isinstance(ei.value, MismatchError)


@pytest.mark.sim
def test_waves_need_a_waves_build(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    v, tb = tiny
    info = sim.build("icarus", "tiny", [v], {}, tmp_path / "b")
    with pytest.raises(SimulationError, match="waves requested"):
        sim.run(info, tb, payload={"what": "pass"}, waves=True)
    winfo = sim.build("icarus", "tiny", [v], {}, tmp_path / "b", waves=True)
    assert winfo.build_dir != info.build_dir
    res = sim.run(winfo, tb, payload={"what": "pass"}, waves=True)
    fst = res.parent / "tiny.fst"
    assert fst.is_file() and fst.stat().st_size > 0


@pytest.mark.parametrize("simulator,waves,testcase", [
    ("verilator", False, None), ("verilator", True, "t_one"), ("icarus", False, "t_one"),
    ("icarus", True, None)])
def test_launch_spec_matches_cocotb_runner(simulator: str, waves: bool, testcase: str | None,
                                           tmp_path: Path, monkeypatch) -> None:
    """sim.run starts the simulator itself: same command and cocotb variables as the runner."""
    from cocotb_tools.runner import get_runner

    for k in list(os.environ):
        if k.startswith(("COCOTB_", "PYTEST_")) or k in ("GPI_USERS", "LIBPYTHON_LOC", "WAVES"):
            monkeypatch.delenv(k)
    tools = sim.find_tools((simulator,))
    info = sim.BuildInfo(simulator, "tiny", tmp_path / "b", "k", {}, waves, True, 0.0,
                         tools["env"])
    results = tmp_path / "results.xml"
    plusargs = ["+a=1", "+b"]
    cmd, env = sim.launch_spec(info, "tb_tiny", tools["env"], module_dir=str(tmp_path),
                               testcase=testcase, test_dir=tmp_path, results=results, seed=7,
                               plusargs=plusargs, waves=waves)
    seen = {}
    runner = get_runner(simulator)
    monkeypatch.setattr(runner, "_execute", lambda cmds, cwd: seen.update(cmds=cmds))
    monkeypatch.setattr(os, "environ", dict(tools["env"]))
    runner.test(test_module="tb_tiny", hdl_toplevel="tiny", hdl_toplevel_lang="verilog",
                build_dir=info.build_dir, test_dir=tmp_path, testcase=testcase, seed=7,
                results_xml=str(results), waves=waves, plusargs=list(plusargs),
                timescale=("1ns", "1ps"))
    assert seen["cmds"] == [cmd]
    keys = {k for k in runner.env if k.startswith("COCOTB_")} | {
        "TOPLEVEL_LANG", "GPI_USERS", "PYGPI_PYTHON_BIN"}
    assert {k: env.get(k) for k in keys} == {k: runner.env[k] for k in keys}
    assert env["PATH"] == runner.env["PATH"]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)


# ------------------------------------------------------------------------------ lint_rtl.py
def _lint_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lint_rtl", sim.REPO_ROOT / "scripts" /
                                                  "lint_rtl.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


WRAP_V = """`timescale 1ns / 1ps
`default_nettype none
module wrap_top (
  input  wire        clk_i,
  input  wire        rst_ni,
  input  wire [31:0] act_i,
  input  wire [15:0] val_i,
  input  wire [3:0]  idx_i,
  output wire [31:0] acc_o
);
  t2c_nm_pe #(.A_BITS(8), .W_BITS(8), .ACC_BITS(32), .N(2), .M(4), .IDX_BITS(2)) u_pe (
    .clk_i(clk_i), .rst_ni(rst_ni), .clear_i(1'b0), .valid_i(1'b1), .a_signed_i(1'b0),
    .act_i(act_i), .val_i(val_i), .idx_i(idx_i), .bias_i(32'sd0), .acc_o(acc_o)
  );
endmodule
`default_nettype wire
"""


def test_lint_rtl_finds_tops_and_flags_warnings(tmp_path: Path) -> None:
    lint = _lint_module()
    for name in ("t2c_requant", "t2c_nm_pe"):
        shutil.copy(sim.RTL_DIR / f"{name}.v", tmp_path)
    assert lint.main(["--rtl", str(tmp_path)]) == 0           # our units lint clean
    (tmp_path / "wrap_top.v").write_text(WRAP_V)
    assert [t for t, _ in lint.tops(tmp_path)] == ["t2c_requant", "wrap_top"]
    assert lint.main(["--rtl", str(tmp_path)]) == 0
    # a width truncation must fail the lint
    (tmp_path / "wrap_top.v").write_text(WRAP_V.replace("output wire [31:0] acc_o",
                                                        "output wire [30:0] acc_o"))
    assert lint.main(["--rtl", str(tmp_path)]) == 1


@pytest.mark.sim
@pytest.mark.slow
def test_verilator_waves_fst(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """A Verilator build with waves=True records an FST (full runtime compile: slow)."""
    v, tb = tiny
    info = sim.build("verilator", "tiny", [v], {}, tmp_path / "b", waves=True)
    res = sim.run(info, tb, payload={"what": "pass"}, waves=True)
    fst = list(res.parent.glob("*.fst"))
    assert fst and fst[0].stat().st_size > 0
