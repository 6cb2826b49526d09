"""A MAC layer as the GEMMs a DUT computes: the operands every interface profile packs.

A linear layer is one GEMM: rows ``P`` = the product of ``x``'s leading dims. A conv layer is
one GEMM per conv group through :func:`t2c_sim.golden.im2col` (rows ``P = B*OH*OW`` in
``(b, oh, ow)`` order). Each :class:`GemmOp` holds, with ``K`` the record's reduction length
(padded as the record is; the padding weights are 0)::

    acc[p][c] = wrap_acc_bits(bias[c] + sum_k x[p][k] * w[c][k])
    y[p][c]   = clamp(z_y + round_shift(acc[p][c] * m0[c], sh[c], mode), lo, hi)

(a token-wise linear layer's ``bias``, ``m0``, ``sh`` are ``[P, C]``: row ``p`` uses its own;
``mode`` may be a runtime rounding profile, SPEC section 10)

with ``c`` the channel within the op (layer channel ``c0 + c``). The weights are dense
(``w_q``: an N:M record's pruned weights are zeros); a DUT that takes compressed weights
re-compresses them (:func:`t2c_sim.sparse.nm.compress`). :meth:`GemmOp.shape` is what a DUT's
cycle model receives.

Example: a conv with ``groups = 2``, ``C_out = 8`` gives two ops with ``c0 = 0`` and ``c0 = 4``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundMode, RoundProfile
from t2c_sim.errors import RecordError
from t2c_sim.golden import im2col
from t2c_sim.record import LayerRecord

__all__ = ["GemmOp", "layer_input", "gemm_operands", "gemm_ops", "record_fields"]


@dataclass(frozen=True, eq=False)
class GemmOp:
    """One GEMM of a layer (see the module docstring)."""

    layer: str
    index: int
    group: int
    c0: int
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    m0: np.ndarray
    sh: np.ndarray
    z_y: int
    lo: int
    hi: int
    mode: RoundMode | RoundProfile
    a_signed: bool
    y_signed: bool
    a_bits: int
    w_bits: int
    acc_bits: int
    n: int
    m: int
    record: dict[str, int] | None = None

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    @property
    def k(self) -> int:
        return int(self.x.shape[1])

    @property
    def cols(self) -> int:
        return int(self.w.shape[0])

    @property
    def token_wise(self) -> bool:
        """Per-row requantizer parameters (``bias``, ``m0``, ``sh`` of shape ``[P, C]``)."""
        return any(a.ndim == 2 for a in (self.bias, self.m0, self.sh))

    def shape(self) -> dict[str, Any]:
        """The op as a cycle model sees it: ``rows`` (P), ``K``, ``C_out``, ``N``, ``M``, bits,
        ``token_wise`` (1: per-row requantizer parameters, more parameter words to load)."""
        return {"rows": self.rows, "K": self.k, "C_out": self.cols, "N": self.n, "M": self.m,
                "bits": self.a_bits, "a_bits": self.a_bits, "w_bits": self.w_bits,
                "token_wise": int(self.token_wise), "layer": self.layer, "op": self.index}

    def fields(self) -> dict[str, int]:
        """Scalar fields for DUT-file expressions (registers, descriptor words).

        ``mode`` is the rounding mode's code (``RoundMode.code``: 0 half_even, 1 half_up,
        2 half_away, 3 floor), -1 for a rounding profile.
        """
        return {"rows": self.rows, "k": self.k, "c_out": self.cols, "c0": self.c0,
                "group": self.group, "z_y": int(self.z_y), "lo": int(self.lo), "hi": int(self.hi),
                "mode": self.mode.code if isinstance(self.mode, RoundMode) else -1,
                "a_signed": int(self.a_signed), "y_signed": int(self.y_signed),
                "a_bits": self.a_bits, "w_bits": self.w_bits,
                "acc_bits": self.acc_bits, "n": self.n, "m": self.m, "op": self.index}


def record_fields(rec: LayerRecord, batch: int) -> dict[str, int]:
    """The record's geometry for DUT-file expressions (``layer.<field>``): ``c_in, c_out, h, w,
    kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, batch, oh, ow, z_x, k``
    (``h, w, kh, kw, oh, ow`` are 1 for a linear layer; ``batch`` is the GEMM rows ``P`` then)."""
    conv = rec.op is OpKind.CONV2D
    oh, ow = rec.out_hw if conv else (1, 1)
    return {"c_in": rec.c_in, "c_out": rec.c_out, "h": rec.h if conv else 1,
            "w": rec.w if conv else 1, "kh": rec.kh if conv else 1, "kw": rec.kw if conv else 1,
            "stride_h": rec.stride[0], "stride_w": rec.stride[1], "pad_h": rec.padding[0],
            "pad_w": rec.padding[1], "dil_h": rec.dilation[0], "dil_w": rec.dilation[1],
            "groups": rec.groups if conv else 1, "batch": batch, "oh": oh, "ow": ow,
            "z_x": int(rec.z_x), "k": rec.k}


def layer_input(rec: LayerRecord, x: np.ndarray | None = None) -> np.ndarray:
    """The layer's input: ``x`` if given, else ``rec.x_q`` (int64).

    Raises:
        RecordError: Neither is present.
    """
    x = rec.x_q if x is None else np.asarray(x, dtype=np.int64)
    if x is None:
        raise RecordError("no input (give x or store x_q in the record)", layer=rec.name)
    return x


def gemm_operands(rec: LayerRecord, x: np.ndarray | None = None
                  ) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(cols[groups, P, K], out_shape)``: the GEMM activations and the shape of ``y``.

    Linear rows are ``x``'s flattened leading dims (``K`` positions beyond ``C_in`` hold 0:
    their weights are 0); conv rows come from :func:`t2c_sim.golden.im2col`.

    Raises:
        RecordError: No input, or an input whose shape does not fit the record.
    """
    x = layer_input(rec, x)
    if rec.op is OpKind.LINEAR:
        if x.ndim < 1 or x.shape[-1] != rec.c_in:
            raise RecordError(f"input shape {x.shape} does not end in c_in={rec.c_in}",
                              layer=rec.name)
        x2 = x.reshape(-1, rec.c_in)
        cols = np.zeros((1, x2.shape[0], rec.k), dtype=np.int64)
        cols[0, :, :rec.c_in] = x2
        return cols, (*x.shape[:-1], rec.c_out)
    if rec.op is OpKind.CONV2D:
        if x.ndim != 4 or x.shape[1:] != (rec.h, rec.w, rec.c_in):
            raise RecordError(f"input shape {x.shape} is not [B, {rec.h}, {rec.w}, {rec.c_in}]",
                              layer=rec.name)
        oh, ow = rec.out_hw
        return im2col(rec, x), (x.shape[0], oh, ow, rec.c_out)
    raise RecordError(f"{rec.op.value} is not a linear/conv2d layer (no GEMM)", layer=rec.name)


