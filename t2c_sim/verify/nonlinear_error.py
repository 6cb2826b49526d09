"""Error of the integer transformer ops against their float functions (docs/numerics.md 9).

Each measurement builds a record with the fuse-time constants
(:mod:`t2c_sim.quant.transformer_params`), runs it on the golden model and compares the output
integers with the float function of the dequantized input (float64), in output LSBs:

``err = | y_int - clamp(f(s_x (x - z_x)) / s_y + z_y, lo, hi) |``

(``0.5`` is what correct rounding alone costs). ``off`` counts outputs that differ from the
correctly rounded float result ``clamp(round_half_even(f / s_y) + z_y, lo, hi)``, i.e. what the
integer approximations cost beyond the output quantization. Inputs cover each op's whole input
range: every 8-bit input (GELU), every pair of 8-bit inputs (softmax and LayerNorm rows of two),
and seeded random rows of transformer length drawn from several spreads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from t2c_sim.config import OpKind, qrange
from t2c_sim.golden import run_layer
from t2c_sim.quant.nonlinear import gelu_ref, layernorm_ref, softmax_ref
from t2c_sim.quant.transformer_params import (
    gelu_params,
    layernorm_params,
    matmul_params,
    softmax_params,
)
from t2c_sim.record import LayerRecord

__all__ = ["ErrorStats", "gelu_error", "softmax_error", "layernorm_error", "matmul_error",
           "all_pairs", "spread_rows", "standard_report"]


@dataclass(frozen=True)
class ErrorStats:
    """Error of one op over one input set, in output LSBs."""

    op: str
    case: str
    n: int          # outputs compared
    max: float      # max |y_int - real|
    mean: float     # mean |y_int - real|
    off: int        # outputs != the correctly rounded float result

    def row(self) -> str:
        return (f"| {self.op} | {self.case} | {self.n} | {self.max:.4f} | {self.mean:.4f} | "
                f"{self.off} ({100.0 * self.off / max(self.n, 1):.3f} %) |")


def _stats(op: str, case: str, y: np.ndarray, real: np.ndarray, lo: int, hi: int) -> ErrorStats:
    real = np.clip(real, lo, hi)
    err = np.abs(y - real)
    best = np.clip(np.rint(real), lo, hi)       # np.rint: half to even, like the quantizers
    return ErrorStats(op, case, int(y.size), float(err.max()), float(err.mean()),
                      int(np.count_nonzero(y != best)))


def _f64(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def all_pairs(bits: int = 8, signed: bool = True) -> np.ndarray:
    """Every row of two ``bits``-bit integers: ``[2^(2 bits), 2]``."""
    lo, hi = qrange(bits, signed)
    v = np.arange(lo, hi + 1, dtype=np.int64)
    return np.stack(np.meshgrid(v, v, indexing="ij"), -1).reshape(-1, 2)


def spread_rows(rng: np.random.Generator, rows: int, length: int, bits: int = 8,
                signed: bool = True) -> dict[str, np.ndarray]:
    """Seeded rows over the whole range with different spreads (name -> ``[rows, length]``)."""
    lo, hi = qrange(bits, signed)
    mid = (lo + hi) // 2
    near = np.full((rows, length), mid, dtype=np.int64)
    near[np.arange(rows), rng.integers(0, length, rows)] += rng.choice([-1, 1], rows)
    peak = rng.integers(lo, lo + 16, size=(rows, length))
    peak[np.arange(rows), rng.integers(0, length, rows)] = hi
    return {
        "uniform": rng.integers(lo, hi + 1, size=(rows, length)),
        "normal(sd=8)": np.clip(np.rint(rng.normal(mid, 8, (rows, length))), lo, hi).astype(np.int64),
        "one peak": peak,
        "near-constant": near,
        "constant": np.broadcast_to(rng.integers(lo, hi + 1, (rows, 1)), (rows, length)).copy(),
    }


def gelu_error(s_x: float, z_x: int, s_y: float, z_y: int, *, bits: int = 8,
               y_signed: bool = True, case: str = "") -> ErrorStats:
    """GELU over every ``bits``-bit input."""
    p = gelu_params(s_x, z_x, s_y, z_y, a_bits=bits, y_bits=bits, y_signed=y_signed)
    rec = LayerRecord(name="gelu", op=OpKind.GELU, a_bits=bits, y_bits=bits, y_signed=y_signed,
                      z_x=z_x, z_y=z_y, lo=qrange(bits, y_signed)[0], hi=qrange(bits, y_signed)[1], **p)
    x = np.arange(*rec.x_range[:1], rec.x_range[1] + 1, dtype=np.int64)
    y = run_layer(rec, x).y
    real = gelu_ref(_f64(s_x * (x - z_x))).numpy() / s_y + z_y
    return _stats("gelu", case or f"all inputs, s_x={s_x:g}, s_y={s_y:g}", y, real, rec.lo, rec.hi)


def softmax_error(s_x: float, x: np.ndarray, *, bits: int = 8, case: str = "") -> ErrorStats:
    """Integer softmax (output unsigned ``bits``, ``s_y = 2^-bits``) on the rows of ``x``."""
    s_y = 2.0 ** -bits
    p = softmax_params(s_x, s_y, a_bits=bits)
    rec = LayerRecord(name="softmax", op=OpKind.SOFTMAX, a_bits=bits, y_bits=bits, y_signed=False,
                      lo=0, hi=(1 << bits) - 1, **p)
    y = run_layer(rec, x).y
    real = softmax_ref(_f64(s_x * x)).numpy() / s_y
    return _stats("softmax", case, y, real, rec.lo, rec.hi)


def layernorm_error(s_x: float, x: np.ndarray, rng: np.random.Generator, *, s_y: float,
                    eps: float = 1e-5, bits: int = 8, case: str = "") -> ErrorStats:
    """Integer LayerNorm with random gamma ~ N(1, 0.3), beta ~ N(0, 0.3) on the rows of ``x``."""
    c = x.shape[-1]
    gamma, beta = rng.normal(1.0, 0.3, c), rng.normal(0.0, 0.3, c)
    p = layernorm_params(s_x, gamma, beta, eps, s_y, a_bits=bits)
    rec = LayerRecord(name="ln", op=OpKind.LAYERNORM, a_bits=bits, y_bits=bits, c_in=c, c_out=c,
                      **p)
    y = run_layer(rec, x).y
    real = layernorm_ref(_f64(s_x * x), _f64(gamma), _f64(beta), eps).numpy() / s_y
    return _stats("layernorm", case, y, real, rec.lo, rec.hi)


def matmul_error(rng: np.random.Generator, *, k: int, s_a: float, s_b: float, s_y: float,
                 z_a: int = 0, z_b: int = 0, alpha: float = 1.0, rows: int = 64,
                 case: str = "") -> ErrorStats:
    """Integer ``alpha * a @ b^T`` on random full-range 8-bit operands.

    The reference is exact: ``dot * alpha s_a s_b / s_y`` on rationals (the float scales as the
    binary fractions they are), so exact ties are ties and ``off`` counts only the flips caused
    by ``M0 / 2^sh != m``.
    """
    a = rng.integers(-128, 128, size=(rows, k))
    b = rng.integers(-128, 128, size=(rows, k))
    p = matmul_params(s_a, s_b, s_y, alpha=alpha)
    rec = LayerRecord(name="mm", op=OpKind.MATMUL, inputs=("a", "b"), c_in=k, c_out=rows,
                      z_x=z_a, z_b=z_b, trans_b=True, **p)
    y = run_layer(rec, a, b).y
    m = Fraction(alpha) * Fraction(s_a) * Fraction(s_b) / Fraction(s_y)
    dot = ((a - z_a) @ (b - z_b).T).ravel().tolist()
    real = [min(max(d * m + rec.z_y, rec.lo), rec.hi) for d in dot]
    best = [min(max(round(r), rec.lo), rec.hi) for r in real]          # round(): half to even
    err = np.array([abs(Fraction(int(v)) - r) for v, r in zip(y.ravel().tolist(), real)], dtype=float)
    off = int(np.count_nonzero(y.ravel() != np.array(best)))
    return ErrorStats("matmul", case, int(y.size), float(err.max()), float(err.mean()), off)


def standard_report(seed: int = 0, long_rows: int = 256) -> list[ErrorStats]:
    """The measurements quoted in docs/numerics.md (8-bit formats, ``seed``)."""
    rng = np.random.default_rng(seed)
    out = []
    for s_x, z_x, s_y, z_y in ((8 / 127, 0, 8 / 127, 0), (6 / 255, -43, 4 / 255, -85),
                               (0.25, 0, 0.125, -128), (1 / 64, 0, 1 / 128, 0)):
        out.append(gelu_error(s_x, z_x, s_y, z_y, case=f"all 256 inputs, s_x={s_x:.4g} "
                                                         f"z_x={z_x}, s_y={s_y:.4g} z_y={z_y}"))
    pairs = all_pairs()
    for s_x in (0.01, 0.0625, 0.25):
        out.append(softmax_error(s_x, pairs, case=f"all 65536 rows of 2, s_x={s_x:g}"))
    for name, x in spread_rows(rng, long_rows, 197).items():
        out.append(softmax_error(0.0625, x, case=f"197 tokens, {name}, s_x=0.0625"))
    for s_x in (0.05, 0.5):
        out.append(layernorm_error(s_x, pairs, rng, s_y=2.5 / 127,
                                   case=f"all 65536 rows of 2, s_x={s_x:g}"))
    for name, x in spread_rows(rng, long_rows, 192).items():
        out.append(layernorm_error(0.05, x, rng, s_y=4 / 127, case=f"192 channels, {name}"))
    out.append(matmul_error(rng, k=64, s_a=2.6 / 127, s_b=3.1 / 127, s_y=8.1 / 127, z_a=3, z_b=-5,
                            alpha=1 / math.sqrt(64), case="K=64, alpha=1/8, calibration-like scales"))
    out.append(matmul_error(rng, k=64, s_a=0.02, s_b=0.03, s_y=0.08, z_a=3, z_b=-5,
                            alpha=1 / math.sqrt(64), case="K=64, alpha=1/8, decimal scales 0.02, 0.03, "
                                                          "0.08"))
    return out
