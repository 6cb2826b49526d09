"""The hostile-input battery's tables (tests/test_hostile.py runs them): one :class:`Case` per
bad or edge input, grouped by input kind.

A case writes its files into a fresh folder ``d`` (``setup``), runs ``t2c-sim ARGV`` and states
what every promise of docs/cli.md means for it: the exit code, the words the ONE stderr line
must contain (the file, key, line, layer or option it names), and what the output folder looks
like afterwards (``absent``: nothing written, not even an empty folder; ``untouched``: an
existing folder byte for byte as it was; ``complete``: a full set of reports).

ARGV and needles may use ``{d}`` (the case's folder), ``{net}`` (a valid records folder,
``{d}/net``), ``{out}`` (``{d}/out``) and ``{json}`` (``{d}/est.json``).

The oracle is independent of the implementation: needles are the names the user wrote (a file,
a key, an option), never a message copied from the code.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OK, FAIL, USAGE, INFRA = 0, 1, 2, 3

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One hostile input and what must happen."""

    id: str
    kind: str
    argv: tuple[str, ...]
    code: int
    needles: tuple[str, ...] = ()
    setup: Setup | None = None
    out: str = "absent"          # absent | untouched | json (estimate's, complete)
    files: dict[str, str | bytes] = field(default_factory=dict)


def case(id: str, kind: str, argv: str | list[str], code: int, needles: list[str] | str = (),
         *, setup: Setup | None = None, out: str = "absent",
         files: dict[str, str | bytes] | None = None) -> Case:
    a = tuple(argv.split()) if isinstance(argv, str) else tuple(argv)
    n = (needles,) if isinstance(needles, str) else tuple(needles)
    return Case(id, kind, a, code, n, setup, out, dict(files or {}))


# ------------------------------------------------------------------------------ setups
STEMS = ["000_conv1", "001_pool", "002_conv2", "003_add", "004_gap", "005_flatten", "006_fc"]


def index(obj: object) -> Setup:
    """Replace ``{net}/network.json`` with ``obj`` (JSON) or raw bytes."""
    def f(d: Path) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        (d / "net" / "network.json").write_bytes(data)
    return f


def manifest(stem: str, edit: Callable[[dict], None] | bytes) -> Setup:
    """Edit the JSON manifest of record ``stem`` in ``{net}`` (or replace it with bytes)."""
    def f(d: Path) -> None:
        p = d / "net" / f"{stem}.json"
        if isinstance(edit, bytes):
            p.write_bytes(edit)
            return
        m = json.loads(p.read_text())
        edit(m)
        p.write_text(json.dumps(m))
    return f


def rec(**fields: object) -> Callable[[dict], None]:
    def edit(m: dict) -> None:
        m["record"].update(fields)
    return edit


def npz(stem: str, data: bytes | Callable[[], bytes]) -> Setup:
    def f(d: Path) -> None:
        (d / "net" / f"{stem}.npz").write_bytes(data if isinstance(data, bytes) else data())
    return f


def npz_bomb() -> bytes:
    """A zip whose ``w_q.npy`` header claims 2^40 int64 values (8 TiB) but holds none."""
    buf = io.BytesIO()
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<i8", "fortran_order": False,
                                               "shape": (1 << 20, 1 << 20)})
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("w_q.npy", b"\x93NUMPY\x01\x00" + hdr.getvalue()[8:])
    return buf.getvalue()


def npz_floats() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, w_q=np.full((4, 27), 0.5))
    return buf.getvalue()


def write(rel: str, data: str | bytes) -> Setup:
    def f(d: Path) -> None:
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return f


def mkdir(rel: str) -> Setup:
    return lambda d: (d / rel).mkdir(parents=True, exist_ok=True)


def fifo(rel: str) -> Setup:
    return lambda d: os.mkfifo(d / rel)


def symlink(rel: str, target: str) -> Setup:
    def f(d: Path) -> None:
        (d / target).write_text("precious\n")
        os.symlink(d / target, d / rel)
    return f


def both(*fs: Setup) -> Setup:
    def f(d: Path) -> None:
        for g in fs:
            g(d)
    return f


def old_out(d: Path) -> None:
    """An existing results folder whose content must survive a refused command."""
    (d / "out").mkdir()
    (d / "out" / "results.json").write_text('{"title": "older run"}\n')
    (d / "out" / "keep.txt").write_text("keep me\n")


# ------------------------------------------------------------------------------- inputs
HW_OK = "rows: 4\ncols: 4\nn: 2\nm: 4\n"
BOMB = ("a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n")
RECIPE = "model: mlp\nmodel_args: {hidden: 16}\ndataset: digits\ntrain: {epochs: 1, lr: 0.01}\n"
JOB = "jobs: [{random: linear, name: fc, params: {c_in: 16, c_out: 6, rows: 3}}]\n"
SUITE = "name: s\nsims: none\n" + JOB
GEMM = "Layer Name, M, N, K,\n"
CONV = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n")
BIG = "#" * ((1 << 20) + 10) + "\n"

RUN = "run {net} --sim none --out {out}"
EST = "estimate {net} --json {json}"


