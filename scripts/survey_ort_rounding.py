#!/usr/bin/env python3
"""How often section-2 half_even and ONNX Runtime disagree (the figures in docs/interop.md).

1. Random conv and linear layers (``workloads.gen``) run in ONNX Runtime (QLinearConv /
   QLinearMatMul, built as in ``tests/test_profiles_ort.py``) against golden under the fuse
   step's half_even and under ``ort_fp32``.
2. Synthetic ``(acc, scales)`` pairs (no ORT: ``ort_fp32`` is ORT, as the tests show):
   disagreements of half_even with ``ort_fp32``, and how close to a tie each one was.

Usage: ``python scripts/survey_ort_rounding.py [SEED ...]`` (needs the ``onnx`` extra).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_profiles_ort import (  # noqa: E402  (the ORT model builders of the parity tests)
    _half_even,
    _ort_fp32,
    _scales,
    run_qlinearconv,
    run_qlinearmatmul,
)

from t2c_sim.golden.layers import run_layer  # noqa: E402
from t2c_sim.numerics import quantize_multiplier, requantize, wrap  # noqa: E402
from t2c_sim.rounding_profiles import f32_to_pair, requantize_profile  # noqa: E402
from t2c_sim.workloads.gen import random_conv_record, random_linear_record  # noqa: E402


def layers(seed: int, n: int = 240) -> tuple[int, int, int]:
    rng = np.random.default_rng(seed)
    tot = he_bad = pf_bad = 0
    for i in range(n):
        signed = bool(rng.integers(2))
        if i % 2 == 0:
            rec = random_conv_record(rng, c_in=int(rng.integers(1, 17)),
                                     c_out=int(rng.integers(1, 33)), h=int(rng.integers(4, 12)),
                                     w=int(rng.integers(4, 12)), batch=2, a_signed=signed,
                                     y_signed=signed)
            s = _scales(rec, rng)
            ref = run_qlinearconv(rec, *s, "all")
        else:
            rec = random_linear_record(rng, c_in=int(rng.integers(8, 300)),
                                       c_out=int(rng.integers(1, 64)), rows=int(rng.integers(1, 64)),
                                       a_signed=signed, y_signed=signed)
            rec = rec.replace(bias_eff=wrap(-rec.z_x * rec.w_q.sum(axis=1), 32))
            s_x, s_w, s_y = _scales(rec, rng)
            s = (s_x, np.full(rec.c_out, np.float32(s_w[0])), s_y)
            ref = run_qlinearmatmul(rec, s[0], s[1][0], s[2], "all")
        he = run_layer(_half_even(rec, *s)).y.reshape(ref.shape)
        pf = run_layer(_ort_fp32(rec, *s)).y.reshape(ref.shape)
        tot += ref.size
        he_bad += int(np.sum(he != ref))
        pf_bad += int(np.sum(pf != ref))
    return tot, he_bad, pf_bad


def synthetic(seed: int, n: int, wide: bool) -> tuple[int, float]:
    rng = np.random.default_rng(seed)
    s_x = rng.uniform(0.004, 0.05, n).astype(np.float32)
    s_y = rng.uniform(0.01, 0.2, n).astype(np.float32)
    m = 2.0 ** (rng.uniform(-24, -14, n) if wide else rng.uniform(-14, -4, n))
    s_w = (m * s_y / s_x).astype(np.float32)
    m0p, shp = f32_to_pair((s_x * s_w) / s_y)
    m0e, she = quantize_multiplier(s_x.astype(np.float64) * s_w.astype(np.float64) / s_y)
    acc = np.clip(np.rint(rng.uniform(-128, 127, n) / (m0e / 2.0 ** she)), -2**31, 2**31 - 1)
    acc = acc.astype(np.int64)
    he = requantize(acc, m0e, she, 0, -128, 127)
    pf = requantize_profile(acc, m0p, shp, 0, -128, 127, "ort_fp32")
    worst = 0.0
    for i in np.flatnonzero(he != pf):
        exact = Fraction(float(s_x[i])) * Fraction(float(s_w[i])) / Fraction(float(s_y[i])) * int(acc[i])
        worst = max(worst, abs(float(exact - exact.__floor__() - Fraction(1, 2)) / float(exact)))
    return int(np.sum(he != pf)), worst


def main(argv: list[str]) -> int:
    seeds = [int(a) for a in argv] or [0, 1, 2]
    for seed in seeds:
        tot, he, pf = layers(seed)
        print(f"seed {seed}: 240 layers, {tot} outputs: half_even != ORT on {he}, "
              f"ort_fp32 != ORT on {pf}")
    for wide in (False, True):
        for seed in seeds:
            bad, worst = synthetic(seed, 2_000_000, wide)
            print(f"synthetic {'acc up to 2^31' if wide else 'acc up to 2^21'} seed {seed}: "
                  f"{bad} of 2,000,000 differ; farthest from a tie: {worst:.2e} (relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
