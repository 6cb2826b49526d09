"""The DUT contract without a simulator: DUT files refused at the edge (one line, exit 2), the
expression language, what a DUT accepts and why not, the one owner of our accelerator's RTL
interface, suites that name DUTs, and the packers of the stream and axi profiles.

Oracles: hand-written expectations per case (the refusal key, the words of a frame, the bytes
of a memory image worked out by hand), never the code under test.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from t2c_sim.cli import main
from t2c_sim.config import HwConfig, RoundMode
from t2c_sim.cosim.dut import DEFAULT_DUT_FILE, default_dut, load_dut
from t2c_sim.cosim.expr import Expr
from t2c_sim.cosim.gemm import GemmOp
from t2c_sim.cosim.profiles.axi import layout, program
from t2c_sim.cosim.profiles.frames import DeclaredStream
from t2c_sim.errors import ConfigError, UnsupportedLayerError
from t2c_sim.export import iface
from t2c_sim.export.records import save_network
from t2c_sim.regress.suite import Job, load_suite
from t2c_sim.workloads.gen import random_linear_record

ROOT = Path(__file__).resolve().parents[1]
SWS = ROOT / "examples" / "systolic_ws" / "dut.yaml"
AXI = ROOT / "tests" / "duts" / "axi_mac" / "dut.yaml"

STREAM = {
    "name": "toy", "top": "toy", "sources": ["toy.v"],
    "parameters": {"LANES": 4, "COLS": 2, "Y_BITS": 8},
    "clock": {"port": "clk_i"}, "reset": {"port": "rst_ni"},
    "accepts": {"a_bits": {"max": 8}, "nm": "dense"},
    "interface": {"profile": "stream", "in": {"prefix": "s", "data_bits": "LANES * 8"},
                  "out": {"prefix": "m", "data_bits": "COLS * Y_BITS"},
                  "input": {"items": [{"words": ["rows", "k"]}, {"matrix": "x"}]},
                  "output": {"lane_bits": "Y_BITS"}},
}
AXI_IF = {"profile": "axi", "control": {"prefix": "s", "addr_bits": 8},
          "memory": {"prefix": "m", "data_bits": 32, "size": 4096},
          "operands": {"x": {"elem_bits": 8}, "w": {"elem_bits": 8}, "y": {"elem_bits": 16}},
          "registers": [{"addr": 0, "value": 1}], "completion": {"done": "done_o"}}


def _write(tmp: Path, data: object, name: str = "dut.yaml") -> Path:
    (tmp / "toy.v").write_text("module toy; endmodule\n")
    (tmp / "notes.txt").write_text("not verilog\n")
    p = tmp / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def _set(d: dict, path: str, value: object) -> dict:
    """A deep copy of ``d`` with ``path`` (a.b.c) set, or removed when value is ``...``."""
    import copy

    d = copy.deepcopy(d)
    keys = path.split(".")
    cur = d
    for k in keys[:-1]:
        cur = cur[k]
    if value is ...:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value
    return d


# (case, the DUT file content, the key the one error line must name)
BAD = [
    ("not a mapping", ["a", "b"], None),
    ("missing name", _set(STREAM, "name", ...), "missing key 'name'"),
    ("unknown top key", {**STREAM, "colz": 1}, "key 'colz'"),
    ("bad name", _set(STREAM, "name", "a b/c"), "key 'name'"),
    ("top not an identifier", _set(STREAM, "top", "1top"), "key 'top'"),
    ("no source matches", _set(STREAM, "sources", ["rtl/*.v"]), "key 'sources[0]'"),
    ("source not verilog", _set(STREAM, "sources", ["notes.txt"]), "key 'sources[0]'"),
    ("parameter syntax", _set(STREAM, "parameters.COLS", "2 +* 3"), "key 'parameters.COLS'"),
    ("parameter unknown name", _set(STREAM, "parameters.COLS", "ROWS * 2"),
     "key 'parameters.COLS'"),
    ("parameter calls a function", _set(STREAM, "parameters.COLS", "__import__('os')"),
     "key 'parameters.COLS'"),
    ("parameter string constant", _set(STREAM, "parameters.COLS", "'abc'"),
     "key 'parameters.COLS'"),
    ("accepts unknown key", _set(STREAM, "accepts.speed", 3), "key 'accepts.speed'"),
    ("accepts bad rounding", _set(STREAM, "accepts.rounding", ["nearest"]),
     "key 'accepts.rounding[0]'"),
    ("bound without a limit", _set(STREAM, "accepts.a_bits", {"why": "x"}), "key 'accepts.a_bits'"),
    ("bound unknown name", _set(STREAM, "accepts.a_bits", {"max": "A_BITS"}),
     "key 'accepts.a_bits.max'"),
    ("nm not dense/record", _set(STREAM, "accepts.nm", "sparse"), "key 'accepts.nm'"),
    ("no interface", _set(STREAM, "interface", ...), "missing key 'interface'"),
    ("unknown profile", _set(STREAM, "interface.profile", "pcie"), "key 'interface.profile'"),
    ("stream port without width", _set(STREAM, "interface.in", {"prefix": "s"}),
     "key 'interface.in'"),
    ("stream counter bits", _set(STREAM, "interface.counter", {"port": "c", "bits": 99}),
     "key 'interface.counter.bits'"),
    ("declared item of two kinds", _set(STREAM, "interface.input.items",
                                        [{"words": ["k"], "matrix": "x"}]),
     "key 'interface.input.items[0]'"),
    ("declared word unknown field", _set(STREAM, "interface.input.items", [{"words": ["kk"]}]),
     "key 'interface.input.items[0].words[0]'"),
    ("stream without clock", _set(STREAM, "clock", ...), "missing key 'clock'"),
    ("reset polarity", _set(STREAM, "reset.active", "sideways"), "key 'reset.active'"),
    ("clock period bound", _set(STREAM, "clock.period_ns", 0), "key 'clock.period_ns'"),
    ("adapter file missing", {**STREAM, "adapter": "nope.py:A"}, "key 'adapter'"),
    ("adapter not a reference", {**STREAM, "adapter": "nope"}, "key 'adapter'"),
    ("model reference", {**STREAM, "cycles": {"model": "m.py"}}, "key 'cycles.model'"),
    ("backdoor without adapter", _set(STREAM, "interface", {"profile": "backdoor"}),
     "key 'interface.profile'"),
    ("axi data width", _set(_set(STREAM, "interface", AXI_IF), "interface.memory.data_bits", 48),
     "key 'interface.memory.data_bits'"),
    ("axi memory bound", _set(_set(STREAM, "interface", AXI_IF), "interface.memory.size", 1 << 40),
     "key 'interface.memory.size'"),
    ("axi no output region", _set(_set(STREAM, "interface", AXI_IF), "interface.operands.y", ...),
     "key 'interface.operands'"),
    ("axi element width", _set(_set(STREAM, "interface", AXI_IF), "interface.operands.x",
                               {"elem_bits": 12}), "key 'interface.operands.x.elem_bits'"),
    ("axi no registers", _set(_set(STREAM, "interface", AXI_IF), "interface.registers", []),
     "key 'interface.registers'"),
    ("axi register name", _set(_set(STREAM, "interface", AXI_IF), "interface.registers",
                               [{"addr": 0, "value": "addr.q + cols"}]),
     "key 'interface.registers[0].value'"),
    ("axi two completions", _set(_set(STREAM, "interface", AXI_IF), "interface.completion",
                                 {"irq": "a", "done": "b"}), "key 'interface.completion'"),
]


@pytest.mark.parametrize("case", [c[0] for c in BAD])
def test_bad_dut_file_is_one_line_exit_2(case: str, tmp_path: Path, capsys) -> None:
    """``t2c-sim run ... --dut BAD`` exits 2 with one stderr line naming the file and the key
    (and the line, when the key exists), before anything is loaded or written."""
    data, key = next((d, k) for c, d, k in BAD if c == case)
    dut = _write(tmp_path, data)
    out = tmp_path / "out"
    rc = main(["run", str(tmp_path / "no_such_records"), "--dut", str(dut), "--sim", "none",
               "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith("t2c-sim: error: "), err
    assert str(dut) in err[0], err
    if key is not None:
        assert key in err[0], err
    if key is not None and key.startswith("key '") and "missing" not in key:
        assert re.search(r", line \d+, ", err[0]), err   # the line of the offending key
    assert not out.exists()


@pytest.mark.parametrize("argv,key", [
    (["--dut-param", "NOPE=3"], "--dut-param NOPE"),
    (["--dut-param", "COLS=two"], "--dut-param COLS"),
    (["--dut-param", "COLS"], "--dut-param"),
    (["--backpressure", "95,0"], "--backpressure"),
    (["--backpressure", "x"], "--backpressure"),
])
def test_bad_dut_options_are_one_line_exit_2(argv, key, tmp_path: Path, capsys) -> None:
    recs = tmp_path / "recs"
    save_network([random_linear_record(np.random.default_rng(0), c_in=8, c_out=4, rows=2,
                                       name="fc")], recs)
    dut = _write(tmp_path, STREAM)
    rc = main(["run", str(recs), "--dut", str(dut), "--sim", "icarus", "--out",
               str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and key in err[0], err
    assert not (tmp_path / "out").exists()


def test_missing_dut_file_and_huge_file(tmp_path: Path, capsys) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    for f, what in ((tmp_path / "none.yaml", "DUT file not found"), (big, "larger than")):
        rc = main(["run", "x", "--dut", str(f), "--sim", "none"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and what in err[0] and str(f) in err[0], err


def test_invalid_yaml_names_the_line(tmp_path: Path, capsys) -> None:
    p = _write(tmp_path, "name: toy\ntop: [unclosed\n")
    rc = main(["run", "x", "--dut", str(p), "--sim", "none"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"{p}, line " in err and "not valid YAML" in err


# ------------------------------------------------------------------------------ expressions
@pytest.mark.parametrize("text,ns,want", [
    ("1 << 4", {}, 16), ("cdiv(k, 4) * 4", {"k": 10}, 12), ("align(v, 64)", {"v": 65}, 128),
    ("clog2(1) + clog2(5)", {}, 3), ("-(1 << (B - 1))", {"B": 16}, -32768),
    ("mode | a_signed << 2", {"mode": 3, "a_signed": 1}, 7), ("x if x > 3 else 0", {"x": 2}, 0),
    ("hw.rows * hw.cols", {"hw": HwConfig(rows=2, cols=8)}, 16),
    ("addr.x + stride.x", {"addr": {"x": 64}, "stride": {"x": 12}}, 76),
    ("max(a, b, 3) - min(a, b)", {"a": 1, "b": 9}, 8), ("2 ** 10", {}, 1024),
])
def test_expression_values(text: str, ns: dict, want: int) -> None:
    assert Expr(text).eval(ns) == want


@pytest.mark.parametrize("text,why", [
    ("os.system('x')", "not allowed"), ("a.b.c", "attribute of an attribute"),
    ("[1, 2]", "not allowed"), ("lambda: 1", "not allowed"), ("open('f')", "not allowed"),
    ("print(1)", "not allowed"), ("'s' * 3", "constant"), ("1 +", "not a valid expression"),
])
def test_expression_refusals(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        Expr(text, file="f.yaml", key="k")


@pytest.mark.parametrize("text,ns,why", [
    ("1 << 600", {}, "outside"), ("9 ** 999", {}, "outside"), ("9 ** 300", {}, "too large"),
    ("1 // z", {"z": 0}, "cannot"),
    ("q + 1", {}, "not defined"), ("hw.nope", {"hw": HwConfig()}, "not defined"),
    ("addr.y", {"addr": {"x": 1}}, "addr.y is not defined"),
])
def test_expression_bounded_evaluation(text: str, ns: dict, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        Expr(text).eval(ns)


# ------------------------------------------------------------------------------ accepts
def _lin(**kw):
    return random_linear_record(np.random.default_rng(kw.pop("seed", 1)), name="fc", **kw)


@pytest.mark.parametrize("case,rec,dut,key", [
    ("2:4 on 2:4", _lin(c_in=8, c_out=2, rows=2, n=2, m=4), "t2c", None),
    ("dense on 2:4", _lin(c_in=8, c_out=2, rows=2, n=4, m=4), "t2c", "nm"),
    ("dense on the systolic array", _lin(c_in=8, c_out=2, rows=2, n=4, m=4), "sws", None),
    ("acc 24 bits", _lin(c_in=4, c_out=2, rows=2, n=2, m=4).replace(acc_bits=24, wrap_ok=True),
     "t2c", "acc_bits"),
    ("a16 on 8-bit lanes", _lin(c_in=8, c_out=2, rows=2, n=2, m=4, a_bits=16), "sws", "a_bits"),
    ("token-wise", _lin(c_in=8, c_out=2, rows=3, n=2, m=4, token_wise=True), "sws", "token_wise"),
    ("token-wise on a build without rp memory", _lin(c_in=8, c_out=2, rows=3, n=2, m=4,
                                                     token_wise=True), "t2c-norp", "hw.row_params"),
    ("16-bit outputs on 8-bit lanes", _lin(c_in=8, c_out=2, rows=2, y_bits=16), "sws",
     "output_bits"),
    ("K beyond the buffer", _lin(c_in=300, c_out=2, rows=2), "axi", "k"),
    ("z_y beyond 16 bits", _lin(c_in=8, c_out=2, rows=2, n=2, m=4).replace(z_y=40000, lo=-5,
                                                                            hi=40001),
     "t2c", "z_y"),
])
def test_accepts_table(case, rec, dut, key) -> None:
    d = {"t2c": default_dut, "sws": lambda: load_dut(SWS).bind(), "axi": lambda: load_dut(AXI).bind(),
         "t2c-norp": lambda: default_dut(HwConfig(row_params=0))}[dut]()
    if key is None:
        d.check(rec)
        return
    with pytest.raises(UnsupportedLayerError) as ei:
        d.check(rec)
    msg = str(ei.value)
    # a build feature our accelerator lacks is named by its HwConfig key (the adapter's check)
    tail = f"[{key}]" if key.startswith("hw.") else f"[accepts.{key}]"
    assert msg.startswith("layer 'fc': cannot run on DUT ") and msg.endswith(tail), msg


def test_accepts_declared_numerics_m0_one_floor(tmp_path: Path) -> None:
    """A DUT that implements M0 = 1 with floor rounding only: other records are refused."""
    d = load_dut(_write(tmp_path, _set(_set(STREAM, "accepts.m0", {"equal": 1}),
                                       "accepts.rounding", ["floor"]))).bind()
    rec = _lin(c_in=8, c_out=2, rows=2, mode="floor")
    with pytest.raises(UnsupportedLayerError, match=r"m0 in \d+\.\.\d+ but the DUT needs 1"):
        d.check(rec)
    ok = rec.replace(M0=np.ones(2, dtype=np.int64))
    d.check(ok)
    with pytest.raises(UnsupportedLayerError, match=r"rounding mode half_up is not implemented"):
        d.check(ok.replace(mode=RoundMode.HALF_UP))


# ------------------------------------------------------------------------------ one owner
def test_builtin_dut_parameters_come_from_iface() -> None:
    hw = HwConfig(rows=2, cols=8, n=1, m=4, act_depth=64)
    params = default_dut(hw).params
    assert params == {k: v for k, v in iface.top_parameters(hw).items() if k != "PACKED"}
    assert load_dut(DEFAULT_DUT_FILE).name == "t2c_accel"


def test_harness_declares_every_parameter_iface_passes() -> None:
    """The plan format reaches the harness as parameters: each one iface passes is declared."""
    text = (ROOT / "t2c_sim" / "cosim" / "hdl" / "t2c_harness.v").read_text()
    declared = set(re.findall(r"parameter integer (\w+)", text))
    passed = iface.harness_parameters(iface.top_parameters(HwConfig()))
    assert set(passed) <= declared, set(passed) - declared
    assert [passed[f"PL_{f.upper()}"] for f in iface.PLAN_FIELDS] == list(range(iface.PLAN_WORDS))


def test_interface_constants_have_one_owner() -> None:
    """Y_BITS, SH_BITS and the plan size are written as numbers only in export/iface.py (and as
    Verilog parameter defaults in rtl/ and the harness)."""
    pat = re.compile(r"\b(Y_BITS|SH_BITS|PLAN_WORDS|PW)\s*=\s*\d+")
    hits = [f"{p.relative_to(ROOT)}:{i}" for base in ("t2c_sim", "testbenches", "tests")
            for p in sorted((ROOT / base).rglob("*.py"))
            if p.name not in ("iface.py", "test_dut.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pat.search(line)]
    assert not hits, hits


# ------------------------------------------------------------------------------ suites
def test_suite_names_a_dut_with_overrides_and_backpressure(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "s", "sims": ["icarus"], "dut": str(SWS), "dut_params": {"ACC_DEPTH": 4},
        "backpressure": [[0, 0], [30, 40]],
        "jobs": [{"random": "linear", "name": "fc", "params": {"c_in": 8, "c_out": 4, "rows": 3}},
                 {"random": "linear", "name": "ours", "dut": str(DEFAULT_DUT_FILE),
                  "dut_params": {}, "backpressure": [0, 0],
                  "params": {"c_in": 8, "c_out": 4, "rows": 3}}]}))
    s = load_suite(suite)
    assert [(j.name, j.dut_name, j.backpressure, j.dut_params) for j in s.jobs] == [
        ("fc", "sws_top", (0, 0), {"ACC_DEPTH": 4}), ("fc", "sws_top", (30, 40), {"ACC_DEPTH": 4}),
        ("ours", "t2c_accel", (0, 0), {})]
    assert len({j.job_id for j in s.jobs}) == 3
    over = load_suite(suite, dut=str(DEFAULT_DUT_FILE), dut_params={})
    assert {j.dut_name for j in over.jobs} == {"t2c_accel"}


def test_suite_refuses_an_entry_the_dut_refuses(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "sims": ["icarus"], "dut": str(AXI), "jobs": [
        {"random": "linear", "params": {"c_in": 300, "c_out": 2, "rows": 2}}]}))
    with pytest.raises(ConfigError, match=r"s\.yaml, key 'jobs\[0\]': the DUT refuses this entry: "
                                          r".*\[accepts\.k\]"):
        load_suite(suite)


def test_job_ids_without_a_dut_are_unchanged() -> None:
    """Our accelerator's stored regression results stay valid: the id hashes what it did."""
    import hashlib
    import json

    j = Job(name="fc", kind="linear", hw=HwConfig().to_dict(), sim="icarus", seed=3,
            params={"c_in": 8})
    old = {"kind": "linear", "recipe_sha": "", "params": {"c_in": 8}, "hw": HwConfig().to_dict(),
           "sim": "icarus", "seed": 3}
    want = hashlib.sha256(json.dumps(old, sort_keys=True, separators=(",", ":")).encode())
    assert j.job_id == want.hexdigest()[:16]


