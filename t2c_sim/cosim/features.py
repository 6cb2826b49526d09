"""Host side of the accelerator's build features (``HwConfig.profiles/row_params/zero_points``).

What :mod:`t2c_sim.cosim.accel` (the back door) and :mod:`t2c_sim.cosim.axi_accel` (the front
door) need beyond plain MAC layers, kept in one place:

- :func:`check_features`: which records a build runs (the adapters' check after the DUT file's
  ``accepts``); refusals name the layer, the missing feature and its ``HwConfig`` key (a build
  with ``profiles: 0`` refuses ``ort_fp32`` records; ``row_params: 0`` token-wise ``[P, C_out]``
  parameters; ``zero_points: 0`` matmul);
- :func:`run_mode` (:mod:`t2c_sim.export.iface`, the owner of the RTL interface): the top's
  32-bit run-mode register ``cfg_mode_i``;
- :func:`layer_params` / :func:`matmul_operands`: the requantizer parameters as the array takes
  them (per channel ``[C]``, or per row and channel ``[P, C]``) and the GEMM operands of an
  activation x activation matmul (SPEC section 7) in the array's dense-on-N:M layout;
- :func:`param_fields`: a tile's parameter words, ``ch`` (one per column block) or ``rp`` (one
  per output row and column block, at the output's address ``p * CB + cb``), packed by
  :mod:`t2c_sim.export.iface`.

Matmul on an ``N:M`` array: ``b`` is data (no sparsity), so each group of ``M`` activation
lanes carries ``N`` consecutive ``k`` (lanes ``0 .. N-1``, the other lanes 0) and the weight
indices are the identity ``0 .. N-1``: every multiplier works, ``ceil(K / N)`` groups per dot
product. ``K`` is padded to a multiple of ``N`` with the zero points (``a = z_a``, ``b = z_b``:
their products are 0). Each leading (batch x head) index is one GEMM ("group": its own rows
of ``a`` and its own ``b``), laid out like conv groups: output columns ``g * C + c``.
"""

from __future__ import annotations

import numpy as np

from t2c_sim.config import HwConfig, OpKind, RoundMode, RoundProfile
from t2c_sim.errors import RecordError, UnsupportedLayerError
from t2c_sim.estimate import per_row_params
from t2c_sim.export import iface
from t2c_sim.export.iface import ROWPAR, run_mode
from t2c_sim.numerics import check_range
from t2c_sim.record import MAC_OPS, LayerRecord

__all__ = ["ROWPAR", "refuse", "check_features", "run_mode", "per_row", "layer_params",
           "matmul_operands", "param_fields"]


def refuse(rec: LayerRecord, why: str, key: str, dut: str = "t2c_accel") -> UnsupportedLayerError:
    """The refusal format of a DUT's ``accepts``: ``layer 'L': cannot run on DUT D: <why> [key]``
    (``key``: the ``HwConfig`` field of the missing build feature, e.g. ``hw.profiles``)."""
    return UnsupportedLayerError(f"cannot run on DUT {dut}: {why} [{key}]", layer=rec.name)


def per_row(rec: LayerRecord) -> bool:
    """Whether the record's requantizer parameters are per row (``[P, C]`` or ``[R, 1]``)."""
    return per_row_params(rec)


def check_features(rec: LayerRecord, hw: HwConfig, dut: str = "t2c_accel") -> None:
    """Refuse what the build's features do not cover (after the DUT file's ``accepts``, which
    lists every op and rounding the RTL can have): the matmul's operand zero points, the
    rounding profiles, the per-row parameter memory.

    Raises:
        UnsupportedLayerError: naming the layer, the DUT, what the record needs and the
            ``HwConfig`` key of the missing feature.
    """
    if rec.op is OpKind.MATMUL:
        if not hw.zero_points:
            raise refuse(rec, "an activation x activation matmul needs operand zero points in "
                              "the array, which this build lacks (zero_points: 0)",
                         "hw.zero_points", dut)
        if rec.b_bits > hw.w_bits:
            raise refuse(rec, f"operand b of b{rec.b_bits} is wider than the array's "
                              f"w{hw.w_bits} lanes", "w_bits", dut)
    elif rec.op not in MAC_OPS:
        raise refuse(rec, f"{rec.op.value} is not a linear/conv2d/matmul layer (it runs on the "
                          f"host)", "ops", dut)
    if isinstance(rec.mode, RoundProfile):
        if rec.op not in MAC_OPS:
            raise refuse(rec, f"rounding profile {rec.mode.value} on a {rec.op.value} (profiles "
                              f"replace the requantizer of linear and conv2d layers)", "rounding",
                         dut)
        if not hw.profiles:
            raise refuse(rec, f"rounding profile {rec.mode.value}: this build's requantizer has "
                              f"the section-2 modes only ({', '.join(m.value for m in RoundMode)}; "
                              f"profiles: 0); simulate golden only (--sim none) or build with "
                              f"profiles: 1", "hw.profiles", dut)
    if per_row(rec) and not hw.row_params:
        raise refuse(rec, "token-wise (per-row) requantizer parameters need the per-row "
                          "parameter memory, which this build lacks (row_params: 0)",
                     "hw.row_params", dut)


