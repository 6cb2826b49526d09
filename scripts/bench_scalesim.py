#!/usr/bin/env python3
"""Bench section ``scalesim``: our cycle estimate vs SCALE-Sim v2 on the same dense topologies.

Installs the ``scalesim`` package (it does not depend on torch) if it is missing, writes a
few dense conv topologies and one GEMM in SCALE-Sim's CSV formats,
runs SCALE-Sim with an output-stationary (``os``) array of the same rows x cols as ours, runs
``t2c_sim.estimate.cycles`` on the same CSVs (through ``t2c_sim.estimate.scalesim``), and prints
both cycle counts per layer with their ratio. docs/estimate.md explains the differences.

SCALE-Sim runs in its own virtual environment, ``build/scalesim-venv`` (created on first use):
``scalesim`` 3.0.0 calls ``int()`` on a one-element array when it totals a layer's cycles, which
NumPy >= 2.4 (the project's) rejects with ``TypeError: only 0-dimensional arrays can be
converted to Python scalars``; its venv pins ``numpy<2.4``. SCALE-Sim itself is unmodified.

Exits non-zero, saying why, if SCALE-Sim cannot be installed or run: nothing is faked.
Usage: ``python scripts/bench_scalesim.py`` (or ``python scripts/bench.py scalesim``).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ARRAYS = [(4, 4), (8, 8)]  # (rows, cols) of both arrays
CONV = [  # name, IFMAP H, W, filter H, W, channels, filters, stride  (dense)
    ("conv3x3_s1", 10, 10, 3, 3, 16, 16, 1),
    ("conv3x3_s2", 17, 17, 3, 3, 8, 32, 2),
    ("conv1x1", 8, 8, 1, 1, 64, 64, 1),
    ("conv5x5_wide", 12, 12, 5, 5, 4, 24, 1),
]
GEMM = [("gemm_64x48x128", 64, 48, 128)]  # name, M, N, K

CFG = """[general]
run_name = {name}

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : 1024
FilterSramSzkB : 1024
OfmapSramSzkB : 1024
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10
Dataflow : os
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
"""


SS_VENV = REPO / "build" / "scalesim-venv"
SS_PY = SS_VENV / "bin" / "python"


def ensure_scalesim() -> str | None:
    """Create ``build/scalesim-venv`` with ``scalesim`` if needed; None when usable, else why."""
    check = [str(SS_PY), "-c", "import scalesim.scale_sim, numpy"]
    if SS_PY.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return None
    print(f"[scalesim] installing scalesim (numpy<2.4) into {SS_VENV}", flush=True)
    r = subprocess.run([sys.executable, "-m", "venv", str(SS_VENV)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return f"cannot create {SS_VENV}: {(r.stderr or r.stdout).strip()[-300:]}"
    r = subprocess.run([str(SS_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "scalesim", "numpy<2.4"], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return "pip install scalesim failed: " + " | ".join(tail)
    if subprocess.run(check, capture_output=True).returncode != 0:
        return "scalesim installed but cannot be imported"
    return None


def write_inputs(d: Path) -> tuple[Path, Path, Path]:
    conv = d / "conv.csv"
    conv.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                    "Channels, Num Filter, Strides,\n"
                    + "".join(", ".join(str(v) for v in row) + ",\n" for row in CONV))
    gemm = d / "gemm.csv"
    gemm.write_text("Layer Name, M, N, K,\n"
                    + "".join(", ".join(str(v) for v in row) + ",\n" for row in GEMM))
    layout = d / "layout.csv"  # custom layouts are off: a header-only layout file
    layout.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                      "Channels, Num Filter, Strides,\n")
    return conv, gemm, layout


def run_scalesim(topo: Path, layout: Path, rows: int, cols: int, gemm: bool, work: Path
                 ) -> list[tuple[int, int]]:
    """Run SCALE-Sim in a subprocess; per layer ``(total cycles, incl. prefetch)``."""
    name = f"{topo.stem}_{rows}x{cols}"
    cfg = work / f"{name}.cfg"
    cfg.write_text(CFG.format(name=name, rows=rows, cols=cols))
    out = work / "out"
    out.mkdir(exist_ok=True)
    cmd = [str(SS_PY), "-m", "scalesim.scale", "-c", str(cfg), "-t", str(topo), "-l",
           str(layout), "-p", str(out), "-i", "gemm" if gemm else "conv", "-s", "N"]
    log = work / f"{name}.log"
    with open(log, "w") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=work, timeout=1800)
    report = out / name / "COMPUTE_REPORT.csv"
    if r.returncode != 0 or not report.is_file():
        tail = " | ".join(log.read_text().strip().splitlines()[-3:])
        raise RuntimeError(f"SCALE-Sim failed on {topo.name} {rows}x{cols} (exit "
                           f"{r.returncode}): {tail}; log {log}")
    rows_out = []
    with open(report) as fh:
        rd = csv.reader(fh)
        header = [h.strip() for h in next(rd)]
        i_pref = header.index("Total Cycles (incl. prefetch)")
        i_tot = header.index("Total Cycles")
        for row in rd:
            if row and row[0].strip():
                rows_out.append((int(float(row[i_tot])), int(float(row[i_pref]))))
    return rows_out


def main() -> int:
    reason = ensure_scalesim()
    if reason:
        print(f"[scalesim] cannot run SCALE-Sim here: {reason}", file=sys.stderr)
        return 1
    from t2c_sim import estimate
    from t2c_sim.config import HwConfig, SparsitySpec
    from t2c_sim.estimate.scalesim import compare_cycles, read_topology, topology_records

    dense = SparsitySpec(1, 1)
    print("dense layers, output-stationary; ours = t2c_sim.estimate.cycles (exact RTL counter), "
          "scalesim = COMPUTE_REPORT 'Total Cycles' (and incl. prefetch)")
    hdr = (f"{'array':>5}  {'layer':<16} {'MACs':>9} {'ours':>8} {'scalesim':>9} "
           f"{'ratio':>6} {'ss+prefetch':>11} {'ratio':>6}")
    print(hdr)
    print("-" * len(hdr))
    ratios = []
    with tempfile.TemporaryDirectory(prefix="t2c-scalesim-") as tmp:
        work = Path(tmp)
        conv, gemm, layout = write_inputs(work)
        for rows, cols in ARRAYS:
            # Dense 1:1 PEs (one MAC per PE per cycle, like SCALE-Sim's), scratchpads deep
            # enough that every layer is one tile per channel block.
            hw = HwConfig(rows=rows, cols=cols, n=1, m=1, act_depth=rows * 4096,
                          w_depth=cols * 4096, out_depth=65536, ch_depth=cols * 256)
            for topo, is_gemm in ((conv, False), (gemm, True)):
                t0 = time.perf_counter()
                theirs = run_scalesim(topo, layout, rows, cols, is_gemm, work)
                ss_s = time.perf_counter() - t0
                layers = read_topology(topo)
                recs = topology_records(topo, nm=dense)
                if len(theirs) != len(recs):
                    print(f"[scalesim] {topo.name}: {len(theirs)} report rows for "
                          f"{len(recs)} layers", file=sys.stderr)
                    return 1
                ours = {r.name: estimate.cycles(r, hw) for r in recs}
                cmp = compare_cycles(ours, {r.name: t[0] for r, t in zip(recs, theirs)})
                for row, t, layer in zip(cmp, theirs, layers):
                    ratio_p = row["ours"] / t[1]
                    ratios.append(row["ratio"])
                    print(f"{rows}x{cols:<3} {row['layer']:<16} {layer.macs:>9,} "
                          f"{row['ours']:>8,} {row['scalesim']:>9,} {row['ratio']:>6.3f} "
                          f"{t[1]:>11,} {ratio_p:>6.3f}")
                print(f"      ({topo.name}: SCALE-Sim took {ss_s:.1f} s)")
    geo = 1.0
    for r in ratios:
        geo *= r
    geo **= 1 / len(ratios)
    print(f"ours / scalesim over {len(ratios)} layer x array cases: min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}, geometric mean {geo:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