# ------------------------------------------------------------------------------ packers
def _op(x, w, **kw) -> GemmOp:
    c = w.shape[0]
    base = dict(layer="L", index=0, group=0, c0=0, x=np.asarray(x), w=np.asarray(w),
                bias=np.arange(c) - 1, m0=np.arange(c) + 100, sh=np.arange(c) + 7, z_y=-3, lo=-128,
                hi=127, mode=RoundMode.HALF_UP, a_signed=True, y_signed=True, a_bits=8, w_bits=8,
                acc_bits=32, n=1, m=1)
    base.update(kw)
    return GemmOp(**base)


def test_declared_stream_frame_words_and_lanes(tmp_path: Path) -> None:
    """The docstring example: words [rows, k] then x with 8-bit lanes on a 32-bit stream."""
    d = load_dut(_write(tmp_path, STREAM)).bind()
    ds = DeclaredStream(d, 32, 16)
    x = np.array([[1, 2, 3, 4, -1], [5, 6, 7, 8, -128]])
    f = ds.frame(_op(x, np.zeros((3, 5), dtype=np.int64)))
    want = [[2, 0, 0, 0], [5, 0, 0, 0], [1, 2, 3, 4], [0xFF, 0, 0, 0], [5, 6, 7, 8],
            [0x80, 0, 0, 0]]
    assert f.tolist() == want
    assert ds.out_beats(_op(x, np.zeros((3, 5), dtype=np.int64))) == 2 * 2
    y = ds.unpack(_op(x, np.zeros((3, 5), dtype=np.int64)),
                  np.array([[1, 0xFF], [7, 0], [0x80, 2], [3, 0]], dtype=np.uint8),
                  np.zeros(4, dtype=bool))
    assert y.tolist() == [[1, -1, 7], [-128, 2, 3]]