def hw_cases() -> list[Case]:
    k = "hw-file"
    run_hw = RUN + " --hw {d}/hw.yaml"
    t = [
        ("missing", "", ["hw.yaml", "not found"], None),
        ("folder", None, ["hw.yaml", "folder"], mkdir("hw.yaml")),
        ("fifo", None, ["hw.yaml", "FIFO"], fifo("hw.yaml")),
        ("binary", b"\xff\xfe\x00\x01garbage", ["hw.yaml", "UTF-8"], None),
        ("latin1", "rows: 4 # caf\xe9\n".encode("latin-1"), ["hw.yaml", "line 1", "UTF-8"], None),
        ("nul", b"rows: 4\n\x00\n", ["hw.yaml", "line 2", "NUL"], None),
        ("list", "- 4\n- 4\n", ["hw.yaml", "mapping"], None),
        ("scalar", "4x4\n", ["hw.yaml", "mapping"], None),
        ("syntax", "rows: [4\ncols: 4\n", ["hw.yaml", "line", "YAML"], None),
        ("unknown-key", "rows: 4\ncolz: 4\n", ["hw.yaml", "'colz'"], None),
        ("dup-key", "rows: 4\ncols: 4\nrows: 8\n", ["hw.yaml", "line 3", "'rows'", "duplicate"],
         None),
        ("zero", "rows: 0\n", ["hw.yaml", "'rows'"], None),
        ("negative", "cols: -2\n", ["hw.yaml", "'cols'"], None),
        ("float", "rows: 4.0\n", ["hw.yaml", "'rows'"], None),
        ("string", "rows: '4'\n", ["hw.yaml", "'rows'"], None),
        ("bool", "rows: true\n", ["hw.yaml", "'rows'"], None),
        ("nan", "rows: .nan\n", ["hw.yaml", "'rows'"], None),
        ("inf", "act_depth: .inf\n", ["hw.yaml", "'act_depth'"], None),
        ("n-gt-m", "n: 5\nm: 4\n", ["hw.yaml", "'nm'"], None),
        ("m-huge", "n: 1\nm: 1024\n", ["hw.yaml", "'nm'", "256"], None),
        ("huge-rows", "rows: 100000\n", ["hw.yaml", "'rows'", "65536"], None),
        ("huge-depth", "w_depth: 1000000000\n", ["hw.yaml", "'w_depth'", "2^24"], None),
        ("alias-bomb", BOMB, ["hw.yaml", "nodes"], None),
        ("recursive-alias", "a: &a [1, *a]\n", ["hw.yaml", "recursive"], None),
        ("nested-deep", "[" * 2000, ["hw.yaml"], None),
        ("too-big", BIG, ["hw.yaml", "1 MiB"], None),
        ("newline-key", '"co\\nls": 4\n', ["hw.yaml", "co\\nls"], None),
        ("escape-key", '"\\e[31mred": 4\n', ["hw.yaml", "\\x1b[31mred"], None),
    ]
    out = []
    for name, text, needles, setup in t:
        s = setup if setup is not None else (write("hw.yaml", text) if text else None)
        out.append(case(f"hw-{name}", k, run_hw, USAGE, needles, setup=s))
    # the simulation limits are checked before any tool lookup or build
    out.append(case("hw-sim-too-many-pes", k,
                    "run {net} --sim icarus --out {out} --hw {d}/hw.yaml", USAGE,
                    ["hw.yaml", "64x64", "1024 PEs"], setup=write("hw.yaml", "rows: 64\ncols: 64\n")))
    out.append(case("hw-sim-too-deep", k,
                    "run {net} --sim verilator --out {out} --hw {d}/hw.yaml", USAGE,
                    ["hw.yaml", "'act_depth'", "65536"],
                    setup=write("hw.yaml", "act_depth: 1000000\n")))
    out.append(case("hw-estimate-any-size", k, EST + " --hw {d}/hw.yaml", OK,
                    setup=write("hw.yaml", "rows: 64\ncols: 64\n"), out="json"))
    return out


def hw_param_cases() -> list[Case]:
    k = "hw-param"
    t = [
        ("zero-with-file", "--hw {d}/hw.yaml --hw-param rows=0", ["--hw-param rows"], "hw.yaml"),
        ("zero", "--hw-param rows=0", ["--hw-param rows"], None),
        ("not-int", "--hw-param rows=four", ["--hw-param rows", "'four'"], None),
        ("float", "--hw-param rows=1e3", ["--hw-param rows", "1e3"], None),
        ("empty-value", "--hw-param rows=", ["--hw-param rows"], None),
        ("no-equals", "--hw-param rows", ["--hw-param", "key=value"], None),
        ("no-key", "--hw-param =4", ["--hw-param", "key=value"], None),
        ("unknown", "--hw-param colz=4", ["--hw-param colz", "unknown"], None),
        ("unknown-with-file", "--hw {d}/hw.yaml --hw-param colz=4", ["--hw-param colz"], "hw.yaml"),
        ("n-gt-m", "--hw-param n=5 --hw-param m=4", ["--hw-param"], None),
        ("huge", "--hw-param rows=99999999999999999999", ["--hw-param rows"], None),
        ("depth", "--hw-param act_depth=1073741824", ["--hw-param act_depth", "2^24"], None),
        ("bits", "--hw-param a_bits=99", ["--hw-param a_bits"], None),
        ("newline", ["--hw-param", "ro\nws=4"], ["--hw-param ro\\nws"], None),
    ]
    out = []
    for name, extra, needles, hwfile in t:
        argv = RUN.split() + (extra.split() if isinstance(extra, str) else extra)
        s = write("hw.yaml", HW_OK) if hwfile else None
        out.append(case(f"hwp-{name}", k, argv, USAGE, needles, setup=s))
        if hwfile:  # the file is fine: the message must not blame it
            out[-1] = Case(out[-1].id, k, out[-1].argv, USAGE, out[-1].needles, s, "absent",
                           {"__not__": "hw.yaml"})
    out.append(case("hwp-sim-pes", k, "run {net} --sim icarus --out {out} --hw-param rows=64 "
                    "--hw-param cols=64", USAGE, ["--hw-param", "1024 PEs"]))
    out.append(case("hwp-estimate-big-array", k, EST + " --hw-param rows=256 --hw-param cols=256",
                    OK, out="json"))
    return out


