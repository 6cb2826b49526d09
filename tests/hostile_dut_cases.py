"""The hostile-input battery's DUT tables (tests/test_hostile.py runs them with the others): DUT
files (``--dut``), ``--dut-param``, ``--backpressure``, the DUT keys of a suite and a repro
bundle's ``dut.json``.

Same contract as :mod:`hostile_cases`: exit code, ONE stderr line naming what the user wrote
(the DUT file, its key, the option), nothing written. The needles are the user's names, never a
message copied from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from hostile_cases import (
    BIG,
    BOMB,
    OK,
    USAGE,
    Case,
    Setup,
    _bundle,
    both,
    case,
    fifo,
    mkdir,
    write,
)

ROOT = Path(__file__).resolve().parents[1]
AXI_MAC = ROOT / "tests" / "duts" / "axi_mac"
RUN = "run {net} --sim none --out {out}"
SIM = "run {net} --sim icarus --out {out}"


def dut_text(**replace: str) -> str:
    """tests/duts/axi_mac/dut.yaml with absolute paths (valid anywhere), lines replaced by
    ``replace`` (``{old line start: new line}``)."""
    text = (AXI_MAC / "dut.yaml").read_text()
    text = text.replace("sources: [rtl/axi_mac.v,", f"sources: [{AXI_MAC / 'rtl' / 'axi_mac.v'},")
    text = text.replace("model: cycle_model.py:cycles", f"model: {AXI_MAC / 'cycle_model.py'}:cycles")
    lines = text.splitlines()
    for old, new in replace.items():
        hits = [i for i, ln in enumerate(lines) if ln.startswith(old)]
        assert len(hits) == 1, f"{old!r} is not one line of axi_mac/dut.yaml"
        lines[hits[0]] = new
    return "\n".join(lines) + "\n"


def dut_file(text: str | bytes, rel: str = "dut.yaml") -> Setup:
    return write(rel, text)


def dut_file_cases() -> list[Case]:
    k = "dut-file"
    D = RUN + " --dut {d}/dut.yaml"
    t: list[tuple[str, Setup | None, list[str], str]] = [
        ("missing", None, ["dut.yaml", "not found"], D),
        ("folder", mkdir("dut.yaml"), ["dut.yaml", "folder"], D),
        ("fifo", fifo("dut.yaml"), ["dut.yaml", "FIFO"], D),
        ("binary", dut_file(b"\x89PNG\r\n\x1a\n\x00"), ["dut.yaml", "UTF-8"], D),
        ("nul", dut_file(dut_text().encode() + b"\x00"), ["dut.yaml", "NUL"], D),
        ("empty", dut_file(""), ["dut.yaml", "mapping"], D),
        ("list", dut_file("- top\n- sources\n"), ["dut.yaml", "mapping"], D),
        ("syntax", dut_file("name: x\ntop: [y\n"), ["dut.yaml", "line", "YAML"], D),
        ("dup-key", dut_file(dut_text() + "top: other\n"), ["dut.yaml", "'top'", "duplicate"], D),
        ("alias-bomb", dut_file(BOMB), ["dut.yaml", "nodes"], D),
        ("recursive-alias", dut_file("a: &a [1, *a]\n"), ["dut.yaml", "recursive"], D),
        ("too-big", dut_file(BIG), ["dut.yaml", "1 MiB"], D),
        ("unknown-key", dut_file(dut_text() + "colour: red\n"), ["dut.yaml", "'colour'"], D),
        ("missing-top", dut_file(dut_text(**{"top:": "# no top"})), ["dut.yaml", "'top'"], D),
        ("top-not-ident", dut_file(dut_text(**{"top:": "top: axi mac"})),
         ["dut.yaml", "'top'"], D),
        ("source-missing", dut_file(dut_text(**{"sources:": "sources: [nowhere/*.v]"})),
         ["dut.yaml", "'sources[0]'", "nowhere/*.v"], D),
        ("source-not-verilog", both(write("notes.txt", "x"), dut_file(dut_text(
            **{"sources:": "sources: [notes.txt]"}))), ["dut.yaml", "'sources[0]'", "notes.txt"], D),
        ("param-unknown-name", dut_file(dut_text(**{"  MAX_K:": "  MAX_K: ROWS2 * 2"})),
         ["dut.yaml", "'parameters.MAX_K'", "ROWS2"], D),
        ("param-code", dut_file(dut_text(**{"  MAX_K:": "  MAX_K: __import__('os').getpid()"})),
         ["dut.yaml", "'parameters.MAX_K'"], D),
        ("param-float", dut_file(dut_text(**{"  MAX_K:": "  MAX_K: 2.5"})),
         ["dut.yaml", "'parameters.MAX_K'"], D),
        ("param-huge", dut_file(dut_text(**{"  MAX_K:": "  MAX_K: 2 ** 100000"})),
         ["dut.yaml", "'parameters.MAX_K'"], D),
        ("param-not-32-bit", dut_file(dut_text(**{"  MAX_K:": "  MAX_K: 1 << 40"})),
         ["dut.yaml", "'parameters.MAX_K'", "32-bit"], D),
        ("profile-unknown", dut_file(dut_text(**{"  profile:": "  profile: pcie"})),
         ["dut.yaml", "'interface.profile'", "pcie"], D),
        ("data-bits", dut_file(dut_text(**{"  memory:": "  memory: {prefix: m_axi, addr_bits: 32, "
                                                     "data_bits: 48, size: 262144,"})),
         ["dut.yaml", "'interface.memory.data_bits'"], D),
        ("register-expr", dut_file(dut_text(**{"    - {name: K,": "    - {name: K, addr: 0x0C, "
                                                                 "value: kk}"})),
         ["dut.yaml", "'interface.registers[1].value'", "kk"], D),
        ("accepts-unknown", dut_file(dut_text(**{"  nm:": "  nm: sparse-ish"})),
         ["dut.yaml", "'accepts.nm'"], D),
        ("adapter-missing", dut_file(dut_text() + "adapter: nowhere.py:Adapter\n"),
         ["dut.yaml", "'adapter'", "nowhere.py"], D),
        ("adapter-bad-ref", dut_file(dut_text() + "adapter: 'rm -rf /'\n"),
         ["dut.yaml", "'adapter'"], D),
        ("model-missing", dut_file(dut_text(**{"  model:": "  model: nowhere.py:cycles"})),
         ["dut.yaml", "'cycles.model'", "nowhere.py"], D),
        ("newline-key", dut_file(dut_text() + '"co\\nlour": 1\n'), ["dut.yaml", "co\\nlour"], D),
        ("builtin-unknown", None, ["t2c_axi_acel", "built-in"], RUN + " --dut t2c_axi_acel"),
    ]
    out = [case(f"dut-{n}", k, a, USAGE, needles, setup=s) for n, s, needles, a in t]
    # loaded only when the DUT is used (a simulator): still refused before anything is written
    broken = "raise RuntimeError('vendor packer missing')\n"
    init = "class A:\n    def __init__(self, dut):\n        raise ValueError('no licence')\n"
    for name, py, needles in (("adapter-import-error", broken, ["'adapter'", "RuntimeError"]),
                              ("adapter-init-error", init, ["'adapter'", "no licence"])):
        out.append(case(f"dut-{name}", k, SIM + " --dut {d}/dut.yaml", USAGE,
                        ["dut.yaml", *needles],
                        setup=both(write("a.py", py),
                                   dut_file(dut_text() + "adapter: a.py:A\n"))))
    out.append(case("dut-refuses-layer", k, SIM + " --dut {d}/dut.yaml", USAGE,
                    ["conv1", "axi_mac", "accepts.ops"],
                    setup=dut_file(dut_text(**{"  ops:": "  ops: [linear]"}))))
    out.append(case("dut-golden-only-valid", k, RUN + " --dut {d}/dut.yaml", OK,
                    setup=dut_file(dut_text()), out="complete"))
    return out


def dut_param_cases() -> list[Case]:
    k = "dut-param"
    t: list[tuple[str, str | list[str], list[str], str]] = [
        ("unknown", "--dut-param NOPE=1", ["--dut-param NOPE", "unknown"], RUN),
        ("not-int", "--dut-param ROWS=four", ["--dut-param ROWS", "'four'"], RUN),
        ("float", "--dut-param ROWS=4.0", ["--dut-param ROWS", "'4.0'"], RUN),
        ("no-equals", "--dut-param ROWS", ["--dut-param", "NAME=VALUE"], RUN),
        ("no-key", "--dut-param =4", ["--dut-param", "NAME=VALUE"], RUN),
        ("huge", "--dut-param ROWS=99999999999", ["--dut-param ROWS", "32-bit"], RUN),
        ("newline", ["--dut-param", "RO\nWS=4"], ["--dut-param RO\\nWS"], RUN),
        ("other-dut", "--dut {d}/dut.yaml --dut-param ROWS=4", ["--dut-param ROWS", "axi_mac"],
         RUN),
        # the array limits reach a parameter override of our accelerator too
        ("pes", "--dut-param ROWS=64 --dut-param COLS=64", ["--dut-param ROWS", "1024 PEs"], SIM),
        ("depth", "--dut-param ACT_DEPTH=1000000", ["--dut-param ACT_DEPTH", "65536"], SIM),
        ("zero", "--dut-param COLS=0", ["--dut-param COLS"], SIM),
        ("iface-width", ["--dut-param", "Y_BITS=" + "8"], ["--dut-param Y_BITS", "iface"], SIM),
        # our front door: its bus settings are checked against the memory the file declares
        ("front-data-w", "--dut t2c_axi_accel --dut-param DATA_W=128",
         ["--dut-param DATA_W", "data_bits"], SIM),
        ("front-burst", "--dut t2c_axi_accel --dut-param BURST_LEN=3",
         ["--dut-param BURST_LEN", "power of two"], SIM),
        ("front-outstanding", "--dut t2c_axi_accel --dut-param OUTSTANDING=99",
         ["--dut-param OUTSTANDING"], SIM),
    ]
    out = []
    for name, extra, needles, base in t:
        argv = base.split() + (extra.split() if isinstance(extra, str) else extra)
        out.append(case(f"dutp-{name}", k, argv, USAGE, needles,
                        setup=dut_file(dut_text()) if "{d}/dut.yaml" in extra else None))
    return out


def backpressure_cases() -> list[Case]:
    k = "backpressure"
    bad = [("text", "abc"), ("over-90", "100,0"), ("negative", "-5"), ("three", "1,2,3"),
           ("empty", ""), ("semicolon", "30;40"), ("nan", "nan"), ("float", "30.5,10")]
    return [case(f"bp-{n}", k, [*RUN.split(), "--backpressure", v], USAGE, ["--backpressure"])
            for n, v in bad]


SUITE_DUT = "name: s\nsims: none\n{extra}jobs: [{{random: linear, name: fc, params: " \
            "{{c_in: 16, c_out: 6, rows: 3}}{job}}}]\n"


def _suite(extra: str = "", job: str = "") -> Setup:
    return write("s.yaml", SUITE_DUT.format(extra=extra, job=job))


def suite_dut_cases() -> list[Case]:
    k = "suite-dut"
    R = "regress {d}/s.yaml --out {out}"
    t: list[tuple[str, Setup, list[str]]] = [
        ("dut-missing", _suite("dut: nowhere.yaml\n"), ["s.yaml", "'dut'"]),
        ("dut-number", _suite("dut: 7\n"), ["s.yaml", "'dut'"]),
        ("dut-bad-file", both(dut_file(dut_text() + "colour: red\n"), _suite("dut: dut.yaml\n")),
         ["dut.yaml", "'colour'"]),
        ("job-dut-missing", _suite(job=", dut: nowhere.yaml"), ["s.yaml", "'jobs[0].dut'"]),
        ("params-list", _suite("dut_params: [1, 2]\n"), ["s.yaml", "'dut_params'"]),
        ("params-float", _suite("dut_params: {ROWS: 2.5}\n"), ["s.yaml", "'dut_params'"]),
        ("params-unknown", _suite("dut_params: {NOPE: 2}\n"), ["NOPE"]),
        ("bp-over", _suite("backpressure: [120, 0]\n"), ["s.yaml", "'backpressure'"]),
        ("bp-text", _suite(job=", backpressure: lots"), ["s.yaml", "'jobs[0].backpressure'"]),
        ("dut-refuses-entry", both(dut_file(dut_text(**{"  ops:": "  ops: [conv2d]"})),
                                   write("s.yaml", SUITE_DUT.format(extra="dut: dut.yaml\n",
                                                                    job="").replace(
                                       "sims: none", "sims: icarus"))),
         ["s.yaml", "'jobs[0]'", "accepts.ops"]),
    ]
    return [case(f"suite-{n}", k, R, USAGE, needles, setup=s) for n, s, needles in t]


def _dut_json(obj: object) -> Setup:
    def edit(b: Path) -> None:
        (b / "dut.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return _bundle(edit)


def bundle_dut_cases() -> list[Case]:
    k = "bundle-dut"
    good = {"file": None, "name": "t2c_accel", "params": {}, "backpressure": [0, 0]}
    t: list[tuple[str, Setup, list[str]]] = [
        ("garbage", _dut_json("{oops"), ["dut.json", "JSON"]),
        ("list", _dut_json([1, 2]), ["dut.json", "object"]),
        ("file-number", _dut_json({**good, "file": 7}), ["dut.json", "'file'"]),
        ("params-str", _dut_json({**good, "params": "ROWS=4"}), ["dut.json", "'params'"]),
        ("params-bool", _dut_json({**good, "params": {"ROWS": True}}),
         ["dut.json", "'params.ROWS'"]),
        ("bp-one", _dut_json({**good, "backpressure": [30]}), ["dut.json", "'backpressure'"]),
        ("bp-over", _dut_json({**good, "backpressure": [95, 0]}), ["dut.json", "'backpressure'"]),
        ("file-gone", _dut_json({**good, "file": "/nonexistent/dut.yaml"}),
         ["/nonexistent/dut.yaml", "not found"]),
        ("param-unknown", _dut_json({**good, "params": {"NOPE": 1}}), ["NOPE", "unknown"]),
    ]
    return [case(f"bundle-dut-{n}", k, "repro {d}/b", USAGE, needles, setup=s)
            for n, s, needles in t]


DUT_TABLES = {"dut-file": dut_file_cases, "dut-param": dut_param_cases,
              "backpressure": backpressure_cases, "suite-dut": suite_dut_cases,
              "bundle-dut": bundle_dut_cases}
