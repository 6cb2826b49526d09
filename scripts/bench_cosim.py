#!/usr/bin/env python3
"""Co-simulation throughput of the accelerator RTL, and cocotb's overhead over a raw run.

Reference layer: linear ``P = 3136`` rows, ``K = 576``, ``C_out = 64`` (a 3x3x64 conv on a
56x56 map as a GEMM), 2:4 sparse, 8-bit, on an 8x8 2:4 array whose scratchpads take 224 rows
per tile (14 tiles, all in one simulator run). For each simulator it reports:

* build time (separately; a reused build reports 0), host-side packing time;
* the cocotb run (``run_layers``: simulator process + cocotb + all tiles): wall time,
  dense-equivalent MACs/s (``P * K * C_out / wall``) and simulated cycles/s;
* a raw run of the SAME harness, RTL and hex files without Python (``+define+T2C_RAW``: the
  harness sequences the tiles itself and ``$finish``es), whose outputs must equal the cocotb
  run's; the ratio cocotb wall / raw wall (target on Verilator: <= 2), from the medians of
  ``REPEATS`` interleaved pairs.

Both runs are checked bit-exact against the golden model and the cycle model. Each simulator
builds the PE array implementation it runs fastest (``run.default_packed``: PE instances on
Verilator, lane-packed columns on Icarus). Icarus simulates this 8x8 array at ~12-15k cycles/s
(~1.1k before the Icarus-oriented RTL, ~70 before the PE datapath became behavioural code), so
it runs 256 of the 3136 rows (36,890 cycles).
"""

from __future__ import annotations

import hashlib
import logging
import resource
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from t2c_sim import estimate  # noqa: E402
from t2c_sim.config import HwConfig  # noqa: E402
from t2c_sim.cosim import sim as simmod  # noqa: E402
from t2c_sim.cosim.run import (  # noqa: E402
    TOPLEVEL,
    build_accel,
    collect,
    default_packed,
    harness_sources,
    hw_parameters,
    run_layers,
    to_gemm,
)
from t2c_sim.export import iface  # noqa: E402
from t2c_sim.workloads.gen import random_linear_record  # noqa: E402

HW = HwConfig(rows=8, cols=8, n=2, m=4, a_bits=8, w_bits=8, act_depth=8 * 4096,
              w_depth=8 * 2048, out_depth=8192, ch_depth=256)
ROWS = {"verilator": 3136, "icarus": 256}
# Interleaved cocotb/raw repetitions; the summary uses medians (this machine is shared and a
# single Verilator pair varies by up to 2x).
REPEATS = {"verilator": 5, "icarus": 1}
K, C_OUT = 576, 64
BUILD_ROOT = ROOT / "build" / "bench"


def raw_build(sim: str, out_dir: Path, env: dict[str, str]) -> tuple[list[str], float]:
    """Build the Python-free harness (T2C_RAW); return (command to run it, build seconds)."""
    params = iface.harness_parameters(hw_parameters(HW, default_packed(sim)))  # the one owner
    srcs = [str(p) for p in harness_sources()]
    digest = hashlib.sha256(b"".join(Path(p).read_bytes() for p in srcs)
                            + repr(sorted(params.items())).encode()).hexdigest()[:16]
    out_dir = out_dir.with_name(f"{out_dir.name}-{digest}")
    marker = out_dir / "built.ok"
    t0 = time.monotonic()
    if sim == "verilator":
        exe = out_dir / "Vraw"
        if not marker.is_file():
            shutil.rmtree(out_dir, ignore_errors=True)
            out_dir.mkdir(parents=True)
            cmd = ["verilator", "--binary", "--timing", "--output-split", "0", "-Wno-fatal",
                   "-CFLAGS", "-std=c++20", "-CFLAGS", "-O2", "--top-module", TOPLEVEL,
                   "-DT2C_RAW", "-Mdir", str(out_dir), "-o", "Vraw",
                   *[f"-G{k}={v}" for k, v in params.items()], *srcs]
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            marker.touch()
        return [str(exe)], (time.monotonic() - t0)
    vvp = out_dir / "raw.vvp"
    if not marker.is_file():
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        cmd = ["iverilog", "-g2005", "-DT2C_RAW", "-s", TOPLEVEL, "-o", str(vvp),
               *[f"-P{TOPLEVEL}.{k}={v}" for k, v in params.items()], *srcs]
        subprocess.run(cmd, env=env, check=True)
        marker.touch()
    return ["vvp", "-n", str(vvp)], (time.monotonic() - t0)