def test_axi_layout_and_program_by_hand() -> None:
    d = load_dut(AXI).bind()
    x = np.array([[1, -2, 3, 4, 5], [6, 7, 8, 9, 10]])
    w = np.array([[-1, 0, 1, 2, 3]])
    op = _op(x, w)
    img, regions = layout(d, op, seed=1)
    # x: 2 rows of 5 bytes padded to 8; w at the next 64-byte boundary; vectors of 4 bytes
    assert regions["x"] == (0, 8, 16) and regions["w"] == (64, 8, 8)
    assert regions["bias"] == (128, 4, 4) and regions["m0"] == (192, 4, 4)
    assert regions["sh"] == (256, 4, 4) and regions["y"] == (320, 4, 8)
    assert img[:8].tolist() == [1, 0xFE, 3, 4, 5, 0, 0, 0]
    assert img[64:69].tolist() == [0xFF, 0, 1, 2, 3]
    assert img[128:132].tolist() == [0xFF, 0xFF, 0xFF, 0xFF]      # bias -1
    assert img[192:196].tolist() == [100, 0, 0, 0] and img[256] == 7
    prog, reads = program(d, op, regions)
    regs = {a: v for o, a, v, _ in prog if o == 1}
    assert regs[0x08] == 2 and regs[0x0C] == 5 and regs[0x10] == 1
    assert regs[0x14] == 1 | 1 << 2 and regs[0x18] == (-3) & 0xFFFFFFFF and regs[0x38] == 320
    assert regs[0x3C] == 8 and regs[0x44] == 4
    assert [o for o, *_ in prog] == [1] * 17 + [4, 2, 2, 1, 0]
    assert reads == {18: "cycles", 19: "error"}