def gemm_ops(rec: LayerRecord, x: np.ndarray | None = None) -> tuple[list[GemmOp], tuple[int, ...]]:
    """The layer's GEMMs (one per conv group) and the shape of its ``y``.

    Raises:
        RecordError: Not a MAC layer with weights and per-channel requantizer parameters, or
            an input that does not fit.
    """
    for f in ("w_q", "bias_eff", "M0", "sh"):
        if getattr(rec, f) is None:
            raise RecordError(f"{f} is missing", layer=rec.name)
    cols, out_shape = gemm_operands(rec, x)
    groups = cols.shape[0]
    cpg = rec.c_out // groups
    geom = record_fields(rec, int(out_shape[0]) if rec.op is OpKind.CONV2D else cols.shape[1])
    ops = []
    for g in range(groups):
        sl = slice(g * cpg, (g + 1) * cpg)
        ops.append(GemmOp(
            layer=rec.name, index=g, group=g, c0=g * cpg, x=cols[g], w=np.asarray(rec.w_q[sl]),
            bias=np.asarray(rec.bias_eff[..., sl]), m0=np.asarray(rec.M0[..., sl]),
            sh=np.asarray(rec.sh[..., sl]), z_y=int(rec.z_y), lo=int(rec.lo), hi=int(rec.hi),
            mode=rec.mode, a_signed=bool(rec.a_signed),
            y_signed=bool(rec.y_signed), a_bits=rec.a_bits, w_bits=rec.w_bits,
            acc_bits=rec.acc_bits, n=rec.n, m=rec.m, record=geom))
    return ops, out_shape
