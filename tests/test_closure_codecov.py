"""Code coverage plumbing (t2c_sim.closure.codecov).

Fast: a hand-written ``coverage.dat`` (the SystemC::Coverage-3 format) is read, merged
(sums, associative), folded per source location, exported to lcov and tabulated; every count
is checked against values computed by hand; waivers by module and line text remove points.
Simulator: one Verilator coverage build of the accelerator runs a half_even layer (the
requantizer's half_up line is a hole) and then a half_up layer (the hole closes), so the
coverage pipeline is shown able to report a miss.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from t2c_sim.closure import codecov as cc
from t2c_sim.config import HwConfig
from t2c_sim.cosim.run import RTL_MODULES, run_layers
from t2c_sim.cosim.sim import RTL_DIR, default_build_root
from t2c_sim.errors import ConfigError
from t2c_sim.workloads.gen import random_linear_record, with_profile

SRC = """module t2c_x (input wire a_i, output reg y_q);
  always @* begin
    if (a_i) begin
      y_q = 1'b1;
    end else begin
      y_q = 1'b0;  // never taken in the test data
    end
  end
endmodule
"""


def _key(file: Path, line: int, col: int, typ: str, page: str, comment: str, hier: str,
         span: str | None = None) -> str:
    parts = [("f", str(file)), ("l", str(line)), ("n", str(col)), ("t", typ), ("page", page),
             ("o", comment)]
    if span:
        parts.append(("S", span))
    parts.append(("h", hier))
    return "\x01" + "\x01".join(f"{k}\x02{v}" for k, v in parts)


def _dat(path: Path, entries: list[tuple[str, int]]) -> Path:
    path.write_text("# SystemC::Coverage-3\n" + "".join(f"C '{k}' {n}\n" for k, n in entries))
    return path


@pytest.fixture
def design(tmp_path: Path) -> tuple[Path, Path, Path]:
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    src = rtl / "t2c_x.v"
    src.write_text(SRC)
    pts = lambda h, n1, n2, t01, t10: [  # noqa: E731
        (_key(src, 2, 3, "line", "v_line/t2c_x", "block", h, "2"), n1),
        # Verilator 5: each arm of an if is a branch point with the lines it runs; an arm
        # without code (an implicit else) has no lines
        (_key(src, 3, 5, "branch", "v_branch/t2c_x", "if", h, "3-4"), n1),
        (_key(src, 5, 7, "branch", "v_branch/t2c_x__pi2", "else", h, "5-6"), n2),
        (_key(src, 2, 9, "branch", "v_branch/t2c_x", "else", h), n1),
        (_key(src, 1, 30, "toggle", "v_toggle/t2c_x", "a_i:0->1", h), t01),
        (_key(src, 1, 30, "toggle", "v_toggle/t2c_x", "a_i:1->0", h), t10),
        # Verilator names a parameterized copy <module>__pi<N> or <module>__<parameters>
        (_key(src, 1, 52, "toggle", "v_toggle/t2c_x__W20_D8", "y_q:0->1", h), t01),
    ]
    other = tmp_path / "harness.v"
    other.write_text("module h; endmodule\n")
    d1 = _dat(tmp_path / "a.dat", pts("top.u0", 3, 0, 1, 0) +
              [(_key(other, 1, 1, "line", "v_line/h", "block", "top"), 9)])
    d2 = _dat(tmp_path / "b.dat", pts("top.u1", 2, 0, 0, 0))
    return rtl, d1, d2


def test_merge_sums_and_is_associative(design, tmp_path) -> None:
    rtl, d1, d2 = design
    d3 = _dat(tmp_path / "c.dat", [(k, 5) for k in cc.read_dat(d1)])
    ab = cc.merge([cc.merge([d1, d2], tmp_path / "ab.dat") and tmp_path / "ab.dat", d3])
    bc = cc.merge([d1, cc.merge([d2, d3], tmp_path / "bc.dat") and tmp_path / "bc.dat"])
    assert ab == bc == cc.merge([d3, d2, d1])
    once = cc.read_dat(d1)
    assert all(ab[k] == once[k] + 5 + cc.read_dat(d2).get(k, 0) for k in once)
    assert (tmp_path / "ab.dat").read_text().startswith("# SystemC::Coverage-3\nC '")


def test_points_fold_instances_and_filter_files(design) -> None:
    rtl, d1, d2 = design
    pts = cc.points(cc.merge([d1, d2]), rtl)
    assert {p.module for p in pts} == {"t2c_x"}    # __pi2, __W20_D8 folded, harness dropped
    by = {(p.type, p.comment, p.span): n for p, n in pts.items()}
    assert by[("line", "block", (2,))] == 5 and by[("branch", "else", (5, 6))] == 0
    assert by[("branch", "else", ())] == 5   # the implicit else runs no line
    by = {(p.type, p.comment): n for p, n in pts.items() if p.type == "toggle"}
    assert by[("toggle", "a_i:0->1")] == 1 and by[("toggle", "a_i:1->0")] == 0
    assert {p.span for p in pts if p.comment == "if"} == {(3, 4)}


def test_table_holes_info_and_waivers(design, tmp_path) -> None:
    rtl, d1, d2 = design
    counts = cc.merge([d1, d2])
    rows = cc.table(counts, rtl)
    # lines 2,3,4 hit; 5,6 not -> 3/5; toggles a_i:0->1 and y_q:0->1 hit, a_i:1->0 not -> 2/3;
    # branch arms: if and the implicit else hit, the else not -> 2/3
    assert rows[0] == cc.FileRow("t2c_x.v", 3, 5, 2, 3, 0, 0, 0, 2, 3)
    assert rows[-1].file == "TOTAL" and rows[-1].lines_total == 5
    h = cc.holes(counts, rtl)["t2c_x.v"]
    assert "L5 end else begin" in h and "L6 y_q = 1'b0;  // never taken in the test data" in h
    assert any(x.startswith("L1 a_i: 1 toggle") for x in h)
    info = cc.write_info(counts, tmp_path / "x.info", rtl).read_text()
    assert "DA:5,0" in info and "DA:3,5" in info and "LF:5" in info and "LH:3" in info
    assert "BRF:6" in info and "BRH:4" in info and info.count("BRDA:1,0,") == 3
    wf = tmp_path / "w.yaml"
    wf.write_text("waivers:\n  - {module: t2c_x, line_text: 'never taken', kind: line, "
                  "reason: test}\n  - {module: t2c_x, line_text: 'module t2c_x', kind: toggle,"
                  " signal: 'a_i:1->0', reason: test}\n")
    ws = cc.load_waivers(wf)
    r = cc.table(counts, rtl, ws)[0]
    # the else block (span 5-6) contains the waived text: lines 5 and 6 leave the total
    assert (r.lines_hit, r.lines_total, r.toggles_hit, r.toggles_total, r.waived,
            r.branches_hit, r.branches_total) == (3, 3, 2, 2, 2, 2, 2)
    assert cc.holes(counts, rtl, ws) == {}


def test_bad_inputs_are_one_line_errors(tmp_path) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_text("# SystemC::Coverage-3\nC 'x' 1\nnot a point\n")
    with pytest.raises(ConfigError, match=f"{bad}: line 3 is not a coverage point"):
        cc.read_dat(bad)
    wf = tmp_path / "w.yaml"
    wf.write_text("waivers:\n  - {module: m, line_text: x, kind: branch, reason: r}\n")
    with pytest.raises(ConfigError, match=r"key 'waivers\[0\].kind'"):
        cc.load_waivers(wf)
    with pytest.raises(Exception, match="no coverage.dat"):
        cc.collect([tmp_path])


def test_genhtml_and_summary(design, tmp_path) -> None:
    rtl, d1, d2 = design
    info = cc.write_info(cc.merge([d1, d2]), tmp_path / "x.info", rtl)
    index = cc.genhtml(info, tmp_path / "html")
    assert index.is_file() and "t2c_x.v" in "".join(
        p.read_text(errors="replace") for p in (tmp_path / "html").rglob("*.html"))
    s = cc.summarize([d1, d2], tmp_path / "rep" / "coverage", rtl)
    assert s["inputs"] == 2 and s["total"] == {"lines": 60.0, "toggles": 66.67,
                                                "branches": 66.67, "user": 100.0}
    assert s["html"] == "coverage/html/index.html" and (tmp_path / "rep" / s["html"]).is_file()
    assert (tmp_path / "rep" / s["dat"]).is_file() and (tmp_path / "rep" / s["info"]).is_file()
    assert s["holes_total"] == sum(len(v) for v in s["holes"].values()) > 0


def test_repository_waivers_are_valid() -> None:
    ws = cc.load_waivers(RTL_DIR / "coverage_waivers.yaml")
    for w in ws:
        src = RTL_DIR / f"{w.module}.v"
        assert src.is_file() and w.line_text in src.read_text(), f"stale waiver {w}"


@pytest.mark.sim
def test_verilator_coverage_sees_a_hole_and_its_closure(tmp_path) -> None:
    # the array (and so the coverage build, in the shared build root) of test_closure_product's
    # `run --coverage`: one Verilator build for both tests
    hw = HwConfig(rows=2, cols=2, n=2, m=4, act_depth=8, w_depth=6, out_depth=24, ch_depth=4)
    r = np.random.default_rng(3)
    even = random_linear_record(r, name="fc_even", c_in=8, c_out=2, rows=3, n=2, m=4)
    # a runtime profile: the requantizer's tflite_double branch (SRDHM) runs only for it
    up = with_profile(r, random_linear_record(r, name="fc_up", c_in=8, c_out=2, rows=3, n=2,
                                              m=4), "tflite_double")
    root = default_build_root()
    runs = []
    for rec in (even, up):
        res = run_layers([rec], hw, "verilator", build_root=root, keep=True,
                         build_args=cc.COVERAGE_ARGS)[0]
        assert np.array_equal(res.y, rec.y)
        runs.append(res.run_dir)
    first = cc.merge(cc.collect(runs[:1]))
    both = cc.merge(cc.collect(runs))
    def half_up_hole(counts) -> bool:
        return any(h.endswith(" s2 = 8'd31;")
                   for h in cc.holes(counts, RTL_DIR).get("t2c_requant.v", []))

    assert half_up_hole(first) and not half_up_hole(both)
    t1 = {r.file: r for r in cc.table(first, RTL_DIR)}
    t2 = {r.file: r for r in cc.table(both, RTL_DIR)}
    # the table and the hole list agree: the lines the profile closed are the difference
    def line_holes(counts) -> set[str]:
        return {h for h in cc.holes(counts, RTL_DIR).get("t2c_requant.v", [])
                if "toggle(s) never seen" not in h}
    closed = line_holes(first) - line_holes(both)
    assert closed and not line_holes(both) - line_holes(first)
    assert t2["t2c_requant.v"].lines_hit == t1["t2c_requant.v"].lines_hit + len(closed)
    assert set(t1) == {p.name for p in RTL_DIR.glob("t2c_*.v")
                       if p.stem in RTL_MODULES} | {"TOTAL"}
    for d in runs:
        shutil.rmtree(d, ignore_errors=True)