def recipe_cases() -> list[Case]:
    k = "recipe"
    R = "run {d}/r.yaml --sim none --out {out}"
    t = [
        ("missing", None, ["r.yaml", "not found"], None),
        ("folder", None, ["r.yaml", "folder"], mkdir("r.yaml")),
        ("fifo", None, ["r.yaml", "FIFO"], fifo("r.yaml")),
        ("binary", b"\x89PNG\r\n\x1a\n\x00\x00", ["r.yaml", "UTF-8"], None),
        ("utf16", RECIPE.encode("utf-16"), ["r.yaml", "UTF-8"], None),
        ("nul", RECIPE.encode() + b"\x00", ["r.yaml", "NUL"], None),
        ("empty", "", ["r.yaml", "empty"], None),
        ("list", "- model: mlp\n", ["r.yaml", "mapping"], None),
        ("syntax", "model: mlp\ntrain: {lr: 0.1\n", ["r.yaml", "YAML"], None),
        ("dup-top", RECIPE + "model: digits_cnn\n", ["r.yaml", "line 5", "'model'", "duplicate"],
         None),
        ("dup-nested", "model: mlp\ntrain:\n  lr: 0.1\n  lr: 0.2\n",
         ["r.yaml", "line 4", "'lr'", "duplicate"], None),
        ("unknown-top", RECIPE + "modle: mlp\n", ["r.yaml", "'modle'"], None),
        ("unknown-nested", "model: mlp\ntrain: {epoch: 3}\n", ["r.yaml", "'train.epoch'"], None),
        ("no-model", "train: {epochs: 1}\n", ["r.yaml", "'model'"], None),
        ("unknown-model", "model: gpt5\n", ["r.yaml", "'model'", "gpt5"], None),
        ("model-args-type", "model: mlp\nmodel_args: {hidden: big}\n",
         ["r.yaml", "'model_args.hidden'"], None),
        ("model-args-unknown", "model: mlp\nmodel_args: {hiden: 8}\n", ["r.yaml", "model_args"],
         None),
        ("lr-nan", "model: mlp\ntrain: {lr: .nan}\n", ["r.yaml", "'train.lr'", "finite"], None),
        ("lr-inf", "model: mlp\ntrain: {lr: .inf}\n", ["r.yaml", "'train.lr'", "finite"], None),
        ("lr-negative", "model: mlp\ntrain: {lr: -0.1}\n", ["r.yaml", "'train.lr'"], None),
        ("qat-lr-nan", "model: mlp\nqat: {epochs: 1, lr: .NaN}\n", ["r.yaml", "'qat.lr'"], None),
        ("epochs-float", "model: mlp\ntrain: {epochs: 1.5}\n", ["r.yaml", "'train.epochs'"], None),
        ("batch-zero", "model: mlp\ntrain: {batch: 0}\n", ["r.yaml", "'train.batch'"], None),
        ("seed-string", "model: mlp\nseed: abc\n", ["r.yaml", "'seed'"], None),
        ("smooth-alpha-nan", "model: transformer_mlp\nquant:\n  smoothquant: {alpha: .nan, "
         "layers: [fc1]}\n", ["r.yaml", "'quant.smoothquant.alpha'"], None),
        ("smooth-alpha-big", "model: transformer_mlp\nquant:\n  smoothquant: {alpha: 2.0, "
         "layers: [fc1]}\n", ["r.yaml", "'quant.smoothquant.alpha'"], None),
        ("smooth-unknown-layer", "model: mlp\nquant:\n  smoothquant: {alpha: 0.5, "
         "layers: [nosuch]}\n", ["r.yaml", "'quant.smoothquant.layers'", "nosuch"], None),
        ("override-unknown-module", "model: mlp\nquant:\n  overrides:\n    fc9: {weight: "
         "{quantizer: minmax, nbit: 4}}\n", ["r.yaml", "'quant.overrides.fc9'", "fc9"], None),
        ("skip-unknown-module", "model: mlp\nsparsity: {nm: '2:4', skip: [conv7]}\n",
         ["r.yaml", "'sparsity.skip'", "conv7"], None),
        ("quantizer-kwarg-nan", "model: mlp\nquant:\n  weight: {quantizer: minmax_channel, "
         "nbit: 8, eps: .nan}\n", ["r.yaml", "quant.weight"], None),
        ("nm-bad", "model: mlp\nsparsity: {nm: 2-4}\n", ["r.yaml", "'sparsity.nm'"], None),
        ("nm-n-gt-m", "model: mlp\nsparsity: {nm: '5:4'}\n", ["r.yaml", "'sparsity.nm'"], None),
        ("alias-bomb", "model: mlp\n" + BOMB.replace("a:", "x1:").replace("b:", "x2:"),
         ["r.yaml"], None),
        ("alias-bomb-in-value", "model: mlp\nmodel_args:\n" + "".join(
            "  " + ln + "\n" for ln in BOMB.splitlines()), ["r.yaml", "nodes"], None),
        ("too-big", "model: mlp\n" + BIG, ["r.yaml", "1 MiB"], None),
        ("newline-key", 'model: mlp\n"tr\\nain": {}\n', ["r.yaml", "tr\\nain"], None),
    ]
    out = []
    for name, text, needles, setup in t:
        s = setup if setup is not None else (write("r.yaml", text) if text is not None else None)
        out.append(case(f"recipe-{name}", k, R, USAGE, needles, setup=s))
    return out