def bench_one(sim: str) -> bool:
    rows = ROWS[sim]
    rec = random_linear_record(np.random.default_rng(2024), c_in=K, c_out=C_OUT, rows=rows,
                               n=2, m=4, name=f"ref{rows}x{K}x{C_OUT}")
    plan = estimate.tile_plan(rec, HW)
    pred = estimate.cycles(rec, HW)
    macs = estimate.macs(rec, HW)["dense"]
    impl = "lane-packed" if default_packed(sim) else "PE instances"
    print(f"[{sim}] layer {rows}x{K}x{C_OUT} 2:4 on {HW.rows}x{HW.cols} 2:4 ({impl} array): "
          f"{len(plan.tiles)} tiles, {pred} cycles predicted, {macs / 1e6:.1f} M dense MACs")
    t0 = time.monotonic()
    info = build_accel(HW, sim, BUILD_ROOT, optimize=True)
    print(f"[{sim}] cocotb build: {time.monotonic() - t0:.1f} s"
          f"{' (reused)' if info.reused else ''}")
    env = simmod.find_tools((sim,))["env"]
    cmd, b_s = raw_build(sim, BUILD_ROOT / f"raw-{sim}-{HW.rows}x{HW.cols}", env)
    print(f"[{sim}] raw build: {b_s:.1f} s")
    gm = to_gemm(rec, HW)
    ok = True
    walls, raws, in_sims, cpus = [], [], [], []
    for rep in range(REPEATS[sim]):  # cocotb run, then raw run on the same files, interleaved
        res = run_layers([rec], HW, sim, build_root=BUILD_ROOT, keep=True, optimize=True)[0]
        exact = np.array_equal(res.y, rec.y) and res.cycles == pred
        tc = ET.parse(res.run_dir / "results.xml").getroot().find(".//testcase")
        in_sim = float(tc.get("time", "nan")) if tc is not None else float("nan")
        run_dir = res.run_dir
        for p in [*run_dir.glob("t*_y.hex"), *run_dir.glob("t*_acc.hex"), run_dir / "tiles.txt"]:
            p.unlink(missing_ok=True)
        t1 = time.monotonic()
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, cwd=run_dir, env=env, check=True, stdout=subprocess.DEVNULL)
        raw_s = time.monotonic() - t1
        c2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        raw_cpu = (c2.ru_utime - c1.ru_utime) + (c2.ru_stime - c1.ru_stime)
        y_raw, _, cyc_raw = collect(gm, run_dir, list(range(len(plan.tiles))))
        raw_ok = (np.array_equal(y_raw.reshape(rec.y.shape), res.y)
                  and sum(sum(c) for c in cyc_raw.values()) == pred)
        print(f"[{sim}] run {rep}: host packing {res.prep_s:.2f} s; cocotb {res.wall_s:.2f} s wall "
              f"(tiles in the simulator {in_sim:.2f} s, start-up: simulator process, embedded "
              f"Python, cocotb {res.wall_s - in_sim:.2f} s), {res.cycles / res.wall_s / 1e3:.0f} "
              f"k cycles/s; raw {raw_s:.2f} s ({raw_cpu:.2f} s CPU, {pred / raw_cpu / 1e3:.1f} k "
              f"cycles per CPU-second); ratio {res.wall_s / raw_s:.2f}; bit-exact and "
              f"cycles {res.cycles} == model: {exact}; raw outputs equal: {raw_ok}")
        ok &= exact and raw_ok
        walls.append(res.wall_s)
        raws.append(raw_s)
        cpus.append(raw_cpu)
        in_sims.append(in_sim)
        shutil.rmtree(run_dir, ignore_errors=True)
    wall, raw, ins, cpu = (float(np.median(v)) for v in (walls, raws, in_sims, cpus))
    print(f"[{sim}] median of {len(walls)}: cocotb run {wall:.2f} s wall, "
          f"{macs / wall / 1e6:.2f} M dense MAC/s, {pred / wall / 1e3:.1f} k cycles/s "
          f"(start-up {wall - ins:.2f} s); raw run {raw:.2f} s, {macs / raw / 1e6:.2f} M dense "
          f"MAC/s, {pred / raw / 1e3:.1f} k cycles/s ({pred / cpu / 1e3:.1f} k per CPU-second); "
          f"cocotb/raw wall ratio {wall / raw:.2f}"
          f"{' (target <= 2)' if sim == 'verilator' else ''}, in-simulation ratio {ins / raw:.2f}")
    return ok


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    ok = True
    for sim in ("verilator", "icarus"):
        ok &= bench_one(sim)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
