#!/usr/bin/env python3
"""Golden vs ONNX Runtime on imported models (the figures of docs/interop.md, "Parity").

For each fixture model of ``tests/onnx_fixtures.py`` (a residual CNN, a depthwise net with an
average pool, an MLP), each format (QDQ, QOperator), activation type (int8, uint8) and seed, the
model is quantized with ``quantize_static``, imported under ``ort_fp32`` and under section-2
``half_even`` (what the RTL runs), and compared with ONNX Runtime per layer at both optimization
levels (``verify.ort_parity``, local comparison: each layer on ONNX Runtime's own inputs). The
outputs are counted by the kind of kernel ONNX Runtime ran: integer (QLinearConv, QGemm,
QLinearMatMul, QLinearAdd, QLinearGlobalAveragePool, MaxPool, Flatten) or float (a QDQ op it
did not fuse, QLinearAveragePool).

Usage: ``python scripts/measure_onnx_parity.py [SEEDS]`` (default 6; needs the ``onnx`` extra).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from onnx_fixtures import MODELS, quantized_model  # noqa: E402

from t2c_sim.regress.sources import records_from_onnx  # noqa: E402
from t2c_sim.verify.ort_parity import LEVELS  # noqa: E402


def main(seeds: int) -> None:
    logging.getLogger().setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    # (rounding, level, kernel kind) -> [outputs, differing outputs]
    tally: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    per_op: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for name in MODELS:
                for fmt in ("qdq", "qop"):
                    for act in ("int8", "uint8"):
                        path = quantized_model(Path(tmp), name, fmt, act, seed=seed)
                        for rounding in ("ort_fp32", "half_even"):
                            src = records_from_onnx(path, rounding=rounding, seed=seed, parity=LEVELS)
                            for layer in src.parity["layers"].values():
                                for lv, e in layer.items():
                                    kind = "integer" if e["integer"] else "float"
                                    t = tally[(rounding, lv, kind)]
                                    t[0] += e["local"]["n"]
                                    t[1] += e["local"]["mismatch"]
                                    o = per_op[(rounding, lv, e["kernel"])]
                                    o[0] += e["local"]["n"]
                                    o[1] += e["local"]["mismatch"]
    print(f"{seeds} seeds x {len(MODELS)} models x (QDQ, QOperator) x (int8, uint8); local "
          "comparison (each layer on ONNX Runtime's inputs)\n")
    print("| rounding | level | ONNX Runtime kernels | outputs | differ | rate |")
    print("|---|---|---|---|---|---|")
    for (rounding, lv, kind), (n, bad) in sorted(tally.items()):
        print(f"| {rounding} | {lv} | {kind} | {n:,} | {bad:,} | {bad / max(n, 1):.2e} |")
    print("\nper kernel (differing only):")
    for (rounding, lv, kern), (n, bad) in sorted(per_op.items()):
        if bad:
            print(f"  {rounding} {lv} {kern}: {bad}/{n}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