def records_cases() -> list[Case]:
    k = "records"
    t: list[tuple[str, Setup, list[str]]] = [
        ("no-index", lambda d: (d / "net" / "network.json").unlink(),
         ["net", "not a recipe"]),
        ("index-binary", index(b"\xff\x00\x13"), ["network.json", "UTF-8"]),
        ("index-not-json", index(b"{layers: [}"), ["network.json", "JSON"]),
        ("index-list", index(["000_conv1"]), ["network.json"]),
        ("index-format", index({"format": "other", "layers": STEMS}),
         ["network.json", "'format'"]),
        ("index-layers-string", index({"layers": "000_conv1"}), ["network.json", "'layers'"]),
        ("zero-layers", index({"format": "t2c-sim-network", "layers": []}),
         ["network.json", "'layers'", "no layers"]),
        ("dotdot-entry", index({"layers": ["../outside/000_conv1"]}),
         ["network.json", "'layers[0]'", "../outside"]),
        ("absolute-entry", index({"layers": ["/etc/passwd"]}),
         ["network.json", "'layers[0]'", "/etc/passwd"]),
        ("slash-entry", index({"layers": STEMS[:1] + ["sub/x"]}), ["network.json", "'layers[1]'"]),
        ("entry-not-string", index({"layers": [7]}), ["network.json", "'layers[0]'"]),
        ("entry-missing", index({"layers": ["999_ghost"]}), ["999_ghost.json", "not found"]),
        ("dup-layer-names", both(index({"layers": ["000_conv1", "002_conv2"]}),
                                 manifest("002_conv2", rec(name="conv1"))),
         ["network.json", "'conv1'", "unique"]),
        ("manifest-binary", manifest("000_conv1", b"\x00\x01\x02\xff"),
         ["000_conv1.json", "UTF-8"]),
        ("manifest-not-json", manifest("000_conv1", b"{\"format\": "), ["000_conv1.json", "JSON"]),
        ("manifest-format", manifest("000_conv1", lambda m: m.update(format="x")),
         ["000_conv1.json", "'format'"]),
        ("manifest-version", manifest("000_conv1", lambda m: m.update(version=99)),
         ["000_conv1.json", "'version'"]),
        ("unknown-field", manifest("000_conv1", rec(colour="red")),
         ["000_conv1.json", "'record.colour'"]),
        ("c-out-float", manifest("000_conv1", rec(c_out=1e12)),
         ["000_conv1.json", "'record.c_out'"]),
        ("c-out-huge", manifest("006_fc", rec(c_out=10 ** 12)),
         ["006_fc.json", "'record.c_out'", "2^24"]),
        ("c-in-nan", manifest("000_conv1", lambda m: m["record"].update(c_in=float("nan"))),
         ["000_conv1.json", "'record.c_in'"]),
        ("kh-zero", manifest("000_conv1", rec(kh=0)), ["000_conv1.json", "'record.kh'"]),
        ("stride-triple", manifest("000_conv1", rec(stride=[1, 1, 1])),
         ["000_conv1.json", "'record.stride'"]),
        ("op-unknown", manifest("000_conv1", rec(op="deconv")), ["000_conv1.json", "deconv"]),
        ("name-empty", manifest("000_conv1", rec(name="")), ["000_conv1.json", "'record.name'"]),
        ("name-newline", manifest("000_conv1", rec(name="conv\n1", kh=0)),
         ["000_conv1.json", "conv\\n1"]),
        ("name-escape", manifest("000_conv1", rec(name="\x1b[2Jconv", kh=0)),
         ["000_conv1.json", "\\x1b[2Jconv"]),
        ("npz-missing", lambda d: (d / "net" / "000_conv1.npz").unlink(),
         ["000_conv1.npz", "not found"]),
        ("npz-garbage", npz("000_conv1", b"PK\x03\x04 not really a zip"), ["000_conv1.npz"]),
        ("npz-bomb", npz("000_conv1", npz_bomb), ["000_conv1.npz", "integers"]),
        ("npz-floats", npz("000_conv1", npz_floats), ["000_conv1.npz", "float64"]),
        ("npz-swapped", lambda d: shutil.copy(d / "net" / "006_fc.npz", d / "net" / "000_conv1.npz"),
         ["000_conv1", "manifest"]),
        ("nm-broken", manifest("000_conv1", rec(n=1, m=4)), ["000_conv1.json", "conv1"]),
        ("clamp-inverted", manifest("006_fc", rec(lo=10, hi=-10)), ["006_fc.json", "'fc'"]),
        ("m-huge", manifest("000_conv1", rec(m=4096)), ["000_conv1.json", "'record.m'"]),
    ]
    out = [case(f"records-{name}", k, RUN, USAGE, needles, setup=s) for name, s, needles in t]
    out.append(case("records-single-missing", k, "run {d}/nothing --sim none --out {out}", USAGE,
                    ["nothing", "not found"]))
    out.append(case("records-estimate-nm-broken", k, EST, USAGE, ["000_conv1.json"],
                    setup=manifest("000_conv1", rec(n=1, m=4))))
    return out