def layer_params(rec: LayerRecord, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(bias_eff, M0, sh)`` of a linear/conv record: per channel ``[C_out]``, or token-wise
    ``[P, C_out]`` (``P`` must equal the GEMM's ``rows``)."""
    arrs = (rec.bias_eff, rec.M0, rec.sh)
    if per_row(rec):
        if any(a.ndim != 2 or a.shape != (rows, rec.c_out) for a in arrs):
            raise RecordError(f"layer {rec.name}: token-wise bias_eff/M0/sh have shapes "
                              f"{[a.shape for a in arrs]}; the input has {rows} rows of "
                              f"{rec.c_out} channels")
    return arrs


def _broadcast_rc(rec: LayerRecord, a: np.ndarray | None, r: int, c: int) -> np.ndarray:
    """A matmul parameter (``None``, ``[1]``, ``[C]``, ``[R, 1]``, ``[R, C]``) as ``[R, C]``."""
    if a is None:
        return np.zeros((r, c), dtype=np.int64)
    if a.ndim == 2 and a.shape[0] != r:
        raise RecordError(f"layer {rec.name}: per-row parameters have {a.shape[0]} rows, the "
                          f"output has {r}")
    return np.broadcast_to(a if a.ndim == 2 else a.reshape(1, -1), (r, c))


def matmul_operands(rec: LayerRecord, hw: HwConfig, a: np.ndarray, b: np.ndarray) -> dict:
    """GEMM operands of ``a[..., P, K] @ b[..., K, C]`` (``b[..., C, K]`` when ``trans_b``).

    Returns:
        ``cols[G, P, ceil(K/n)*m]`` (lane ``j < n`` of group ``q`` holds ``a[.., q*n + j]``),
        ``values[G*C, ceil(K/n)*n]`` (``b`` of column ``c`` of leading index ``g`` in row
        ``g*C + c``), ``indices`` (the identity), ``params`` ``(bias, M0, sh)`` per channel
        ``[G*C]`` or per row ``[P, G*C]``, ``lead`` (the leading dims), ``P``, ``G``, and the
        run-mode word.

    Raises:
        RecordError: Shapes that do not fit (leading dims, ``K``, ``C``), operands outside their
            formats, per-row parameters of the wrong row count.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.ndim < 2 or b.ndim < 2:
        raise RecordError(f"layer {rec.name}: matmul operands need at least 2 dims, got "
                          f"{a.shape} and {b.shape}")
    bt = b if rec.trans_b else np.swapaxes(b, -1, -2)
    k, c = a.shape[-1], bt.shape[-2]
    if a.shape[:-2] != bt.shape[:-2] or bt.shape[-1] != k or k != rec.c_in or c != rec.c_out:
        raise RecordError(f"layer {rec.name}: matmul operands {a.shape} and {b.shape} do not fit "
                          f"K={rec.c_in}, C={rec.c_out} (trans_b={rec.trans_b})")
    check_range(a, rec.a_bits, rec.a_signed, f"layer {rec.name} input a")
    check_range(b, rec.b_bits, rec.b_signed, f"layer {rec.name} input b")
    lead, p = a.shape[:-2], a.shape[-2]
    g = int(np.prod(lead, dtype=np.int64)) if lead else 1
    n, m = hw.n, hw.m
    gk = -(-k // n)                       # groups of one dot product
    ap = np.full((g, p, gk * n), rec.z_x, dtype=np.int64)
    ap[..., :k] = a.reshape(g, p, k)
    bp = np.full((g, c, gk * n), rec.z_b, dtype=np.int64)
    bp[..., :k] = bt.reshape(g, c, k)
    cols = np.zeros((g, p, gk, m), dtype=np.int64)
    cols[..., :n] = ap.reshape(g, p, gk, n)
    values = bp.reshape(g * c, gk * n)
    indices = np.tile(np.arange(n, dtype=np.int64), (g * c, gk))
    r = g * p
    rowpar = per_row(rec)
    params = []
    for arr in (rec.bias_eff, rec.M0, rec.sh):
        full = _broadcast_rc(rec, arr, r, c)                      # [G*P, C], row g*P + p
        if rowpar:
            params.append(np.ascontiguousarray(full.reshape(g, p, c).transpose(1, 0, 2)
                                               .reshape(p, g * c)))
        else:
            params.append(np.tile(full[0], g))
    word = run_mode(hw, rec.mode, rowpar=rowpar, w_unsigned=not rec.b_signed, z_a=rec.z_x,
                    z_w=rec.z_b)
    return {"cols": cols.reshape(g, p, gk * m), "values": values, "indices": indices,
            "params": tuple(params), "lead": tuple(lead), "p": p, "g": g, "mode": word}


def param_fields(rec: LayerRecord, params: tuple[np.ndarray, np.ndarray, np.ndarray],
                 hw: HwConfig, p0: int, rows: int, c0: int, cols: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A tile's parameter words ``(fields, widths)``: per channel (1-D ``params``), one ch word per
    column block (:func:`t2c_sim.export.iface.ch_fields`); per row (``[P, C]``), one rp word per
    output row and column block, at the output's address ``p * qc + q``
    (:func:`t2c_sim.export.iface.rp_fields`)."""
    bias, m0, sh = params
    sl = slice(c0, c0 + cols)
    if bias.ndim == 2:
        rs = slice(p0, p0 + rows)
        return iface.rp_fields(bias[rs, sl], m0[rs, sl], sh[rs, sl], hw, f"layer {rec.name}")
    return iface.ch_fields(bias[sl], m0[sl], sh[sl], hw, f"layer {rec.name}")