# ------------------------------------------------------------------------------ HDL lint
PROFILE_HDL = ("prof_lfsr_pause", "prof_stream_source", "prof_stream_sink", "prof_axil_master",
               "t2c_axi_mem")


@pytest.mark.sim
@pytest.mark.parametrize("top,files", [
    *[(m, []) for m in PROFILE_HDL],
    ("axi_mac", [AXI.parent / "rtl" / "axi_mac.v", ROOT / "rtl" / "t2c_requant.v"]),
    ("stream_mac", [ROOT / "tests" / "duts" / "stream_mac" / "rtl" / "stream_mac.v",
                    ROOT / "rtl" / "t2c_requant.v"]),
])
def test_profile_models_and_test_dut_are_lint_clean(top: str, files: list) -> None:
    """The profiles' HDL models and the AXI test DUT: silent under verilator -Wall and
    iverilog -Wall (the generated harnesses are compiled by every build)."""
    import subprocess

    from t2c_sim.cosim.sim import find_tools

    hdl = ROOT / "t2c_sim" / "cosim" / "hdl"
    files = files or [hdl / f"{top}.v"] + ([hdl / "prof_lfsr_pause.v"]
                                          if top.startswith("prof_stream") else [])
    tools = find_tools()
    for cmd in ([tools["verilator"], "--lint-only", "-Wall", "--top-module", top, *map(str, files)],
                ["iverilog", "-Wall", "-g2005", "-o", "/dev/null", "-s", top, *map(str, files)]):
        p = subprocess.run(cmd, env=tools["env"], capture_output=True, text=True, check=False)
        msgs = [ln for ln in (p.stdout + p.stderr).splitlines()
                if ln.strip() and not ln.startswith("- ")]
        assert p.returncode == 0 and not msgs, "\n".join(msgs)