def suite_cases() -> list[Case]:
    k = "suite"
    G = "regress {d}/s.yaml --out {out} -j 1"
    t: list[tuple[str, str | bytes | None, list[str], Setup | None]] = [
        ("missing", None, ["s.yaml", "not found"], None),
        ("folder", None, ["s.yaml", "folder"], mkdir("s.yaml")),
        ("binary", b"\xde\xad\xbe\xef\x00", ["s.yaml", "UTF-8"], None),
        ("nul", SUITE.encode() + b"\x00", ["s.yaml", "NUL"], None),
        ("dup-key", SUITE + "sims: icarus\n", ["s.yaml", "'sims'", "duplicate"], None),
        ("dup-job-key", "name: s\nsims: none\njobs:\n  - random: linear\n    random: conv\n",
         ["s.yaml", "'random'", "duplicate"], None),
        ("unknown-job-key", "name: s\nsims: none\njobs: [{random: linear, colour: red}]\n",
         ["s.yaml", "'jobs[0].colour'"], None),
        ("recipe-job-unknown-key", "name: s\nsims: none\njobs: [{recipe: r.yaml, colour: red}]\n",
         ["s.yaml", "'jobs[0].colour'"], write("r.yaml", RECIPE)),
        ("recipe-with-unknown-key", "name: s\nsims: none\njobs: [{recipe: r.yaml}]\n",
         ["r.yaml", "'modle'"], write("r.yaml", RECIPE + "modle: x\n")),
        ("recipe-with-nan", "name: s\nsims: none\njobs: [{recipe: r.yaml}]\n",
         ["r.yaml", "'train.lr'"], write("r.yaml", "model: mlp\ntrain: {lr: .nan}\n")),
        ("recipe-binary", "name: s\nsims: none\njobs: [{recipe: r.yaml}]\n",
         ["r.yaml", "UTF-8"], write("r.yaml", b"\xff\xfe")),
        ("recipe-not-string", "name: s\nsims: none\njobs: [{recipe: 5}]\n",
         ["s.yaml", "'jobs[0].recipe'"], None),
        ("dup-job-names", "name: s\nsims: none\njobs:\n  - {random: linear, name: a}\n"
         "  - {random: conv, name: a}\n", ["s.yaml", "'jobs[1].name'", "'a'"], None),
        ("sims-empty-string", "name: s\nsims: ''\n" + JOB, ["s.yaml", "'sims'"], None),
        ("sims-empty-list", "name: s\nsims: []\n" + JOB, ["s.yaml", "'sims'"], None),
        ("sims-trailing-comma", "name: s\nsims: 'icarus,'\n" + JOB, ["s.yaml", "'sims'"], None),
        ("seeds-empty", "name: s\nsims: none\nseeds: []\n" + JOB, ["s.yaml", "'seeds'"], None),
        ("seeds-string", "name: s\nsims: none\nseeds: one\n" + JOB, ["s.yaml", "'seeds'"], None),
        ("timeout-inf", "name: s\nsims: none\ntimeout_s: .inf\n" + JOB, ["s.yaml", "'timeout_s'"],
         None),
        ("timeout-nan", "name: s\nsims: none\ntimeout_s: .nan\n" + JOB, ["s.yaml", "'timeout_s'"],
         None),
        ("hw-empty", "name: s\nsims: none\nhw: []\n" + JOB, ["s.yaml", "'hw'"], None),
        ("hw-huge-inline", "name: s\nsims: none\nhw: [{rows: 1000000}]\n" + JOB,
         ["s.yaml", "'hw[0].rows'"], None),
        ("hw-sim-pes", "name: s\nsims: icarus\nhw: [{rows: 64, cols: 64}]\n" + JOB,
         ["s.yaml", "hw[0]", "1024 PEs"], None),
        ("hw-file-sim-pes", "name: s\nsims: verilator\nhw: [big.yaml]\n" + JOB,
         ["big.yaml", "1024 PEs"], write("big.yaml", "rows: 64\ncols: 32\n")),
        ("random-huge", "name: s\nsims: none\njobs: [{random: linear, params: {c_in: 100000, "
         "c_out: 100000, rows: 1000}}]\n", ["s.yaml", "'jobs[0].params'", "2^26"], None),
        ("random-kind", "name: s\nsims: none\njobs: [{random: lstm}]\n",
         ["s.yaml", "'jobs[0].random'", "lstm"], None),
        ("jobs-empty", "name: s\nsims: none\njobs: []\n", ["s.yaml", "'jobs'"], None),
        ("name-newline", 'name: "a\\nb"\nsims: none\n' + JOB, ["s.yaml", "a\\nb"], None),
        ("name-slash", "name: ../up\nsims: none\n" + JOB, ["s.yaml", "'name'"], None),
        ("alias-bomb", SUITE + BOMB.replace("a:", "x1:"), ["s.yaml"], None),
        ("syntax", "name: s\njobs: [\n", ["s.yaml", "line 3", "YAML"], None),
        ("too-big", SUITE + BIG, ["s.yaml", "1 MiB"], None),
    ]
    out = []
    for name, text, needles, setup in t:
        s = write("s.yaml", text) if text is not None else None
        if setup is not None:
            s = both(setup, s) if s is not None else setup
        out.append(case(f"suite-{name}", k, G, USAGE, needles, setup=s))
    return out


def csv_cases() -> list[Case]:
    k = "scalesim-csv"
    E = "estimate {d}/t.csv --json {json}"
    t: list[tuple[str, str | bytes | None, list[str], Setup | None]] = [
        ("missing", None, ["t.csv", "not found"], None),
        ("folder", None, ["t.csv", "folder"], mkdir("t.csv")),
        ("fifo", None, ["t.csv", "FIFO"], fifo("t.csv")),
        ("binary", b"\xff\xd8\xff\xe0\x00\x10JFIF", ["t.csv", "UTF-8"], None),
        ("nul", (GEMM + "fc, 8, 8, 64,\x00\n").encode(), ["t.csv", "line 2", "NUL"], None),
        ("empty", "", ["t.csv", "empty"], None),
        ("header-only", GEMM, ["t.csv", "no layers"], None),
        ("gemm-n-huge", GEMM + "fc, 8, 1000000000000, 64,\n", ["t.csv", "line 2", "2^24"], None),
        ("gemm-mk-huge", GEMM + "fc, 16000000, 8, 16000000,\n", ["t.csv", "line 2", "M x K"],
         None),
        ("gemm-passes", GEMM + "fc, 16000000, 16000000, 4,\n", ["fc", "passes", "4x4"], None),
        ("conv-huge", CONV + "c1, 100000000, 10, 3, 3, 4, 8, 1,\n", ["t.csv", "line 2", "2^24"],
         None),
        ("not-int", GEMM + "fc, 8, eight, 64,\n", ["t.csv", "line 2", "integers"], None),
        ("underscore-int", GEMM + "fc, 1_000, 8, 64,\n", ["t.csv", "line 2", "integers"], None),
        ("negative", GEMM + "fc, -8, 8, 64,\n", ["t.csv", "line 2", ">= 1"], None),
        ("columns", GEMM + "fc, 8, 8,\n", ["t.csv", "line 2", "M, N, K"], None),
        ("sparsity-bad", CONV.replace("Strides,", "Strides, Sparsity,") +
         "c1, 10, 10, 3, 3, 4, 8, 1, 5:4,\n", ["t.csv", "line 2"], None),
        ("k-too-long", GEMM + "fc, 8, 8, 2000000,\n", ["fc", "K"], None),
        ("too-big", GEMM + "#" * ((1 << 20) + 5), ["t.csv", "1 MiB"], None),
    ]
    out = []
    for name, text, needles, setup in t:
        s = setup if setup is not None else (write("t.csv", text) if text is not None else None)
        out.append(case(f"csv-{name}", k, E, USAGE, needles, setup=s))
    return out


