"""Random layer cases for the sws_top tests: records from t2c_sim's generators, golden outputs.

A case is one GEMM the accelerator runs: ``x[P, K]``, ``w[C_out, K]``, per-channel
``bias_eff/M0/sh``, the output format and the expected ``y[P, C_out]`` from the t2c_sim golden
model (the independent oracle). Linear records are GEMMs directly (``x`` padded along K with
``z_x`` to the record's ``K``, whose extra weights are 0); conv records go through
``t2c_sim.golden.im2col`` and run one GEMM per conv group.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from t2c_sim.config import OpKind
from t2c_sim.cosim import sim
from t2c_sim.errors import MismatchError
from t2c_sim.golden import im2col, run_layer
from t2c_sim.numerics import wrap
from t2c_sim.record import LayerRecord
from t2c_sim.workloads.gen import random_conv_record, random_linear_record

EXAMPLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(EXAMPLE))
from cycle_model import cycles as model_cycles  # noqa: E402
from cycle_model import schedule  # noqa: E402, F401  (re-exported for the tests)
from sws_stream import pack_layer  # noqa: E402

MODES = ("half_even", "half_up", "half_away", "floor")
RTL = EXAMPLE / "rtl"
TB = Path(__file__).resolve().parent / "sws_tb.py"
TOP = "sws_top"
SOURCES = sorted(RTL.glob("*.v"))


@dataclass
class Case:
    """One GEMM for the accelerator, with its expected output."""

    name: str
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    m0: np.ndarray
    sh: np.ndarray
    z_y: int
    lo: int
    hi: int
    mode: str
    a_signed: bool
    y_signed: bool
    y: np.ndarray

    @property
    def shape(self) -> dict:
        return {"rows": int(self.x.shape[0]), "K": int(self.x.shape[1]),
                "C_out": int(self.w.shape[0]), "N": 1, "M": 1, "bits": 8}


def redo(rec: LayerRecord, **changes) -> LayerRecord:
    """``rec`` with ``changes`` and golden ``acc``/``y`` recomputed."""
    r = rec.replace(**changes)
    out = run_layer(r)
    return r.replace(acc=out.acc, y=out.y)


def cases_of(rec: LayerRecord) -> list[Case]:
    """The accelerator GEMM(s) of a linear or conv record."""
    common = dict(z_y=rec.z_y, lo=rec.lo, hi=rec.hi, mode=rec.mode.value, a_signed=rec.a_signed,
                  y_signed=rec.y_signed)
    if rec.op is OpKind.LINEAR:
        x = rec.x_q.reshape(-1, rec.c_in)
        if rec.k > rec.c_in:
            x = np.pad(x, [(0, 0), (0, rec.k - rec.c_in)], constant_values=rec.z_x)
        return [Case(rec.name, x, rec.w_q, rec.bias_eff, rec.M0, rec.sh,
                     y=rec.y.reshape(-1, rec.c_out), **common)]
    cols = im2col(rec, rec.x_q)
    cog = rec.c_out // rec.groups
    y = rec.y.reshape(-1, rec.c_out)
    out = []
    for g in range(rec.groups):
        s = slice(g * cog, (g + 1) * cog)
        out.append(Case(f"{rec.name}.g{g}" if rec.groups > 1 else rec.name, cols[g], rec.w_q[s],
                        rec.bias_eff[s], rec.M0[s], rec.sh[s], y=y[:, s], **common))
    return out


def fast_cases(rng: np.random.Generator, acc_bits: int = 32, mult_bits: int = 32) -> list[Case]:
    """Small layers covering the odd shapes, every mode, saturation, signedness, N:M, conv."""
    fmt = dict(acc_bits=acc_bits, mult_bits=mult_bits)
    recs = [
        random_linear_record(rng, c_in=3, c_out=2, rows=1, name="p1_k3_c2", **fmt),
        random_linear_record(rng, c_in=13, c_out=10, rows=19, mode="floor", name="multi_tile", **fmt),
        random_linear_record(rng, c_in=8, c_out=4, rows=9, a_signed=False, mode="half_up",
                             name="unsigned_x", **fmt),
        random_linear_record(rng, c_in=6, c_out=7, rows=5, mode="half_away", relu=True,
                             y_signed=False, name="relu_uint8_y", **fmt),
        random_linear_record(rng, c_in=10, c_out=5, rows=6, n=2, m=4, name="nm_2of4", **fmt),
        random_conv_record(rng, c_in=3, c_out=5, h=4, w=4, name="conv3x3", **fmt),
        random_conv_record(rng, c_in=4, c_out=4, h=3, w=3, groups=2, padding=0, kh=2, kw=2,
                           name="conv_groups", mode="floor", **fmt),
        random_linear_record(rng, c_in=2, c_out=3, rows=2, name="tiny_blocks", **fmt),
    ]
    sat = random_linear_record(rng, c_in=9, c_out=6, rows=7, name="saturate", **fmt)
    recs.append(redo(sat, sh=np.maximum(sat.sh - 5, 0), lo=sat.z_y - 3, hi=sat.z_y + 4))
    # small activations and shifts 0..3 with M0 = 1: exact ties are frequent and y rarely clamps
    ties = random_linear_record(rng, c_in=5, c_out=4, rows=8, name="ties",
                                x_q=rng.integers(-3, 4, size=(8, 5)), **fmt)
    for mode in MODES:
        recs.append(redo(ties, name=f"ties_{mode}", mode=mode, M0=np.ones(4, np.int64),
                         sh=np.arange(4)))
    out = [c for r in recs for c in cases_of(r)]
    return out


def wrap_cases(rng: np.random.Generator, acc_bits: int, mult_bits: int) -> list[Case]:
    """Accumulators that wrap at ``acc_bits`` (bias near the limit)."""
    rec = random_linear_record(rng, c_in=11, c_out=5, rows=6, acc_bits=acc_bits,
                               mult_bits=mult_bits, name="wrap")
    half = 1 << (acc_bits - 1)
    bias = rng.integers(half - 3000, half, size=5) * rng.choice([-1, 1], size=5)
    return cases_of(redo(rec, bias_eff=wrap(bias, acc_bits), wrap_ok=True))


def sweep_cases(rng: np.random.Generator, n: int, max_rows: int, max_k: int, max_c: int,
                acc_bits: int = 32, mult_bits: int = 32, y_bits: int = 8) -> list[Case]:
    """``n`` random linear layers of random small shapes and random formats."""
    out = []
    for i in range(n):
        y_signed = bool(rng.integers(2))
        rec = random_linear_record(
            rng, rows=int(rng.integers(1, max_rows + 1)), c_in=int(rng.integers(1, max_k + 1)),
            c_out=int(rng.integers(1, max_c + 1)), a_signed=bool(rng.integers(2)),
            y_signed=y_signed, y_bits=y_bits, relu=bool(rng.integers(2)),
            mode=MODES[int(rng.integers(4))], acc_bits=acc_bits, mult_bits=mult_bits,
            name=f"sweep{i}")
        out += cases_of(rec)
    return out


def payload(cases: list[Case], params: dict, *, pause_in: float = 0.0, pause_out: float = 0.0,
            seed: int = 1, junk: bool = True) -> tuple[dict, dict, list[int]]:
    """``(payload, arrays, model cycles)`` for ``sws_tb.run_layers``.

    ``junk``: the lanes the accelerator must ignore carry random bytes (seeded).
    """
    layers, arrays, model = [], {}, []
    jrng = np.random.default_rng(seed + 7) if junk else None
    slow = 1.0 / ((1.0 - pause_in) * (1.0 - pause_out))
    for i, c in enumerate(cases):
        frame = pack_layer(c.x, c.w, c.bias, c.m0, c.sh, z_y=c.z_y, lo=c.lo, hi=c.hi, mode=c.mode,
                           a_signed=c.a_signed, params=params, junk=jrng)
        cyc = model_cycles(c.shape, params)
        model.append(cyc)
        arrays[f"frame_{i}"] = frame
        arrays[f"y_{i}"] = c.y
        layers.append({"name": c.name, "rows": c.shape["rows"], "c_out": c.shape["C_out"],
                       "y_signed": c.y_signed, "in_beats": int(frame.shape[0]),
                       "budget": int(4 * cyc * slow) + 2000})
    pl = {"params": params, "layers": layers, "pause_in": pause_in, "pause_out": pause_out,
          "seed": seed}
    return pl, arrays, model


def run_cases(simulator: str, params: dict, cases: list[Case], *, pause_in: float = 0.0,
              pause_out: float = 0.0, seed: int = 1, sources: list[Path] | None = None,
              build_root: Path | None = None, timeout_s: float = 600.0,
              build_args: tuple[str, ...] = ()) -> list[dict]:
    """Build, stream ``cases`` through the DUT and return one result dict per case.

    Each dict holds ``name``, ``measured`` (monitor), ``cycles_o``, ``err_o``, ``model``.
    Raises MismatchError from the testbench (outputs) and here (cycles, err_o).
    """
    info = sim.build(simulator, TOP, sources or SOURCES, params,
                     build_root or sim.default_build_root(), build_args=build_args)
    pl, arrays, model = payload(cases, params, pause_in=pause_in, pause_out=pause_out, seed=seed)
    results = sim.run(info, TB, testcase="run_layers", payload=pl, arrays=arrays,
                      timeout_s=timeout_s, seed=seed)
    res = json.loads((results.parent / "sws_results.json").read_text())["layers"]
    for r, m in zip(res, model):
        r["model"] = m
    bp = pause_in > 0 or pause_out > 0
    bad = []
    for r in res:
        if r["err_o"] != 0:
            bad.append(f"layer {r['name']}: err_o = {r['err_o']}")
        if r["measured"] != r["cycles_o"]:
            bad.append(f"layer {r['name']}: monitor counted {r['measured']} cycles, "
                       f"cycles_o = {r['cycles_o']}")
        if not bp and r["measured"] != r["model"]:
            bad.append(f"layer {r['name']}: {r['measured']} cycles, model {r['model']}")
        if bp and r["measured"] < r["model"]:
            bad.append(f"layer {r['name']}: {r['measured']} cycles with back-pressure is less "
                       f"than the no-back-pressure model {r['model']}")
    if bad:
        raise MismatchError("cycle check failed: " + "; ".join(bad))
    return res


def report(res: list[dict], title: str) -> None:
    print(f"\n{title}\n{'layer':<16} {'measured':>9} {'model':>9} {'stall':>7}")
    for r in res:
        print(f"{r['name']:<16} {r['measured']:>9} {r['model']:>9} {r['measured'] - r['model']:>7}")
    tm, tmod = sum(r["measured"] for r in res), sum(r["model"] for r in res)
    print(f"{'total':<16} {tm:>9} {tmod:>9} {tm - tmod:>7}")


# ------------------------------------------------------------------------------ raw HDL harness
HARNESS = Path(__file__).resolve().parent / "hdl" / "sws_stream_tb.v"
HARNESS_TOP = "sws_stream_tb"


def raw_build(simulator: str, params: dict, build_root: Path, opt: str = "-O2") -> list[str]:
    """Build the Python-free stream harness (``hdl/sws_stream_tb.v``); return its command.

    ``opt``: the C++ optimization of the Verilator model (ignored by Icarus). Builds are cached
    per (simulator, parameters, opt, source contents).
    """
    import hashlib
    import subprocess

    tools = sim.find_tools((simulator,))
    srcs = [HARNESS, *SOURCES]
    key = hashlib.sha256(json.dumps([simulator, sorted(params.items()), opt]).encode()
                         + b"".join(p.read_bytes() for p in srcs)).hexdigest()[:16]
    out = Path(build_root) / f"raw-{simulator}-{key}"
    done = out / "built.ok"
    if simulator == "verilator":
        cmd = [str(out / "Vsws")]
        build = [tools["verilator"], "--binary", "--timing", "--output-split", "0", "-Wno-fatal",
                 "-CFLAGS", "-std=c++20", "-CFLAGS", opt, "--top-module", HARNESS_TOP,
                 "-Mdir", str(out), "-o", "Vsws", *[f"-G{k}={v}" for k, v in params.items()],
                 *map(str, srcs)]
    else:
        cmd = [tools["vvp"], "-n", str(out / "sws.vvp")]
        build = [tools["iverilog"], "-g2005", "-s", HARNESS_TOP, "-o", str(out / "sws.vvp"),
                 *[f"-P{HARNESS_TOP}.{k}={v}" for k, v in params.items()], *map(str, srcs)]
    if not done.is_file():
        out.mkdir(parents=True, exist_ok=True)
        p = subprocess.run(build, env=tools["env"], capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise sim.SimulationError(f"raw build of {HARNESS_TOP} ({simulator}) failed: "
                                      f"{(p.stdout + p.stderr)[-1500:]}")
        done.touch()
    return cmd


def raw_run(cmd: list[str], case: Case, params: dict, work: Path, *, pause_in: int = 0,
            pause_out: int = 0, seed: int = 1, simulator: str = "icarus") -> dict:
    """Run one case through the raw harness; return ``y``, ``cycles``, ``cycles_o``, ``err``, ``wall_s``.

    ``pause_in``/``pause_out`` are percentages. The output is parsed with ``unpack_output``.
    """
    import re
    import subprocess
    import time

    from sws_stream import unpack_output

    work.mkdir(parents=True, exist_ok=True)
    frame = pack_layer(case.x, case.w, case.bias, case.m0, case.sh, z_y=case.z_y, lo=case.lo,
                       hi=case.hi, mode=case.mode, a_signed=case.a_signed, params=params)
    (work / "in.hex").write_text("\n".join(r.tobytes().hex() for r in frame[:, ::-1]) + "\n")
    n_out = case.shape["rows"] * -(-case.shape["C_out"] // int(params["COLS"]))
    args = [f"+IN={work / 'in.hex'}", f"+N_IN={frame.shape[0]}", f"+OUT={work / 'out.hex'}",
            f"+N_OUT={n_out}", f"+PAUSE_IN={pause_in}", f"+PAUSE_OUT={pause_out}",
            f"+SEED={seed}", f"+MAX_CYCLES={50 * model_cycles(case.shape, params) + 10000}"]
    env = sim.find_tools((simulator,))["env"]
    t0 = time.monotonic()
    p = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, check=False,
                       cwd=work)
    wall = time.monotonic() - t0
    m = re.search(r"sws_stream_tb: cycles=(\d+) cycles_o=(\d+) err=(\d+)", p.stdout)
    if m is None:
        raise MismatchError(f"raw harness ({simulator}) did not finish: {p.stdout[-800:]}"
                            f"{p.stderr[-800:]}")
    nb = int(params["COLS"]) * int(params["Y_BITS"]) // 8
    lines = [ln.strip() for ln in (work / "out.hex").read_text().splitlines()
             if ln.strip() and not ln.strip().startswith(("//", "@"))]
    data = b"".join(int(ln, 16).to_bytes(nb, "little") for ln in lines)
    y = unpack_output(data, case.shape["rows"], case.shape["C_out"], params, case.y_signed)
    return {"y": y, "cycles": int(m.group(1)), "cycles_o": int(m.group(2)), "err": int(m.group(3)),
            "wall_s": wall}