def test_register_fields_see_the_layer_geometry(tmp_path: Path) -> None:
    """A DUT that walks a convolution itself programs its geometry: ``layer.<field>``."""
    from t2c_sim.cosim.gemm import gemm_ops
    from t2c_sim.workloads.gen import random_conv_record

    axi = _set(AXI_IF, "registers", [
        {"addr": 0x10, "value": "layer.kh << 8 | layer.kw << 4 | layer.stride_h"},
        {"addr": 0x14, "value": "layer.h * 1000 + layer.oh"},
        {"addr": 0x18, "value": "layer.c_in << 16 | layer.groups << 8 | layer.batch"}])
    d = load_dut(_write(tmp_path, _set(STREAM, "interface", axi))).bind()
    rec = random_conv_record(np.random.default_rng(0), c_in=4, c_out=4, h=7, w=7, kh=3, kw=1,
                             padding=(1, 0), stride=2, groups=2, batch=2)
    op = gemm_ops(rec)[0][1]
    prog, _ = program(d, op, layout(d, op, 0)[1])
    assert [(a, v) for o, a, v, _ in prog if o == 1] == [
        (0x10, 3 << 8 | 1 << 4 | 2), (0x14, 7000 + 4), (0x18, 4 << 16 | 2 << 8 | 2)]


def test_a_bound_dut_crosses_process_boundaries() -> None:
    """Workers get the DUT by pickle: the file is re-read and the same values bound."""
    import pickle

    d = load_dut(SWS).bind(overrides={"ROWS": 8})
    assert d.adapter is not None and d.model is not None   # loaded objects need not pickle
    e = pickle.loads(pickle.dumps(d))
    assert e.params == d.params and e.spec.file == d.spec.file and e.params["ROWS"] == 8
    op = _op(np.ones((2, 3), dtype=np.int64), np.ones((2, 3), dtype=np.int64))
    assert e.op_cycles(op) == d.op_cycles(op) and e.adapter.frame(op).shape == d.adapter.frame(op).shape