def _bundle(edit: Callable[[Path], None]) -> Setup:
    """A valid repro bundle ``{d}/b`` (from record 006_fc of the net), then ``edit(folder)``."""
    def f(d: Path) -> None:
        b = d / "b"
        b.mkdir()
        for ext in (".json", ".npz"):
            shutil.copy(d / "net" / f"006_fc{ext}", b / f"record{ext}")
        (b / "hw.yaml").write_text(HW_OK.replace("n: 2\nm: 4", "n: 1\nm: 1"))
        (b / "bundle.json").write_text(json.dumps({
            "format": "t2c-sim-repro", "version": 1, "layer": "fc", "sim": "icarus", "seed": 0,
            "tile": 0, "mismatch": {"message": "x"}, "command": "t2c-sim run x", "wave": None}))
        edit(b)
    return f


def _meta(**kv: object) -> Callable[[Path], None]:
    def edit(b: Path) -> None:
        m = json.loads((b / "bundle.json").read_text())
        m.update(kv)
        (b / "bundle.json").write_text(json.dumps(m))
    return edit


def _broken_nm(b: Path) -> None:
    """The bundle's record claims 1:4 but its weights are dense."""
    p = b / "record.json"
    m = json.loads(p.read_text())
    m["record"].update(n=1, m=4)
    p.write_text(json.dumps(m))


def bundle_cases() -> list[Case]:
    k = "bundle"
    P = "repro {d}/b"
    t: list[tuple[str, Setup | None, list[str]]] = [
        ("missing", None, ["bundle.json", "not found"]),
        ("json-binary", _bundle(lambda b: (b / "bundle.json").write_bytes(b"\xff\xfe\xfd")),
         ["bundle.json", "UTF-8"]),
        ("json-garbage", _bundle(lambda b: (b / "bundle.json").write_text("{oops")),
         ["bundle.json", "JSON"]),
        ("json-fifo", _bundle(lambda b: ((b / "bundle.json").unlink(), os.mkfifo(b / "bundle.json"))),
         ["bundle.json", "FIFO"]),
        ("format", _bundle(_meta(format="zip")), ["bundle.json", "'format'"]),
        ("sim", _bundle(_meta(sim="modelsim")), ["bundle.json", "'sim'", "modelsim"]),
        ("seed", _bundle(_meta(seed="zero")), ["bundle.json", "'seed'"]),
        ("tile", _bundle(_meta(tile=-1)), ["bundle.json", "'tile'"]),
        ("mismatch", _bundle(_meta(mismatch=[1, 2])), ["bundle.json", "'mismatch'"]),
        ("wave-escape", _bundle(_meta(wave="../../etc/passwd")), ["bundle.json", "'wave'"]),
        ("record-missing", _bundle(lambda b: (b / "record.npz").unlink()),
         ["record.npz", "not found"]),
        ("record-broken-nm", _bundle(_broken_nm), ["record.json", "fc w_q", "1:4"]),
        ("hw-bad-key", _bundle(lambda b: (b / "hw.yaml").write_text("rowz: 4\n")),
         ["hw.yaml", "'rowz'"]),
        ("hw-binary", _bundle(lambda b: (b / "hw.yaml").write_bytes(b"\x00\xff")),
         ["hw.yaml"]),
    ]
    out = [case(f"bundle-{n}", k, P, USAGE, needles, setup=s) for n, s, needles in t]
    for name, sim, needles in (("unknown", "modelsim", ["modelsim"]), ("none", "none", ["--sim"]),
                               ("both", "both", ["--sim", "both"]), ("empty", "", ["sim"])):
        out.append(case(f"bundle-sim-{name}", k, ["repro", "{d}/b", "--sim", sim], USAGE, needles,
                        setup=_bundle(lambda b: None)))
    out.append(case("bundle-build-root-under-file", k, "repro {d}/b --build-root {d}/f/bs", USAGE,
                    ["--build-root", "f/bs"], setup=both(_bundle(lambda b: None), write("f", "x"))))
    return out


