#!/usr/bin/env python3
"""Golden-model speed vs PyTorch float32 on realistic int8 layers, plus an exactness check.

Layers: a ResNet-18 3x3 conv (56x56x64 -> 64, batch 1, padding 1) and a 768 -> 3072 linear on
197 tokens (ViT-B MLP), dense and 2:4 sparse. For each: the golden model's time for
``run_layer`` in fast mode (im2col + exact GEMM + wrap + requantize), and
``torch.nn.functional.conv2d / linear`` in float32 on the same shapes, with torch limited to
numpy's BLAS thread count (the golden requantize blocks use as many threads); warmup, then
best of N in alternating blocks (fair under load on a shared machine). Prints
``golden_speed / torch_speed`` (target >= 0.5x; reported, not asserted) and whether the golden
``acc`` and ``y`` equal an independent exact int64 computation (per-tap / plain int64 matmul,
no float, no im2col). Returns 0 iff every layer was exact.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2c_sim.golden import run_layer  # noqa: E402
from t2c_sim.numerics import requantize, wrap  # noqa: E402
from t2c_sim.workloads.gen import random_conv_record, random_linear_record  # noqa: E402

REPEAT = 7


def blas_threads() -> int:
    """Thread count of numpy's BLAS (threadpoolctl if present, else the CPU count)."""
    try:
        from threadpoolctl import threadpool_info
        n = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if n:
            return int(n[0])
    except ImportError:
        pass
    return os.cpu_count() or 1


def best_of_interleaved(fns, repeat: int = REPEAT, rounds: int = 2) -> list[float]:
    """Best time of each callable over ``rounds`` alternating blocks of ``repeat`` runs.

    Blocks (not single calls) alternate: numpy's BLAS threads and torch's OpenMP threads
    spin for a while after each call and would slow the other side down if calls were mixed
    one by one; alternating whole blocks still exposes both to the same machine load. Each
    block starts with two untimed warmup calls.
    """
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            fn()
            fn()
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t0)
    return best


def exact_conv(rec) -> np.ndarray:
    """Independent int64 conv (stride 1, symmetric padding, groups 1): sum over kernel taps."""
    x = rec.x_q
    b, h, w, c = x.shape
    ph, pw = rec.padding
    xp = np.full((b, h + 2 * ph, w + 2 * pw, c), rec.z_x, dtype=np.int64)
    xp[:, ph:ph + h, pw:pw + w] = x
    w4 = rec.w_q.reshape(rec.c_out, rec.kh, rec.kw, rec.c_in_p)[..., :c]
    oh, ow = rec.out_hw
    acc = np.broadcast_to(rec.bias_eff, (b, oh, ow, rec.c_out)).copy()
    for r in range(rec.kh):
        for s in range(rec.kw):
            acc += xp[:, r:r + oh, s:s + ow, :] @ w4[:, r, s, :].T
    return wrap(acc, rec.acc_bits)


def exact_linear(rec) -> np.ndarray:
    """Independent int64 linear: plain int64 matmul (no float anywhere)."""
    return wrap(rec.x_q @ rec.w_q[:, :rec.c_in].T + rec.bias_eff, rec.acc_bits)


def main() -> int:
    import torch
    import torch.nn.functional as F

    threads = blas_threads()
    torch.set_num_threads(threads)
    rng = np.random.default_rng(2024)
    cases = []
    for n, m in ((4, 4), (2, 4)):
        tag = "dense" if n == m else f"{n}:{m}"
        conv = random_conv_record(rng, c_in=64, c_out=64, h=56, w=56, padding=1, n=n, m=m,
                                  relu=True, name=f"resnet18_conv3x3_{tag}")
        cases.append((conv, exact_conv))
        fc = random_linear_record(rng, c_in=768, c_out=3072, rows=197, n=n, m=m,
                                  name=f"vit_mlp_fc1_{tag}")
        cases.append((fc, exact_linear))

    # torch's first convolutions in a process are slow (thread pool / oneDNN kernel setup), and
    # one warmup call per case is not enough: warm both ops up on every case first.
    with torch.no_grad():
        for _ in range(5):
            F.conv2d(torch.zeros(1, 64, 56, 56), torch.zeros(64, 64, 3, 3), padding=1)
            F.linear(torch.zeros(197, 768), torch.zeros(3072, 768))
    print(f"threads: numpy BLAS {threads}, torch {torch.get_num_threads()}; best of 2 x {REPEAT}")
    hdr = f"{'layer':28s} {'MACs':>9s} {'golden ms':>10s} {'torch ms':>9s} {'ratio':>6s}  exact"
    print(hdr)
    print("-" * len(hdr))
    all_exact = True
    for rec, oracle in cases:
        x = rec.x_q
        out = run_layer(rec, x, workers=threads)
        acc_ref = oracle(rec)
        y_ref = requantize(acc_ref, rec.M0, rec.sh, rec.z_y, rec.lo, rec.hi, rec.mode)
        exact = np.array_equal(out.acc, acc_ref) and np.array_equal(out.y, y_ref)
        all_exact &= exact
        if rec.op.value == "conv2d":
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32)).contiguous()
            wt = torch.from_numpy(rec.w_q.reshape(rec.c_out, rec.kh, rec.kw, rec.c_in_p)
                                  [..., :rec.c_in].transpose(0, 3, 1, 2).astype(np.float32)).contiguous()
            bt = torch.from_numpy(rec.bias_eff.astype(np.float32))

            def run_torch(xt=xt, wt=wt, bt=bt, rec=rec):
                with torch.no_grad():
                    return F.conv2d(xt, wt, bt, stride=rec.stride, padding=rec.padding)
        else:
            xt = torch.from_numpy(x.astype(np.float32))
            wt = torch.from_numpy(rec.w_q[:, :rec.c_in].astype(np.float32)).contiguous()
            bt = torch.from_numpy(rec.bias_eff.astype(np.float32))

            def run_torch(xt=xt, wt=wt, bt=bt):
                with torch.no_grad():
                    return F.linear(xt, wt, bt)
        def run_golden(rec=rec, x=x):
            return run_layer(rec, x, workers=threads)

        t_gold, t_torch = best_of_interleaved([run_golden, run_torch])
        macs = rec.macs(x.shape[0]) if rec.op.value == "linear" else rec.macs()
        ratio = t_torch / t_gold  # golden speed / torch speed
        print(f"{rec.name:28s} {macs / 1e6:8.1f}M {t_gold * 1e3:10.2f} {t_torch * 1e3:9.2f} "
              f"{ratio:5.2f}x  {'yes' if exact else 'NO'}")
    print("ratio = golden speed / torch float32 speed (target >= 0.5x, reported only)")
    # Which float type should the exact GEMM use? Same integer operands, both exact here.
    fc = cases[1][0]
    xi, wi = fc.x_q, fc.w_q
    x32, w32, x64, w64 = xi.astype(np.float32), wi.astype(np.float32), xi.astype(np.float64), \
        wi.astype(np.float64)
    t32, t64 = best_of_interleaved([lambda: x32 @ w32.T, lambda: x64 @ w64.T])
    same = np.array_equal((x32 @ w32.T).astype(np.int64), (x64 @ w64.T).astype(np.int64))
    print(f"GEMM {xi.shape[0]}x{xi.shape[1]}x{wi.shape[0]}: float32 {t32 * 1e3:.2f} ms, float64 "
          f"{t64 * 1e3:.2f} ms (float32 {t64 / t32:.2f}x faster; results equal: {same})")
    return 0 if all_exact else 1


if __name__ == "__main__":
    sys.exit(main())
