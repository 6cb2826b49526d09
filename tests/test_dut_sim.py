"""Four DUTs through the same contract, on Icarus and Verilator: our accelerator through its
back door (its packaged DUT file, back-door profile) and its front door (``t2c_axi_accel``, axi
profile with an adapter), the systolic example (``examples/systolic_ws/dut.yaml``, stream
profile, with and without back-pressure) and a small AXI engine (``tests/duts/axi_mac``, axi
profile, YAML only).

* ``t2c-sim run --dut`` and ``t2c-sim regress`` (a suite naming DUTs): bit-exact on both
  simulators, measured cycles equal to each DUT's model (checked per unit by the framework),
  under back-pressure the stall cycles reported, the same on both simulators (seeded LFSRs);
* a corrupted DUT (one RTL file mutated in a copy of the DUT folder) is localized to layer,
  tile, row and channel, with a repro bundle that still fails and passes on the good DUT;
* a cycle model off by one fails the layer with both numbers and the tile, on every profile,
  unless the DUT declares its model not exact;
* an AXI DUT that reaches outside the memory model is an error naming the address.

Oracles: the golden model attached to each record (``np.array_equal`` in the framework), the
DUT's own cycle model, independent of the framework's measurement.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from t2c_sim.cli import main
from t2c_sim.config import HwConfig
from t2c_sim.cosim.dut import BUILTIN_DIR, DEFAULT_DUT_FILE, load_dut
from t2c_sim.cosim.gemm import gemm_ops
from t2c_sim.cosim.sim import RTL_DIR, default_build_root
from t2c_sim.errors import SimulationError
from t2c_sim.export.records import save_network
from t2c_sim.regress.outcome import simulate
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parents[1]
SWS = ROOT / "examples" / "systolic_ws" / "dut.yaml"
AXI = ROOT / "tests" / "duts" / "axi_mac" / "dut.yaml"
FRONT = BUILTIN_DIR / "t2c_axi_accel.yaml"
SMAC = ROOT / "tests" / "duts" / "stream_mac" / "dut.yaml"
BUILD = str(default_build_root())


def _records(seed: int = 0) -> list:
    """A 2:4 linear layer and a small 2:4 conv with nonzero output zero points."""
    lin = random_linear_record(np.random.default_rng(seed), c_in=12, c_out=6, rows=5, n=2, m=4,
                               name="fc")
    conv = random_conv_record(np.random.default_rng(seed + 10), c_in=4, c_out=4, h=5, w=5, n=2,
                              m=4, name="conv")
    assert lin.z_y != 0 and conv.z_y != 0  # the zero-point mutant below must show
    return [lin, conv]


@pytest.fixture(scope="module")
def recs_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("recs") / "net"
    save_network(_records(), d)
    return d


def _run(argv: list[str], capsys) -> tuple[int, str]:
    rc = main([*argv, "--build-root", BUILD])
    return rc, capsys.readouterr().out


@pytest.mark.parametrize("dut,sims", [
    (DEFAULT_DUT_FILE, "both"), (SWS, "both"), (AXI, "icarus"), (FRONT, "icarus"),
    pytest.param(AXI, "verilator", marks=pytest.mark.slow),
    pytest.param(FRONT, "verilator", marks=pytest.mark.slow)],
    ids=["t2c_accel", "sws", "axi_mac-icarus", "t2c_axi_accel-icarus", "axi_mac-verilator",
         "t2c_axi_accel-verilator"])
def test_run_dut_on_both_simulators(dut: Path, sims: str, recs_dir: Path, tmp_path: Path,
                                    capsys) -> None:
    rc, out = _run(["run", str(recs_dir), "--dut", str(dut), "--sim", sims, "--out",
                    str(tmp_path)], capsys)
    name = load_dut(dut).name
    assert rc == 0, out
    assert f"DUT: {name} (" in out and f"PASS on {name}:" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["dut"]["name"] == name and res["dut"]["file"] == str(dut.resolve())
    for lr in res["layers"]:
        assert [o["verdict"] for o in lr["sims"]] == ["pass"] * (2 if sims == "both" else 1), lr
        # the framework measured what the DUT's model predicts, on every unit (else: fail)
        assert {o["cycles_measured"] for o in lr["sims"]} == {lr["cycles_est"]} == \
            {o["cycles_model"] for o in lr["sims"]}, lr
    junit = (tmp_path / "junit.xml").read_text()
    assert f'name="dut.name" value="{name}"' in junit


def test_stream_dut_declared_in_yaml_only(recs_dir: Path, tmp_path: Path, capsys) -> None:
    """stream_mac: frames declared in its DUT file (no adapter, no model), with back-pressure
    on both simulators; outputs exact, cycles measured and reported, no model to check."""
    rc, out = _run(["run", str(recs_dir), "--dut", str(SMAC), "--sim", "both", "--backpressure",
                    "30,40", "--out", str(tmp_path)], capsys)
    assert rc == 0 and "PASS on stream_mac:" in out, out
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["dut"]["cycle_model"] == "none"
    for lr in res["layers"]:
        assert [o["verdict"] for o in lr["sims"]] == ["pass", "pass"], lr
        assert lr["cycles_est"] is None and all(o["cycles_model"] is None for o in lr["sims"])
        assert len({o["cycles_measured"] for o in lr["sims"]}) == 1   # same LFSR pattern


def test_regress_suite_naming_duts_with_backpressure(tmp_path: Path, capsys) -> None:
    """Our accelerator (default DUT) and the systolic array in one suite; the systolic jobs
    with and without back-pressure on both simulators."""
    suite = tmp_path / "duts.yaml"
    lin = {"random": "linear", "params": {"c_in": 20, "c_out": 6, "rows": 7}}
    conv = {"random": "conv", "params": {"c_in": 3, "c_out": 5, "h": 5, "w": 5, "groups": 1}}
    suite.write_text(yaml.safe_dump({"name": "duts", "seeds": [0], "hw": [{}], "jobs": [
        {**lin, "name": "fc_t2c", "sims": ["icarus"]},
        {**lin, "name": "fc_sws", "dut": str(SWS), "sims": "both",
         "backpressure": [[0, 0], [25, 35]]},
        {**conv, "name": "conv_sws", "dut": str(SWS), "sims": ["verilator"],
         "dut_params": {"ACC_DEPTH": 4}, "backpressure": [[0, 0], [40, 0]]}]}))
    rc, out = _run(["regress", str(suite), "-j", "2", "--out", str(tmp_path / "res")], capsys)
    assert rc == 0, out
    assert "PASS: 7 ran" in out and "sws_top bp25/35" in out, out
    runs = [json.loads(p.read_text()) for p in sorted((tmp_path / "res" / "jobs").glob("*.json"))]
    bp_cycles: dict[tuple, int] = {}
    for r in runs:
        assert r["status"] == "pass", r["message"]
        bp = tuple(r["info"]["backpressure"])
        assert r["run"]["dut"]["name"] == r["info"]["dut"]
        for lr in r["run"]["layers"]:
            for o in lr["sims"]:
                if any(bp):
                    assert o["backpressure"] == list(bp)
                    assert o["cycles_measured"] > o["cycles_model"]  # stalls were caused
                    bp_cycles.setdefault((r["info"]["name"], bp), o["cycles_measured"])
                    # the seeded LFSR patterns are the same on both simulators
                    assert bp_cycles[(r["info"]["name"], bp)] == o["cycles_measured"]
                else:
                    assert o["cycles_measured"] == o["cycles_model"] == lr["cycles_est"]
    assert len(bp_cycles) == 2
    html = (tmp_path / "res" / "report.html").read_text()
    assert "sws_top" in html and "t2c_accel" in html


# ------------------------------------------------------------------------------ corrupted DUTs
def _copy_dut(src: Path, tmp: Path, sources: dict[str, Path], edit: tuple[str, str, str] | None,
              **yaml_changes) -> Path:
    """A copy of a DUT file in ``tmp`` with its RTL copied (and one file mutated)."""
    d = tmp / "dut"
    (d / "rtl").mkdir(parents=True)
    for name, p in sources.items():
        shutil.copy(p, d / "rtl" / name)
    if edit is not None:
        fname, old, new = edit
        text = (d / "rtl" / fname).read_text()
        assert text.count(old) == 1, f"mutation anchor not found once in {fname}: {old!r}"
        (d / "rtl" / fname).write_text(text.replace(old, new))
    data = yaml.safe_load(src.read_text())
    data["sources"] = [f"rtl/{n}" for n in sources]
    for k, v in yaml_changes.items():
        data[k] = v
    for k in ("adapter",):
        if k in data and not data[k].startswith("t2c_sim."):
            data[k] = str(src.parent / data[k])
    if data.get("cycles", {}).get("model", "").endswith(".py:cycles") and \
            "cycles" not in yaml_changes:
        data["cycles"] = {"model": str(src.parent / data["cycles"]["model"])}
    out = d / "dut.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


T2C_SOURCES = {f"{m}.v": RTL_DIR / f"{m}.v" for m in ("t2c_ram", "t2c_nm_pe", "t2c_requant",
                                                       "t2c_pe_array", "t2c_accel_top")}
FRONT_SOURCES = {**T2C_SOURCES, **{f"{m}.v": RTL_DIR / f"{m}.v" for m in (
    "t2c_axi_burst", "t2c_axi_rd", "t2c_axi_wr", "t2c_axi_dma", "t2c_axil_regs", "t2c_axi_accel")}}
SWS_SOURCES = {p.name: p for p in sorted((SWS.parent / "rtl").glob("*.v"))}
AXI_SOURCES = {"axi_mac.v": AXI.parent / "rtl" / "axi_mac.v",
               "t2c_requant.v": RTL_DIR / "t2c_requant.v"}
CORRUPT = {  # DUT: (its file, its sources, the mutation: the output zero point is dropped)
    "t2c_accel": (DEFAULT_DUT_FILE, T2C_SOURCES,
                  ("t2c_requant.v", "sum_d  = r3_p + zy2_q;", "sum_d  = r3_p;")),
    "t2c_axi_accel": (FRONT, FRONT_SOURCES,
                      ("t2c_requant.v", "sum_d  = r3_p + zy2_q;", "sum_d  = r3_p;")),
    "sws": (SWS, SWS_SOURCES, ("sws_requant.v", "2'd0:    bias_d = half_d - $signed({{(R_BITS - 1)"
                               "{1'b0}}, !odd_d});", "2'd0:    bias_d = 0;")),
    "axi_mac": (AXI, AXI_SOURCES, ("axi_mac.v", "acc_q <= m_axi_rdata[ACC_BITS-1:0];",
                                   "acc_q <= {ACC_BITS{1'b0}};")),
}


@pytest.mark.parametrize("which", ["t2c_accel", "sws", "t2c_axi_accel",
                                   pytest.param("axi_mac", marks=pytest.mark.slow)])
def test_corrupted_dut_is_localized(which: str, recs_dir: Path, tmp_path: Path, capsys) -> None:
    src, sources, edit = CORRUPT[which]
    bad = _copy_dut(src, tmp_path, sources, edit)
    out = tmp_path / "out"
    rc, text = _run(["run", str(recs_dir), "--dut", str(bad), "--sim", "icarus", "--out",
                     str(out), "--layers", "fc"], capsys)
    assert rc == 1, text
    fails = [ln for ln in text.splitlines() if ln.startswith("FAIL ") and "[icarus]" in ln]
    assert fails, text
    assert all(" [icarus]: layer " in f and re.search(r"first at tile \d+, row \d+ \[[\d,]+\], "
                                                      r"channel \d+: expected -?\d+, got -?\d+", f)
               for f in fails), fails
    res = json.loads((out / "results.json").read_text())
    mm = next(o["mismatch"] for lr in res["layers"] for o in lr["sims"] if o["verdict"] == "fail")
    assert {"layer", "tile", "row", "channel", "expected", "actual"} <= set(mm)
    bundle = Path(next(o["repro"] for lr in res["layers"] for o in lr["sims"] if o["repro"]))
    assert json.loads((bundle / "dut.json").read_text())["file"] == str(bad)
    wave = json.loads((bundle / "bundle.json").read_text())["wave"]
    assert wave and (bundle / wave).stat().st_size > 0   # waves of just the failing unit
    rc, text = _run(["repro", str(bundle), "--no-waves"], capsys)
    assert rc == 1 and "STILL FAILS" in text, text
    rc, text = _run(["repro", str(bundle), "--no-waves", "--dut", str(src)], capsys)
    assert rc == 0 and "PASSES now" in text, text


# ------------------------------------------------------------------------------ cycle checks
OFF_MODEL = """import importlib.util, sys
spec = importlib.util.spec_from_file_location("vendor_model", {path!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
def cycles(layer, params):
    return m.cycles(layer, params) + 1
"""
OFF_ADAPTER = """from t2c_sim.cosim.accel import T2cAccelAdapter
class Off(T2cAccelAdapter):
    def schedule(self, gm, sel, base):
        return [(g, n, c + 1) for g, n, c in super().schedule(gm, sel, base)]
"""
OFF_FRONT = """from t2c_sim.cosim.axi_accel import T2cAxiAccelAdapter
class Off(T2cAxiAccelAdapter):
    def cycles(self, layer, params):
        return super().cycles(layer, params) + 1
"""


def _off_by_one(which: str, tmp: Path, exact: bool = True) -> Path:
    src, sources, _ = CORRUPT[which]
    if which in ("t2c_accel", "t2c_axi_accel"):
        (tmp / "off.py").write_text(OFF_ADAPTER if which == "t2c_accel" else OFF_FRONT)
        data = yaml.safe_load(src.read_text())
        data["adapter"] = str(tmp / "off.py") + ":Off"
        data["cycles"] = {"model": "adapter", "exact": exact}
        p = tmp / "dut.yaml"
        p.write_text(yaml.safe_dump(data, sort_keys=False))
        return p
    (tmp / "off.py").write_text(OFF_MODEL.format(path=str(src.parent / "cycle_model.py")))
    return _copy_dut(src, tmp, sources, None,
                     cycles={"model": str(tmp / "off.py") + ":cycles", "exact": exact})


@pytest.mark.parametrize("which", list(CORRUPT))
def test_cycle_model_off_by_one_fails_the_layer(which: str, tmp_path: Path) -> None:
    rec = _records()[0]
    dut = load_dut(_off_by_one(which, tmp_path)).bind(HwConfig())
    o = simulate(rec, HwConfig(), "icarus", build_root=BUILD, dut=dut)
    assert o.verdict == "fail", o
    assert o.mismatch["kind"] == "cycles" and o.mismatch["tile"] == 0
    assert o.mismatch["cycles_predicted"] == o.mismatch["cycles_measured"] + 1
    assert re.fullmatch(r"layer fc: cycles differ at tile 0: (\d+) measured, the DUT's cycle "
                        r"model predicts (\d+)( \(per run: .*\))?", o.message), o.message


def test_no_exact_model_is_reported_not_failed(tmp_path: Path) -> None:
    rec = _records()[0]
    dut = load_dut(_off_by_one("sws", tmp_path, exact=False)).bind()
    o = simulate(rec, HwConfig(), "icarus", build_root=BUILD, dut=dut)
    assert o.verdict == "pass" and o.cycles_model == o.cycles_measured + 1


def test_axi_access_outside_the_memory_is_an_error(tmp_path: Path) -> None:
    data = yaml.safe_load(AXI.read_text())
    data["interface"]["registers"] = [r if r["name"] != "YA" else {**r, "value": 0x7FFFFFF0}
                                      for r in data["interface"]["registers"]]
    p = _copy_dut(AXI, tmp_path, AXI_SOURCES, None, interface=data["interface"])
    with pytest.raises(SimulationError, match=r"layer fc job 0: the DUT's AXI4 burst at address "
                                              r"0x7ffffff0 broke the memory model's rules .*within "
                                              r"the model's 16384 bytes"):
        simulate(_records()[0], HwConfig(), "icarus", build_root=BUILD, dut=load_dut(p).bind())



REVERSED_LAYOUT = """import numpy as np

class Reversed:
    '''axi_mac with its operands placed by hand, last first, at 16-byte boundaries.'''

    def __init__(self, dut):
        self.dut = dut

    def axi_layout(self, op):
        def rows(a, eb, align):
            pitch = -(-a.shape[1] * eb // align) * align
            out = np.zeros((a.shape[0], pitch), np.uint8)
            b = (a.astype(np.int64) & ((1 << 8 * eb) - 1)).astype('<u4').view(np.uint8)
            out[:, :a.shape[1] * eb] = b.reshape(a.shape[0], -1, 4)[:, :, :eb].reshape(a.shape[0], -1)
            return out.reshape(-1), pitch
        parts = [("y", np.zeros((op.rows, op.cols), np.int64), 4), ("sh", op.sh[None], 4),
                 ("m0", op.m0[None], 4), ("bias", op.bias[None], 4), ("w", op.w, 1), ("x", op.x, 1)]
        img, regions = np.zeros(0, np.uint8), {}
        for name, a, eb in parts:
            data, pitch = rows(a, eb, 4)
            base = -(-len(img) // 16) * 16
            img = np.concatenate([img, np.zeros(base - len(img), np.uint8), data])
            regions[name] = (base, pitch, len(data))
        return img, regions

    def axi_unpack(self, op, region):
        return region.view('<i4').reshape(op.rows, -1)[:, :op.cols].astype(np.int64)
"""


def test_axi_adapter_places_operands_itself(tmp_path: Path) -> None:
    """The axi profile with an adapter's memory layout (a DMA reading packed words would need
    one): the registers follow the adapter's regions; exact outputs and cycles."""
    (tmp_path / "reversed.py").write_text(REVERSED_LAYOUT)
    data = yaml.safe_load(AXI.read_text())
    del data["interface"]["operands"]
    p = _copy_dut(AXI, tmp_path, AXI_SOURCES, None, interface=data["interface"],
                  adapter=str(tmp_path / "reversed.py") + ":Reversed")
    dut = load_dut(p).bind()
    rec = _records()[1]
    assert dut.adapter.axi_layout(gemm_ops(rec)[0][0])[1]["y"][0] == 0   # y first: not declared
    o = simulate(rec, HwConfig(), "icarus", build_root=BUILD, dut=dut)
    assert o.verdict == "pass", o.message
    assert o.cycles_measured == o.cycles_model