def option_cases() -> list[Case]:
    k = "cli-option"
    t: list[tuple[str, str | list[str], int, list[str], Setup | None, str]] = [
        ("run-sim-empty", ["run", "{net}", "--sim", "", "--out", "{out}"], USAGE, ["sim"], None,
         "absent"),
        ("run-sim-comma", "run {net} --sim icarus, --out {out}", USAGE, ["sim"], None, "absent"),
        ("run-sim-unknown", "run {net} --sim modelsim --out {out}", USAGE, ["modelsim"], None,
         "absent"),
        ("run-layers-comma", "run {net} --sim none --layers , --out {out}", USAGE, ["--layers"],
         None, "absent"),
        ("run-layers-empty-item", "run {net} --sim none --layers fc,,conv1 --out {out}", USAGE,
         ["--layers"], None, "absent"),
        ("run-layers-pool", "run {net} --sim none --layers pool --out {out}", USAGE,
         ["--layers", "'pool'", "maxpool"], None, "absent"),
        ("run-layers-unknown", "run {net} --sim none --layers fc9 --out {out}", USAGE,
         ["--layers", "fc9"], None, "absent"),
        ("run-timeout-zero", "run {net} --sim none --timeout 0 --out {out}", USAGE,
         ["--timeout"], None, "absent"),
        ("run-timeout-inf", "run {net} --sim none --timeout inf --out {out}", USAGE,
         ["--timeout"], None, "absent"),
        ("run-timeout-nan", "run {net} --sim none --timeout nan --out {out}", USAGE,
         ["--timeout"], None, "absent"),
        ("run-seed-text", "run {net} --sim none --seed x --out {out}", USAGE, ["--seed"], None,
         "absent"),
        ("run-no-source", "run --sim none", USAGE, ["RECIPE.yaml|RECORDS_DIR"], None, "absent"),
        ("run-out-is-file", "run {net} --sim none --out {d}/f", USAGE, ["--out", "f"],
         write("f", "x"), "absent"),
        ("run-out-under-file", "run {net} --sim none --out {d}/f/sub", USAGE, ["--out", "f/sub"],
         write("f", "x"), "absent"),
        ("run-out-fifo", "run {net} --sim none --out {d}/p", USAGE, ["--out", "FIFO"],
         fifo("p"), "absent"),
        ("run-bad-source-kind", "run {d}/x.txt --sim none --out {out}", USAGE, ["x.txt"],
         write("x.txt", "hi"), "absent"),
        ("run-build-root-under-file", "run {net} --sim icarus --build-root {d}/f/bs --out {out}",
         USAGE, ["--build-root", "f/bs"], write("f", "x"), "absent"),
        ("run-cache-dir-under-file", "run {d}/r.yaml --sim none --cache-dir {d}/f/c --out {out}",
         USAGE, ["--cache-dir", "f/c"], both(write("f", "x"), write("r.yaml", RECIPE)), "absent"),
        ("regress-build-root-under-file", "regress {d}/s.yaml --build-root {d}/f/bs --out {out}",
         USAGE, ["--build-root", "f/bs"],
         both(write("f", "x"), write("s.yaml", SUITE.replace("sims: none", "sims: icarus"))),
         "absent"),
        ("regress-j0", "regress {d}/s.yaml -j 0 --out {out}", USAGE, ["-j"],
         write("s.yaml", SUITE), "absent"),
        ("regress-j-text", "regress {d}/s.yaml -j two --out {out}", USAGE, ["-j"],
         write("s.yaml", SUITE), "absent"),
        ("regress-connect-inf", "regress {d}/s.yaml --connect-timeout inf --out {out}", USAGE,
         ["--connect-timeout"], write("s.yaml", SUITE), "absent"),
        ("regress-executor", "regress {d}/s.yaml --executor slurm --out {out}", USAGE,
         ["--executor"], write("s.yaml", SUITE), "absent"),
        ("regress-scheduler-local", "regress {d}/s.yaml --scheduler tcp://x:1 --out {out}", USAGE,
         ["--scheduler"], write("s.yaml", SUITE), "absent"),
        ("regress-out-is-file", "regress {d}/s.yaml --out {d}/f", USAGE, ["--out", "f"],
         both(write("s.yaml", SUITE), write("f", "x")), "absent"),
        ("estimate-nm-bad", EST + " --nm 5:4", USAGE, ["--nm"], None, "absent"),
        ("estimate-nm-text", EST + " --nm half", USAGE, ["--nm", "half"], None, "absent"),
        ("estimate-json-symlink", EST.replace("{json}", "{d}/link.json"), USAGE,
         ["link.json", "symbolic link"], symlink("link.json", "precious.txt"), "absent"),
        ("estimate-json-folder", EST.replace("{json}", "{d}/dir"), USAGE, ["dir", "folder"],
         mkdir("dir"), "absent"),
        ("estimate-json-fifo", EST.replace("{json}", "{d}/p"), USAGE, ["p", "FIFO"], fifo("p"),
         "absent"),
        ("estimate-json-under-file", EST.replace("{json}", "{d}/f/x.json"), USAGE, ["f"],
         write("f", "x"), "absent"),
        ("repro-no-bundle", "repro", USAGE, ["BUNDLE"], None, "absent"),
        ("demo-sim-empty", ["demo", "--sim", "", "--out", "{out}"], USAGE, ["sim"], None,
         "absent"),
        ("unknown-subcommand", "simulate {net}", USAGE, ["simulate"], None, "absent"),
        ("unknown-option", "run {net} --colour red", USAGE, ["--colour"], None, "absent"),
        ("option-newline", ["run", "{net}", "--sim", "ic\narus", "--out", "{out}"], USAGE,
         ["ic\\narus"], None, "absent"),
    ]
    return [case(f"opt-{n}", k, a, c, needles, setup=s, out=o) for n, a, c, needles, s, o in t]


TB = "name: s\nsims: icarus\njobs:\n  - testbench: requant\n"


