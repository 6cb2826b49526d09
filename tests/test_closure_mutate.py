"""Mutation engine (t2c_sim.closure.mutate, .netlist, .mutrun).

Operators are checked against a table of Verilog snippets and the mutants each must yield;
skipped regions (initial blocks, parameter ports, declared widths, loop headers) must yield
none. The netlist signature is checked on hand-written netlists (renamed = equal, one cell
changed = different). The runner is run for real on Icarus: a killed, a surviving, a
build-error and a hung mutant of the requantizer against its unit testbench. The full
campaign over rtl/ and the Yosys equivalence check are in the slow tier.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from t2c_sim.closure.mutate import (
    OPERATORS,
    Mutant,
    enumerate_file,
    enumerate_mutants,
    find_waiver,
    load_waivers,
    select_mutants,
    write_mutant_tree,
)
from t2c_sim.closure.mutrun import (
    MutantResult,
    MutationReport,
    apply_waivers,
    equivalent,
    load_report,
    run_campaign,
    run_mutant,
)
from t2c_sim.closure.netlist import netlist_signature
from t2c_sim.closure.suites import (
    ChainSuite,
    CosimSuite,
    Stage,
    UnitSuite,
    edge_stages,
    named_suite,
)
from t2c_sim.closure.target import accel_target
from t2c_sim.cosim.sim import RTL_DIR
from t2c_sim.errors import ConfigError, SimulationError

TARGET = accel_target()

MOD = """`timescale 1ns / 1ps
module m #(parameter integer W = 8) (
  input  wire             clk_i,
  input  wire signed [W-1:0] a_i,
  input  wire [W-1:0]     b_i,
  output reg  [W-1:0]     y_q
);
  localparam integer K = W + 1;
  reg [W-1:0] t_d;
  integer i;
  initial begin
    if (W < 2) begin
      $fatal(1, "bad W");
    end
  end
  always @* begin
    t_d = a_i >>> 2'd1;
    for (i = 0; i < 3; i = i + 1) begin
      t_d = t_d ^ b_i[i];
    end
    if (a_i == b_i && !clk_i) begin
      t_d = $signed(b_i) - {W{1'b0}};
    end
  end
  always @(posedge clk_i) begin
    y_q <= t_d[W-1] ? ~t_d : t_d;
  end
endmodule
"""

# (line text fragment, operator, original, replacement) that must be among the mutants
EXPECTED = [
    ("localparam integer K = W + 1;", "arith", "+", "-"),
    ("localparam integer K = W + 1;", "drop_term", "W + 1", "W"),
    ("localparam integer K = W + 1;", "drop_term", "W + 1", "1"),
    ("localparam integer K = W + 1;", "const", "1", "2"),
    ("localparam integer K = W + 1;", "const", "1", "0"),
    ("t_d = a_i >>> 2'd1;", "sign", ">>>", ">>"),
    ("t_d = a_i >>> 2'd1;", "const", "2'd1", "2'd2"),
    ("t_d = a_i >>> 2'd1;", "const", "2'd1", "2'd0"),
    ("t_d = a_i >>> 2'd1;", "stuck0", "a_i >>> 2'd1", "0"),
    ("for (i = 0; i < 3; i = i + 1) begin", "relational", "<", "<="),
    ("for (i = 0; i < 3; i = i + 1) begin", "const", "3", "4"),
    ("t_d = t_d ^ b_i[i];", "logical", "^", "|"),
    ("t_d = t_d ^ b_i[i];", "bitsel", "i", "(i) + 1"),
    ("t_d = t_d ^ b_i[i];", "bitsel", "i", "(i) - 1"),
    ("if (a_i == b_i && !clk_i) begin", "relational", "==", "!="),
    ("if (a_i == b_i && !clk_i) begin", "logical", "&&", "||"),
    ("if (a_i == b_i && !clk_i) begin", "unary", "!clk_i", "clk_i"),
    ("if (a_i == b_i && !clk_i) begin", "negate", "a_i == b_i && !clk_i",
     "!(a_i == b_i && !clk_i)"),
    ("t_d = $signed(b_i) - {W{1'b0}};", "sign", "$signed(b_i)", "(b_i)"),
    ("t_d = $signed(b_i) - {W{1'b0}};", "drop_term", "$signed(b_i) - {W{1'b0}}", "$signed(b_i)"),
    ("t_d = $signed(b_i) - {W{1'b0}};", "arith", "-", "+"),
    ("y_q <= t_d[W-1] ? ~t_d : t_d;", "hold", "t_d[W-1] ? ~t_d : t_d", "y_q"),
    ("y_q <= t_d[W-1] ? ~t_d : t_d;", "negate", "t_d[W-1]", "!(t_d[W-1])"),
    ("y_q <= t_d[W-1] ? ~t_d : t_d;", "unary", "~t_d", "t_d"),
    ("y_q <= t_d[W-1] ? ~t_d : t_d;", "bitsel", "W-1", "(W-1) + 1"),
    ("input  wire signed [W-1:0] a_i,", "sign", "signed ", ""),
]
# lines where nothing may be mutated (or only the listed operators)
UNTOUCHED = ["if (W < 2) begin", '$fatal(1, "bad W");', "module m #(parameter integer W = 8) (",
             "reg [W-1:0] t_d;", "output reg  [W-1:0]     y_q"]


@pytest.fixture(scope="module")
def snippet(tmp_path_factory) -> tuple[Path, list[Mutant]]:
    p = tmp_path_factory.mktemp("mut") / "m.v"
    p.write_text(MOD)
    return p, enumerate_file(p)


@pytest.mark.parametrize("line,op,orig,rep", EXPECTED, ids=[f"{e[1]}-{i}" for i, e in
                                                             enumerate(EXPECTED)])
def test_operator_table(snippet, line: str, op: str, orig: str, rep: str) -> None:
    _, muts = snippet
    found = [m for m in muts if m.line_text == line and m.operator == op
             and m.original == orig and m.replacement == rep]
    assert len(found) == 1, [(m.operator, m.original, m.replacement) for m in muts
                             if m.line_text == line]


def test_skipped_regions_and_loop_steps(snippet) -> None:
    _, muts = snippet
    for frag in UNTOUCHED:
        assert not [m for m in muts if m.line_text == frag], frag
    loop = [m for m in muts if m.line_text.startswith("for (i = 0;")]
    assert {(m.original, m.replacement) for m in loop} == {("<", "<="), ("3", "4"), ("3", "2")}


def test_mutants_apply_at_their_offsets(snippet) -> None:
    path, muts = snippet
    text = path.read_text()
    ids = [m.id for m in muts]
    assert len(ids) == len(set(ids))
    for m in muts:
        new = m.apply(text)
        assert new != text
        assert new[:m.start] == text[:m.start] and new[m.start + len(m.replacement):] == text[m.end:]
        assert text.splitlines()[m.line - 1].strip() == m.line_text
        d = m.diff(path.parent)
        assert d.startswith("--- a/rtl/m.v\n+++ b/rtl/m.v\n")
        minus = [ln for ln in d.splitlines()[2:] if ln.startswith("-")]
        assert minus and all(m.line_text in ln or ln.strip() == "-" for ln in minus[:1])
    with pytest.raises(ConfigError, match="the file changed"):
        muts[0].apply("x" + text)


def test_rtl_candidates_and_selection() -> None:
    # every RTL file is mutated (or excluded with a reason): the core and the AXI front door
    assert TARGET.unassigned() == [] and all(r.strip() for r in TARGET.excluded.values())
    assert {"t2c_accel_top.v", "t2c_axi_dma.v", "t2c_axil_regs.v"} <= set(TARGET.files)
    cands = enumerate_mutants(TARGET.rtl_dir, TARGET.files)
    assert len(cands) >= 600
    assert {m.file for m in cands} == set(TARGET.files)
    a = select_mutants(cands, 220, seed=1)
    b = select_mutants(cands, 220, seed=1)
    c = select_mutants(cands, 220, seed=2)
    assert [m.id for m in a] == [m.id for m in b] and len(a) == 220
    assert [m.id for m in a] != [m.id for m in c]
    assert {m.operator for m in a} == {m.operator for m in cands} <= set(OPERATORS)
    # the cases the requantizer's hand-written mutants (tests/test_rtl_units.py) encode
    req = [m for m in cands if m.file == "t2c_requant.v"]
    assert any(m.operator == "logical" and m.line_text.startswith("MODE_HALF_EVEN") for m in req)
    assert any(m.operator == "sign" and m.original == ">>>" for m in req)
    assert any(m.operator == "drop_term" and "up_d" in m.original and "up_d" not in
               m.replacement for m in req)  # rounding increment removed


def test_waivers_match_by_text(tmp_path) -> None:
    cands = enumerate_mutants(RTL_DIR, ["t2c_ram.v"])
    m = cands[0]
    f = tmp_path / "w.yaml"
    f.write_text("waivers:\n"
                 f"  - {{file: {m.file}, operator: {m.operator}, line_text: {m.line_text!r}, "
                 f"original: {m.original!r}, replacement: {m.replacement!r}, "
                 "kind: equivalent, reason: test}\n")
    ws = load_waivers(f)
    assert find_waiver(m, ws) is not None
    assert all(find_waiver(o, ws) is None for o in cands[1:] if
               (o.line_text, o.original, o.replacement) != (m.line_text, m.original,
                                                           m.replacement))
    f.write_text("waivers:\n  - {file: a.v, operator: x, line_text: y, original: a, "
                 "replacement: b, kind: maybe, reason: r}\n")
    with pytest.raises(ConfigError, match=r"w.yaml, key 'waivers\[0\].kind'"):
        load_waivers(f)
    f.write_text("waivers:\n  - {file: a.v}\n")
    with pytest.raises(ConfigError, match=r"key 'waivers\[0\].operator'"):
        load_waivers(f)
    assert load_waivers(tmp_path / "none.yaml") == []


def test_waiver_line_off_tells_equal_operators_apart(snippet, tmp_path) -> None:
    """line_off pins a waiver to one site of its line (every mutant's offset points at its
    original text); an offset elsewhere does not match, a bad one is refused."""
    (_, muts) = snippet
    ms = [m for m in muts if m.line_text.startswith("if (a_i == b_i")]
    ands = [m for m in ms if m.operator == "logical" and m.original == "&&"]
    (m,) = ands
    assert m.line_text[m.line_off:m.line_off + 2] == "&&"
    for x in ms:  # every mutant's offset points at its original text
        assert x.line_text[x.line_off:x.line_off + len(x.original)] == x.original, x.id
    base = (f"  - {{file: {m.file}, operator: {m.operator}, line_text: {m.line_text!r}, "
            f"original: {m.original!r}, replacement: {m.replacement!r}, kind: equivalent, "
            "reason: r")
    f = tmp_path / "w.yaml"
    f.write_text(f"waivers:\n{base}, line_off: {m.line_off}}}\n")
    assert find_waiver(m, load_waivers(f)) is not None
    f.write_text(f"waivers:\n{base}, line_off: {m.line_off + 1}}}\n")
    assert find_waiver(m, load_waivers(f)) is None
    for bad in ("-1", "999", "x", "true"):
        f.write_text(f"waivers:\n{base}, line_off: {bad}}}\n")
        with pytest.raises(ConfigError, match=r"key 'waivers\[0\].line_off'"):
            load_waivers(f)


def test_repository_waivers_are_valid_and_current() -> None:
    """Every waiver in rtl/mutation_waivers.yaml names an existing mutant of today's RTL."""
    ws = load_waivers(TARGET.mutation_waivers)
    cands = enumerate_mutants(TARGET.rtl_dir, TARGET.files)
    for w in ws:
        assert any(w.matches(m) for m in cands), f"stale waiver: {w}"


# ------------------------------------------------------------------------------ netlist
NET = {"modules": {"top": {
    "ports": {"a": {"direction": "input", "bits": [2, 3]},
              "clk": {"direction": "input", "bits": [4]},
              "y": {"direction": "output", "bits": [7, 8]}},
    "cells": {
        "$auto$1": {"type": "$add", "parameters": {"A_WIDTH": "10", "Y_WIDTH": "10"},
                    "port_directions": {"A": "input", "B": "input", "Y": "output"},
                    "connections": {"A": [2, 3], "B": [5, 6], "Y": [9, 10]}},
        "$auto$2": {"type": "$dff", "parameters": {"WIDTH": "10"},
                    "port_directions": {"CLK": "input", "D": "input", "Q": "output"},
                    "connections": {"CLK": [4], "D": [9, 10], "Q": [5, 6]}},
        "$auto$3": {"type": "$not", "parameters": {},
                    "port_directions": {"A": "input", "Y": "output"},
                    "connections": {"A": [5, 6], "Y": [7, 8]}}}}}}


def _renamed(net: dict) -> dict:
    n = copy.deepcopy(net)
    cells = n["modules"]["top"]["cells"]
    n["modules"]["top"]["cells"] = {f"$flatten$x{i}": c for i, c in
                                    enumerate(reversed(list(cells.values())))}
    remap = {5: 50, 6: 60, 9: 90, 10: 100}
    for c in n["modules"]["top"]["cells"].values():
        for p, bits in c["connections"].items():
            c["connections"][p] = [remap.get(b, b) for b in bits]
    return n


def test_netlist_signature_ignores_names_and_sees_changes() -> None:
    s0 = netlist_signature(NET, "top")
    assert netlist_signature(_renamed(NET), "top") == s0
    for path, val in ((("$auto$1", "type"), "$sub"), (("$auto$3", "type"), "$neg"),
                      (("$auto$2", "parameters"), {"WIDTH": "10", "INIT": "0"})):
        n = copy.deepcopy(NET)
        n["modules"]["top"]["cells"][path[0]][path[1]] = val
        assert netlist_signature(n, "top") != s0, path
    # signedness of an operand as wide as the result is irrelevant (modular arithmetic) ...
    n = copy.deepcopy(NET)
    add = n["modules"]["top"]["cells"]["$auto$1"]
    add["parameters"] = {"A_WIDTH": "10", "B_WIDTH": "10", "Y_WIDTH": "10", "A_SIGNED": "1"}
    m = copy.deepcopy(n)
    m["modules"]["top"]["cells"]["$auto$1"]["parameters"]["A_SIGNED"] = "0"
    assert netlist_signature(n, "top") == netlist_signature(m, "top")
    # ... but not of a narrower operand, which it extends
    for x in (n, m):
        x["modules"]["top"]["cells"]["$auto$1"]["parameters"]["Y_WIDTH"] = "11"
        x["modules"]["top"]["cells"]["$auto$1"]["connections"]["Y"] = [9, 10, 11]
    assert netlist_signature(n, "top") != netlist_signature(m, "top")
    n = copy.deepcopy(NET)  # swap two input bits of the adder
    n["modules"]["top"]["cells"]["$auto$1"]["connections"]["A"] = [3, 2]
    assert netlist_signature(n, "top") != s0
    # a top whose parameters Yosys re-derived is found by its top attribute
    n = copy.deepcopy(NET)
    mod = n["modules"].pop("top")
    n["modules"]["$paramod$1f\\top"] = {**mod, "attributes": {"top": "00000001"}}
    n["modules"]["sub"] = {"ports": {}, "cells": {}, "attributes": {}}
    assert netlist_signature(n, "top") == s0
    del n["modules"]["$paramod$1f\\top"]["attributes"]
    with pytest.raises(SimulationError, match="no top module top"):
        netlist_signature(n, "top")


# ------------------------------------------------------------------------------ runner (sim)
REQ = {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16}


def _req_mutant(mid: str, old: str, new: str) -> Mutant:
    text = (RTL_DIR / "t2c_requant.v").read_text()
    a = text.index(old)
    line = text.count("\n", 0, a) + 1
    return Mutant(mid, "t2c_requant.v", line, 1, "test", old, new, a, a + len(old),
                  text.splitlines()[line - 1].strip())


@pytest.mark.sim
def test_runner_statuses_on_icarus(tmp_path) -> None:
    suite = UnitSuite(TARGET, TARGET.bench("requant"), param_sets=[REQ],
                      payload={"seed": 5, "n_random": 200}, timeout_s=20)
    muts = {
        "killed": _req_mutant("k", "MODE_HALF_EVEN: up_d = half_d & (sticky_d | q_d[0]);",
                              "MODE_HALF_EVEN: up_d = half_d;"),
        # lo2_q is only read by the clamp; hs_d's default is overwritten whenever it is read
        "survived": _req_mutant("s", "hs_d          = {P_BITS{1'b0}};",
                                "hs_d          = {P_BITS{1'b1}};"),
        "build-error": _req_mutant("b", "rnd_d = q_d +", "rnd_d = q_d + +;"),
        "timeout": _req_mutant("t", "  assign valid_o", "  reg osc_q;\n  initial begin : spin\n"
                               "    while (1'b1) osc_q = ~osc_q;\n  end\n  assign valid_o"),
    }
    # the hung mutant under a short limit (a passing run of 200 vectors takes ~2 s)
    hang = UnitSuite(TARGET, TARGET.bench("requant"), param_sets=[REQ],
                     payload={"seed": 5, "n_random": 200}, timeout_s=6)
    rep = MutationReport("unit-requant")
    for want, m in muts.items():
        r = run_mutant(m, hang if want == "timeout" else suite, RTL_DIR, tmp_path / want)
        assert r.status == want, (want, r.detail)
        rep.results.append(r)
    assert run_mutant(None, suite, RTL_DIR, tmp_path / "base") is None
    assert rep.counts()["killed"] == 1 and rep.score == pytest.approx(2 / 3)
    assert re.search(r"mismatch at vector \d+", rep.results[0].detail)


@pytest.mark.sim
def test_mutant_tree_builds_through_cosim_hook(tmp_path) -> None:
    """run_layers(rtl_dir=...) builds the mutant copy, not rtl/ (the build key differs); the
    PE-instance array runs only t2c_nm_pe, so its mutant is killed there and not in the packed one."""
    from t2c_sim.workloads.gen import random_linear_record

    rec = random_linear_record(__import__("numpy").random.default_rng(1), name="fc_pe",
                               c_in=12, c_out=3, rows=5, n=2, m=4)
    hw = TARGET.arrays["hw_a"]
    m = [x for x in enumerate_mutants(RTL_DIR, ["t2c_nm_pe.v"])
         if x.operator == "arith" and x.line_text.startswith("acc_d = acc_d + sum_d")][0]
    pe = CosimSuite(TARGET, [Stage("pe", hw, (rec,), packed=False)])
    packed = CosimSuite(TARGET, [Stage("packed", hw, (rec,), packed=True)])
    r = run_mutant(m, pe, RTL_DIR, tmp_path / "m")
    assert r.status == "killed" and "fc_pe" in r.detail, r.detail
    assert run_mutant(m, packed, RTL_DIR, tmp_path / "p").status == "survived"
    write_mutant_tree(m, RTL_DIR, tmp_path / "tree")
    assert (tmp_path / "tree" / "t2c_nm_pe.v").read_text() != (RTL_DIR / "t2c_nm_pe.v").read_text()


def test_chain_skips_suites_that_do_not_compile_the_file() -> None:
    req = UnitSuite(TARGET, TARGET.bench("requant"))
    fd = UnitSuite(TARGET, TARGET.bench("frontdoor"))
    chain = ChainSuite([req, fd])
    assert chain.restricted("t2c_axi_dma").suites == [fd]
    assert chain.restricted("t2c_requant").suites == [req, fd]
    assert chain.restricted("t2c_nowhere").suites == []
    # the front door's designs are t2c_axi_accel with its own parameters, not the bench's (the
    # MODE 2 and 3 sets share the first set's design: three bus configurations)
    (d, d32, d8) = fd.designs()
    p = dict(d.params)
    assert d.top == "t2c_axi_accel" and p["DATA_W"] == 64 and "MODE" not in p and "RD_LAT" not in p
    assert (dict(d32.params)["DATA_W"], dict(d8.params)["BURST_LEN"]) == (32, 8)


@pytest.mark.sim
def test_frontdoor_bench_passes_and_kills_an_axi_mutant(tmp_path) -> None:
    """Layers through the AXI front door: the real RTL passes, a read burst one beat long
    (ARLEN = beats instead of beats - 1) shifts the data and is killed."""
    b = TARGET.bench("frontdoor")
    suite = UnitSuite(TARGET, b, param_sets=[b.param_sets[0]])
    (m,) = [x for x in enumerate_mutants(RTL_DIR, ["t2c_axi_rd.v"]) if x.operator == "drop_term"
            and x.line_text == "arlen_q  <= blen[7:0] - 8'd1;"]
    assert run_mutant(None, suite, RTL_DIR, tmp_path / "base") is None
    r = run_mutant(m, ChainSuite([suite]), RTL_DIR, tmp_path / "m")
    assert r.status == "killed" and "unit-frontdoor[0]" in r.detail, r.detail


@pytest.mark.sim
@pytest.mark.slow
def test_yosys_equivalence_on_rtl(tmp_path) -> None:
    """A mutant in a spread step the simulated arrays never reach (L <= 13) is equivalent for
    every simulated design; a datapath mutant is not."""
    suite = named_suite("layers", TARGET)
    cands = enumerate_mutants(TARGET.rtl_dir, TARGET.files)
    dead = [m for m in cands if m.line_text.startswith("if (L > 13)") and m.operator == "const"
            and m.original == "13"][0]
    live = [m for m in cands if m.file == "t2c_requant.v" and m.operator == "sign"
            and m.original == ">>>"][0]
    assert "identical" in (equivalent(dead, TARGET, suite, tmp_path / "d") or "")
    assert equivalent(live, TARGET, suite, tmp_path / "l") is None
    # every design of the unit benches goes through Yosys (the PE-instance array re-derives
    # its top; the front door is the whole AXI design)
    units = named_suite("units", TARGET)
    assert "identical" in (equivalent(dead, TARGET, units, tmp_path / "u") or "")


@pytest.mark.sim
@pytest.mark.slow
def test_full_campaign_reaches_target(tmp_path) -> None:
    """220 mutants over the RTL against the full suite: >= 95 % of non-equivalent mutants
    killed (the nightly suite runs the same campaign through `t2c-sim mutate`)."""
    muts = select_mutants(enumerate_mutants(TARGET.rtl_dir, TARGET.files), 220, seed=1)
    rep = run_campaign(muts, named_suite("full", TARGET), tmp_path, target=TARGET,
                       waivers=load_waivers(TARGET.mutation_waivers))
    rep.write_json(tmp_path / "mutation.json")
    print(rep.summary())
    assert rep.score >= 0.95, rep.summary() + "\n" + "\n".join(rep.diffs.values())


# ------------------------------------------------------------------------------ former survivors
def _find(file: str, op: str, line_start: str, orig: str, rep: str, before: str = "") -> Mutant:
    text = (RTL_DIR / file).read_text()
    found = [m for m in enumerate_mutants(RTL_DIR, [file]) if m.operator == op
             and m.line_text.startswith(line_start) and m.original == orig
             and m.replacement == rep and text[:m.start].endswith(before)]
    assert len(found) == 1, (file, op, line_start, [m.id for m in found])
    return found[0]


def _limit_stage(limit: str) -> CosimSuite:
    """A one-layer suite on the first array whose record hits ``limits/<limit>``."""
    import numpy as np

    from t2c_sim.closure.generate import build_record, knobs_for

    hw = TARGET.arrays["hw_a"]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        rec = build_record(knobs_for(("limits", limit), hw, rng), hw, rng, f"lim_{seed}")
        if limit in TARGET.cover_model(hw).sample(rec)["limits"]:
            return CosimSuite(TARGET, [Stage(limit, hw, (rec,), packed=True)])
    raise AssertionError(f"no record hits limits/{limit}")


def _unit(kind: str) -> UnitSuite:
    """The unit suite (one bench, one parameter set) that kills a former survivor."""
    if kind == "dense_top":
        return UnitSuite(TARGET, TARGET.bench("accel_top_dense"))
    if kind == "reset":
        return UnitSuite(TARGET, TARGET.bench("reset_idle"))
    if kind == "self_check":
        return UnitSuite(TARGET, TARGET.bench("self_check"))
    if kind in ("frontdoor_bl8", "frontdoor_direct", "frontdoor_resets"):
        b = TARGET.bench("frontdoor")  # writes that span burst windows; resets
        want = {"frontdoor_bl8": ("BURST_LEN", 8), "frontdoor_direct": ("MODE", 1),
                "frontdoor_resets": ("MODE", 4)}[kind]
        return UnitSuite(TARGET, b, param_sets=[p for p in b.param_sets
                                                if p[want[0]] == want[1]])
    if kind == "pe_m5":
        b = TARGET.bench("nm_pe")
        m5 = [p for p in b.param_sets if p["M"] == 5]
        return UnitSuite(TARGET, b, param_sets=m5, payload={"seed": 21, "n_cycles": 300})
    b = TARGET.bench("requant")
    narrow = [p for p in b.param_sets if p["MULT_BITS"] == 16]
    return UnitSuite(TARGET, b, param_sets=narrow, payload={"seed": 12, "n_random": 600})


def test_frontdoor_bench_writes_across_burst_windows() -> None:
    """Front-door sets write segments whose bursts (t2c_axi_burst's rule, recomputed by
    estimate.frontdoor.bursts) continue past a window boundary: only there does t2c_axi_wr
    reload a burst length in the middle of a segment (from the next beat's address). The
    8-beat set continues with 2+ beats (the next burst's address matters), the direct set with
    a 1-beat burst (the reload condition matters); the 16-beat set never crosses a window."""
    from t2c_sim import estimate
    from t2c_sim.closure.benches import frontdoor_case
    from t2c_sim.estimate.frontdoor import bursts, layout, word_bits

    def cuts(params: dict) -> list[list[int]]:
        hw, axi, _, mode, recs = frontdoor_case(params, {})
        recs = {"list": recs, "regs": recs[2:]}.get(mode, [])  # what MODE 0 and 1 run
        wb = word_bits(hw)
        return [cut for rec in recs
                for j in layout(estimate.tile_plan(rec, hw), hw, axi).jobs
                for seg, kind in ((j.out, "out"), (j.acc, "acc")) if seg.words
                for cut in [bursts(seg.addr, seg.words * axi.beats(wb[kind]), axi)]
                if len(cut) > 1]

    b = TARGET.bench("frontdoor")
    assert cuts(b.param_sets[0]) == []
    (bl8,) = [p for p in b.param_sets if p["BURST_LEN"] == 8]
    assert [8, 4] in cuts(bl8) and [8, 8] in cuts(bl8), cuts(bl8)
    (direct,) = [p for p in b.param_sets if p["MODE"] == 1]
    assert [2, 1] in cuts(direct), cuts(direct)


def test_wr_reload_address_is_window_aligned() -> None:
    """Backs the waiver of t2c_axi_wr's `wbl_addr = 0` (stuck0): under the burst rule
    (estimate.frontdoor.bursts, the cycle model's copy of t2c_axi_burst that the co-simulation
    checks cycle for cycle) every burst followed by another of the same transfer ends on a
    window boundary, so the address the reload sees has beat index 0, as address 0 has.
    Table: every start beat of a window, lengths around one and two windows, several buses."""
    from t2c_sim.estimate.frontdoor import AxiConfig, bursts

    for data_w, bl in ((32, 2), (64, 8), (64, 16), (128, 4), (256, 16)):
        axi = AxiConfig(data_w=data_w, burst_len=bl)
        win = bl * axi.bytes
        for a0 in range(0, 2 * win, axi.bytes):
            for beats in (1, bl - 1, bl, bl + 1, bl + 2, 2 * bl + 3):
                addr, cut = a0 + 0x1000, bursts(a0 + 0x1000, max(beats, 1), axi)
                for n in cut[:-1]:
                    addr += n * axi.bytes
                    assert addr % win == 0, (data_w, bl, a0, beats, cut)


# Survivors of the random-layer + unit-testbench campaign and the suite that now kills each.
KILLERS = {
    "host_word_width": (("t2c_accel_top.v", "negate", ": ((WGTS_W > CH_W)", "(WGTS_W > CH_W)",
                         "!((WGTS_W > CH_W))"), "dense_top"),
    "shift_max_boundary": (("t2c_accel_top.v", "relational", "if (dcmask_q[ic] &&", ">", ">="),
                           "sh=SHIFT_MAX"),
    "out_depth_check": (("t2c_accel_top.v", "arith", "shape_err[4] =", "*", "+"), "out_full"),
    "lo_eq_hi_legal": (("t2c_accel_top.v", "relational", "shape_err[5] =", ">", ">="), "lo=hi"),
    "done_not_reset": (("t2c_accel_top.v", "hold", "busy_q <= 1'b0;  done_q <= 1'b0;", "1'b0",
                        "done_q"), "reset"),
    "last1_reset_value": (("t2c_accel_top.v", "const", "iss_q <= 1'b0;  vld1_q <= 1'b0;", "1'b0",
                           "1'b1", "last1_q <= "), "reset"),
    "index_eq_m_selects": (("t2c_nm_pe.v", "relational", "sel_d = ({1'b0, idx_d} < M_L)", "<",
                            "<="), "pe_m5"),
    "half_bit_shift_kind": (("t2c_requant.v", "sign", "hs_d          = prod_q >>>", ">>>", ">>"),
                            "requant_m16"),
    "row_mask_inverted": (("t2c_accel_top.v", "negate", "wire [31:0] nrv", "(rrem > ROWS)",
                           "!((rrem > ROWS))"), "edge"),
    # the next write burst's length computed from the current beat's address: 1 beat after a
    # window's last beat, so WLAST comes early (the memory model's protocol check)
    "wr_next_burst_address": (("t2c_axi_wr.v", "drop_term", "wbl_addr = wa_q + BYTES",
                               "wa_q + BYTES[ADDR_W-1:0]", "wa_q"), "frontdoor_bl8"),
    # (not sampled by a campaign; survived the front-door sets before the direct set's 2-beat
    # bursts) the reload condition inverted: no WLAST on a 1-beat burst after a burst's end
    "wr_reload_condition": (("t2c_axi_wr.v", "negate", "wbl_q <= (wbl_q == 9'd1)",
                             "(wbl_q == 9'd1)", "!((wbl_q == 9'd1))"), "frontdoor_direct"),
    # the DMA's JOBS_DONE counter kept through reset: a reset after a completed command must
    # leave every status register at 0 (the frontdoor bench's reset set, MODE 4)
    "dma_jobs_done_reset": (("t2c_axi_dma.v", "hold", "jfin_q <= 32'd0;  cyc_q <= 32'd0;",
                             "32'd0", "jfin_q"), "frontdoor_resets"),
    # the err_o[7] requantizer-latency self-check reading past its delay line (X on Icarus:
    # never fires) or raising the wrong flag; formerly waived as unreachable, killed by the
    # self_check bench's injected skew (it kills every mutant of those two lines)
    "rq_skew_check_index": (("t2c_accel_top.v", "drop_term", "if (busy_q && (rq_v !=",
                             "RQ_LAT-1", "RQ_LAT"), "self_check"),
    "rq_skew_flag_bit": (("t2c_accel_top.v", "bitsel", "err_q[7] <= 1'b1;", "7", "(7) - 1"),
                         "self_check"),
}


FAST_KILLERS = ("done_not_reset", "host_word_width", "wr_next_burst_address",
                "dma_jobs_done_reset", "rq_skew_check_index", "rq_skew_flag_bit")


@pytest.mark.sim
@pytest.mark.parametrize("case", [c if c in FAST_KILLERS else pytest.param(c, marks=pytest.mark.slow)
                                  for c in KILLERS])
def test_former_survivors_are_killed(case: str, tmp_path) -> None:
    key, killer = KILLERS[case]
    m = _find(*key)
    if killer == "edge":
        suite = CosimSuite(TARGET, edge_stages(TARGET))
    elif "=" in killer or killer == "out_full":
        suite = _limit_stage(killer)
    else:
        suite = _unit(killer)
    assert run_mutant(None, suite, RTL_DIR, tmp_path / "base") is None
    r = run_mutant(m, suite, RTL_DIR, tmp_path / "m")
    assert r.status == "killed", (case, r.status, r.detail)


@pytest.mark.sim
def test_rd_we_reset_waiver_holds_where_the_mutant_differs(tmp_path) -> None:
    """Backs the waiver of t2c_axi_rd's `we_o <= we_o` in reset (hold): the frontdoor bench's
    reset set resets the DMA at a cycle where the read engine hands the core a word. On the
    mutant, we_o stays 1 through that reset (the difference is real: the original drops it),
    yet the core sees no write while the reset is held and the bench passes (the DMA's
    hw_en_o gates we_o with rdk_q, which the same reset edge clears)."""
    import json

    from t2c_sim.closure.benches import build_bench, run_bench
    from t2c_sim.closure.mutate import write_mutant_tree

    m = _find("t2c_axi_rd.v", "hold", "we_o <= 1'b0;  err_q <= 1'b0;", "1'b0", "we_o")
    b = TARGET.bench("frontdoor")
    (p,) = [p for p in b.param_sets if p["MODE"] == 4]
    seen = {}
    for what, rtl in (("original", RTL_DIR), ("mutant", write_mutant_tree(m, RTL_DIR,
                                                                         tmp_path / "rtl"))):
        kw = dict(sim="icarus", build_root=tmp_path / what, rtl_dir=rtl)
        build_bench(TARGET, b, p, {}, **kw)
        run = run_bench(TARGET, b, p, {}, timeout_s=300, **kw)  # raises on a wrong result
        (mid, end) = json.loads((run / "results.json").read_text())["commands"]
        assert mid["reset"] == "load" and mid["load_in_reset"] == 0 == end["load_in_reset"]
        seen[what] = (mid["rd_we_in_reset"], end["rd_we_in_reset"])
    assert seen == {"original": (0, 0), "mutant": (2, 0)}, seen


def test_report_round_trip_score_and_waivers(tmp_path) -> None:
    from t2c_sim.closure.mutate import Waiver

    ms = enumerate_mutants(RTL_DIR, ["t2c_ram.v"])[:6]
    rep = MutationReport("t", wall_s=3.0)
    for m, st in zip(ms, ("killed", "killed", "timeout", "survived", "survived", "equivalent")):
        rep.results.append(MutantResult(m, st, "why", 1.0, 0.5))
    rep.diffs = {m.id: m.diff(RTL_DIR) for m in ms[3:5]}
    assert rep.score == pytest.approx(3 / 5)
    rep.write_json(tmp_path / "r.json")
    back = load_report(tmp_path / "r.json")
    assert back.counts() == rep.counts() and back.score == rep.score
    assert set(back.to_dict()["survivor_diffs"]) == {ms[3].id, ms[4].id}
    m = ms[3]
    w = Waiver(m.file, m.operator, m.line_text, m.original, m.replacement, "equivalent", "r")
    assert apply_waivers(back.results, [w]) == 1
    assert back.counts()["waived"] == 1 and back.score == pytest.approx(3 / 4)