def closure_cases() -> list[Case]:
    """Options of ``mutate``, ``run/regress --coverage``, ``--until-covered``, ``--budget`` and
    ``testbench:`` suite entries (issue 13): one line naming the option or key, nothing written."""
    k = "closure"
    M = "mutate --out {out}"
    G = "regress {d}/s.yaml --out {out} -j 1"
    suite = write("s.yaml", SUITE)
    t: list[tuple[str, str | list[str], int, list[str], Setup | None]] = [
        ("mutate-suite", M + " --suite nope", USAGE, ["--suite", "nope"], None),
        ("mutate-max-zero", M + " --max-mutants 0", USAGE, ["--max-mutants"], None),
        ("mutate-max-huge", M + " --max-mutants 100000", USAGE, ["--max-mutants", "10000"], None),
        ("mutate-max-text", M + " --max-mutants many", USAGE, ["--max-mutants", "many"], None),
        ("mutate-j0", M + " -j 0", USAGE, ["-j"], None),
        ("mutate-j-huge", M + " -j 100000", USAGE, ["-j", "256"], None),
        ("mutate-sim-both", M + " --sim both", USAGE, ["--sim", "both"], None),
        ("mutate-sim-none", M + " --sim none", USAGE, ["--sim", "none"], None),
        ("mutate-seed-negative", M + " --seed -1", USAGE, ["--seed"], None),
        ("mutate-seed-huge", M + " --seed 99999999999", USAGE, ["--seed"], None),
        ("mutate-timeout-zero", M + " --timeout 0", USAGE, ["--timeout"], None),
        ("mutate-rerun-missing", M + " --rerun-survivors {d}/nope.json", USAGE,
         ["nope.json", "not a mutation report"], None),
        ("mutate-rerun-not-report", M + " --rerun-survivors {d}/f", USAGE,
         ["f", "not a mutation report"], write("f", "{\"x\": 1}")),
        ("mutate-out-is-file", "mutate --out {d}/f", USAGE, ["--out", "f"], write("f", "x")),
        ("mutate-build-root-under-file", M + " --build-root {d}/f/b", USAGE,
         ["--build-root", "f/b"], write("f", "x")),
        ("regress-budget-alone", G + " --budget 10", USAGE, ["--budget", "--until-covered"],
         suite),
        ("regress-seed-alone", G + " --seed 3", USAGE, ["--seed", "--until-covered"], suite),
        ("regress-budget-zero", G + " --until-covered --budget 0", USAGE, ["--budget"], suite),
        ("regress-budget-text", G + " --until-covered --budget lots", USAGE,
         ["--budget", "lots"], suite),
        ("regress-budget-huge", G + " --until-covered --budget 1000000", USAGE, ["--budget"],
         suite),
        ("regress-budget-negative-s", G + " --until-covered --budget -5s", USAGE, ["--budget"],
         suite),
        ("regress-budget-nan-s", G + " --until-covered --budget nans", USAGE, ["--budget"],
         suite),
        ("regress-budget-inf-s", G + " --until-covered --budget infs", USAGE, ["--budget"],
         suite),
        ("regress-until-no-sim", G + " --until-covered", USAGE, ["s.yaml", "--until-covered"],
         suite),
        ("regress-coverage-no-verilator", G + " --coverage", USAGE, ["--coverage"], suite),
        ("run-coverage-icarus", RUN.replace("none", "icarus") + " --coverage", USAGE,
         ["--coverage"], None),
        ("run-coverage-none", RUN + " --coverage", USAGE, ["--coverage"], None),
        ("tb-unknown", G, USAGE, ["s.yaml", "'jobs[0].testbench'", "nope"],
         write("s.yaml", TB.replace("requant", "nope"))),
        ("tb-not-string", G, USAGE, ["s.yaml", "'jobs[0].testbench'"],
         write("s.yaml", TB.replace("requant", "[1]"))),
        ("tb-with-hw", G, USAGE, ["s.yaml", "'jobs[0].hw'"],
         write("s.yaml", TB + "    hw: [{rows: 2}]\n")),
        ("tb-param-unknown", G, USAGE, ["s.yaml", "'jobs[0].params.FOO'"],
         write("s.yaml", TB + "    params: {FOO: 1}\n")),
        ("tb-param-huge", G, USAGE, ["s.yaml", "'jobs[0].params.ACC_BITS'"],
         write("s.yaml", TB + "    params: {ACC_BITS: 100000000}\n")),
        ("tb-param-float", G, USAGE, ["s.yaml", "'jobs[0].params'"],
         write("s.yaml", TB + "    params: {ACC_BITS: 2.5}\n")),
        ("tb-params-list-item", G, USAGE, ["s.yaml", "'jobs[0].params[1]'"],
         write("s.yaml", TB + "    params: [{ACC_BITS: 24}, 7]\n")),
        ("tb-payload-seed", G, USAGE, ["s.yaml", "'jobs[0].payload.seed'"],
         write("s.yaml", TB + "    payload: {seed: 3}\n")),
        ("tb-payload-list", G, USAGE, ["s.yaml", "'jobs[0].payload'"],
         write("s.yaml", TB + "    payload: [1]\n")),
        ("tb-sims-none", G, USAGE, ["s.yaml", "'sims'"],
         write("s.yaml", TB.replace("icarus", "none"))),
        ("tb-and-random", G, USAGE, ["s.yaml", "'jobs[0]'", "exactly one"],
         write("s.yaml", TB + "    random: linear\n")),
        ("payload-on-random", G, USAGE, ["s.yaml", "'jobs[0].payload'"],
         write("s.yaml", SUITE.replace("rows: 3}", "rows: 3}, payload: {n: 1}"))),
    ]
    return [case(f"closure-{n}", k, a, c, needles, setup=s) for n, a, c, needles, s in t]


def device_cases() -> list[Case]:
    """Character devices made with mknod (root only: skipped otherwise)."""
    def chardev(rel: str) -> Setup:
        def f(d: Path) -> None:
            os.mknod(d / rel, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # like /dev/null
        return f

    k = "cli-option"
    return [
        case("dev-estimate-json-chardev", k, EST.replace("{json}", "{d}/null"), USAGE,
             ["null", "character device"], setup=chardev("null")),
        case("dev-hw-chardev", k, RUN + " --hw {d}/null", USAGE, ["null", "character device"],
             setup=chardev("null")),
        case("dev-recipe-chardev", k, "run {d}/null.yaml --sim none --out {out}", USAGE,
             ["null.yaml", "character device"], setup=chardev("null.yaml")),
    ]


ALL_TABLES: dict[str, Callable[[], list[Case]]] = {
    "hw-file": hw_cases, "hw-param": hw_param_cases, "recipe": recipe_cases,
    "records": records_cases, "suite": suite_cases, "scalesim-csv": csv_cases,
    "bundle": bundle_cases, "cli-option": option_cases, "closure": closure_cases,
}


def all_cases() -> list[Case]:
    return [c for f in ALL_TABLES.values() for c in f()]
