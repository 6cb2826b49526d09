"""Random, valid integer layer records and networks with golden results (for tests).

Stable API used by the golden, RTL, cosim and CLI tests:

- :func:`random_linear_record`, :func:`random_conv_record`: one MAC layer with ``x_q`` filled,
  legal N:M ``w_q`` (pruned with ``nm_mask``) plus ``values/indices``, ``bias_eff``, per-channel
  ``M0/sh`` from ``quantize_multiplier``, nonzero ``z_x/z_y``, ``lo/hi`` and golden ``acc/y``;
- :func:`random_pool_record` (max/avg/global-avg pool) and :func:`random_add_record`;
- :func:`random_network`: conv -> maxpool -> conv -> add (skip) -> gavgpool -> flatten -> linear
  with golden results attached; the network input is ``records[0].x_q``;
- :func:`random_matmul_record`: an activation x activation matmul (``Q @ K^T`` with
  ``trans_b``, ``attn @ V``) with both zero points, per-tensor / per-column / per-row /
  per-row-and-column requantization and optional bias (SPEC sections 7, 8);
- :func:`with_profile`: a linear/conv record (per channel or token-wise) re-made under a
  runtime rounding profile (``ort_fp32``, ``tflite_double``, ``tflite_single``; SPEC section 10).

The real multiplier of a MAC layer is chosen per output channel from the actual accumulators:
``m[c] = (qmax_y - qmin_y) / (6 * rms(acc[:, c]))``, so ``y`` spreads over the output range
instead of saturating. ``bias_eff`` is stored wrapped to ``acc_bits`` (equivalent modulo
``2^acc_bits``); ``wrap_ok`` is set when the worst-case ``|acc|`` can exceed ``acc_bits``.
All randomness comes from the ``rng`` argument (``np.random.default_rng(seed)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundProfile, qrange
from t2c_sim.errors import RecordError
from t2c_sim.golden.layers import run_layer
from t2c_sim.golden.network import attach_results, run_network
from t2c_sim.layout import padded_len
from t2c_sim.numerics import quantize_multiplier, quantize_multipliers_shared, relu_bounds, wrap
from t2c_sim.record import LayerRecord
from t2c_sim.rounding_profiles import profile_params
from t2c_sim.sparse.nm import compress, nm_mask

__all__ = ["random_linear_record", "random_conv_record", "random_pool_record",
           "random_add_record", "random_network", "random_zero_point", "spread_multiplier",
           "random_matmul_record", "with_profile", "MATMUL_PARAM_FORMS"]

#: Shapes of a matmul's requantizer parameters: ``[1]``, ``[C]``, ``[R, 1]``, ``[R, C]``.
MATMUL_PARAM_FORMS = ("tensor", "column", "row", "row_column")


def random_zero_point(rng: np.random.Generator, bits: int, signed: bool) -> int:
    """A nonzero zero point from the middle half of the ``bits``-bit range (any nonzero if tiny)."""
    lo, hi = qrange(bits, signed)
    q = (hi - lo) // 4
    choices = [v for v in range(lo + q, hi - q + 1) if v != 0] or \
              [v for v in range(lo, hi + 1) if v != 0]
    return int(rng.choice(choices))


def spread_multiplier(acc: np.ndarray, y_bits: int, y_signed: bool, mult_bits: int) -> np.ndarray:
    """Real multiplier per channel (last axis): ``(qmax - qmin) / (6 * rms(acc[..., c]))``.

    Clipped to ``[2^-40, 2^(mult_bits-1)]`` so that ``quantize_multiplier`` accepts it.
    """
    lo, hi = qrange(y_bits, y_signed)
    a = acc.reshape(-1, acc.shape[-1]).astype(np.float64)
    rms = np.sqrt(np.mean(a * a, axis=0)) if a.shape[0] else np.zeros(a.shape[1])
    m = (hi - lo) / (6.0 * np.maximum(rms, 1.0))
    return np.clip(m, 2.0 ** -40, 2.0 ** (mult_bits - 1))


def _random_x(rng: np.random.Generator, shape: tuple[int, ...], bits: int, signed: bool,
              ) -> np.ndarray:
    lo, hi = qrange(bits, signed)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _prune(rng: np.random.Generator, w: np.ndarray, n: int, m: int, w_bits: int) -> np.ndarray:
    """Keep the N largest ``|w|`` per group of M (``w[C_out, K]``, K a multiple of M)."""
    return np.where(nm_mask(w, n, m), w, 0)


def _finish_mac(rng: np.random.Generator, rec: LayerRecord, token_wise: bool) -> LayerRecord:
    """Fill ``values/indices``, ``bias_eff``, ``M0/sh``, ``wrap_ok`` and golden ``acc/y``."""
    w = rec.w_q
    ax = max(abs(v) for v in rec.x_range)
    vals, idx = compress(w, rec.n, rec.m, name=f"layer {rec.name} w_q")
    rows = int(np.prod(rec.x_q.shape[:-1])) if rec.op is OpKind.LINEAR else 0
    shape = (rows, rec.c_out) if token_wise else (rec.c_out,)

    def with_bias(b_int: np.ndarray) -> LayerRecord:
        bias_eff = wrap(b_int - rec.z_x * w.sum(axis=1), rec.acc_bits)  # SPEC section 2
        worst = int(np.abs(bias_eff).max() + (np.abs(w).sum(axis=1) * ax).max())
        return rec.replace(values=vals, indices=idx,
                           bias_eff=np.broadcast_to(bias_eff, shape).copy(),
                           M0=np.ones(shape, np.int64), sh=np.zeros(shape, np.int64),
                           wrap_ok=worst > (1 << (rec.acc_bits - 1)) - 1)

    # The float bias: centre each channel's accumulators (as a trained bias / BN shift does)
    # when there are enough samples, plus noise of the size of a typical dot product.
    dot = run_layer(with_bias(np.zeros(rec.c_out, np.int64))).acc.reshape(-1, rec.c_out)
    xs = float(np.std(rec.x_q)) if rec.x_q.size else 1.0
    sigma = np.sqrt(max(1, rec.k_real)) * max(xs, 0.5) * max(float(np.std(w)), 0.5)
    centre = -np.mean(dot, axis=0) if dot.shape[0] >= 8 else np.zeros(rec.c_out)
    b_int = np.rint(centre + rng.normal(0.0, 0.5 * sigma, size=rec.c_out)).astype(np.int64)
    probe = with_bias(b_int)
    acc = run_layer(probe).acc
    mreal = spread_multiplier(acc, rec.y_bits, rec.y_signed, rec.mult_bits)
    if token_wise:  # a different (dynamic) activation scale per token
        mreal = np.clip(mreal[None, :] * rng.uniform(0.5, 2.0, size=(rows, 1)),
                        2.0 ** -40, 2.0 ** (rec.mult_bits - 1))
    M0, sh = quantize_multiplier(mreal, rec.mult_bits)
    out = probe.replace(M0=M0, sh=sh)
    res = run_layer(out)
    return out.replace(acc=res.acc, y=res.y).validate()


def _out_format(rng: np.random.Generator, y_bits: int, y_signed: bool, relu: bool,
                ) -> tuple[int, int, int]:
    z_y = random_zero_point(rng, y_bits, y_signed)
    lo, hi = relu_bounds(y_bits, y_signed, z_y, "relu" if relu else None)
    return z_y, lo, hi


def random_linear_record(rng: np.random.Generator, *, c_in: int, c_out: int, rows: int,
                         n: int = 1, m: int = 1, a_bits: int = 8, a_signed: bool = True,
                         w_bits: int = 8, y_bits: int = 8, y_signed: bool = True,
                         acc_bits: int = 32, mult_bits: int = 32, mode: str = "half_even",
                         relu: bool = False, name: str = "fc", token_wise: bool = False,
                         x_q: np.ndarray | None = None, z_x: int | None = None,
                         inputs: tuple[str, ...] = ("input",)) -> LayerRecord:
    """A random valid linear record ``x_q[rows, c_in] -> y[rows, c_out]`` with golden results.

    ``x_q``/``z_x`` may be given (e.g. the previous layer's output and zero point); ``x_q`` may
    have any leading dims ``[..., c_in]``. ``token_wise`` stores ``bias_eff/M0/sh`` as
    ``[P, c_out]`` with a different multiplier per row.
    """
    if x_q is None:
        x_q = _random_x(rng, (rows, c_in), a_bits, a_signed)
    z_x = random_zero_point(rng, a_bits, a_signed) if z_x is None else int(z_x)
    kp = padded_len(c_in, m)
    wlo, whi = qrange(w_bits, True)
    w = np.zeros((c_out, kp), dtype=np.int64)
    w[:, :c_in] = rng.integers(wlo, whi + 1, size=(c_out, c_in))
    w = _prune(rng, w, n, m, w_bits)
    z_y, lo, hi = _out_format(rng, y_bits, y_signed, relu)
    rec = LayerRecord(name=name, op=OpKind.LINEAR, inputs=inputs, a_bits=a_bits,
                      a_signed=a_signed, w_bits=w_bits, y_bits=y_bits, y_signed=y_signed,
                      acc_bits=acc_bits, mult_bits=mult_bits, n=n, m=m, c_in=c_in, c_out=c_out,
                      z_x=z_x, z_y=z_y, lo=lo, hi=hi, mode=mode, w_q=w, x_q=x_q,
                      meta={"generator": "random_linear_record"})
    return _finish_mac(rng, rec, token_wise)


def random_conv_record(rng: np.random.Generator, *, c_in: int, c_out: int, h: int, w: int,
                       kh: int = 3, kw: int = 3, stride: Any = 1, padding: Any = 1,
                       dilation: Any = 1, groups: int = 1, batch: int = 1, n: int = 1, m: int = 1,
                       a_bits: int = 8, a_signed: bool = True, w_bits: int = 8, y_bits: int = 8,
                       y_signed: bool = True, acc_bits: int = 32, mult_bits: int = 32,
                       mode: str = "half_even", relu: bool = False, name: str = "conv",
                       x_q: np.ndarray | None = None, z_x: int | None = None,
                       inputs: tuple[str, ...] = ("input",)) -> LayerRecord:
    """A random valid conv record ``x_q[batch, h, w, c_in] -> y[batch, OH, OW, c_out]``.

    ``w_q[c_out, KH*KW*C_gp]`` is in SPEC reduction order with zero padding channels
    (``C_gp = pad(c_in/groups, m)``), pruned to N:M. ``groups = c_in = c_out`` is depthwise.
    """
    if c_in % groups or c_out % groups:
        raise RecordError(f"layer {name}: groups={groups} must divide c_in={c_in} and c_out={c_out}")
    if x_q is None:
        x_q = _random_x(rng, (batch, h, w, c_in), a_bits, a_signed)
    z_x = random_zero_point(rng, a_bits, a_signed) if z_x is None else int(z_x)
    cg = c_in // groups
    cgp = padded_len(cg, m)
    wlo, whi = qrange(w_bits, True)
    w4 = np.zeros((c_out, kh, kw, cgp), dtype=np.int64)
    w4[..., :cg] = rng.integers(wlo, whi + 1, size=(c_out, kh, kw, cg))
    wq = _prune(rng, w4.reshape(c_out, -1), n, m, w_bits)
    z_y, lo, hi = _out_format(rng, y_bits, y_signed, relu)
    rec = LayerRecord(name=name, op=OpKind.CONV2D, inputs=inputs, a_bits=a_bits,
                      a_signed=a_signed, w_bits=w_bits, y_bits=y_bits, y_signed=y_signed,
                      acc_bits=acc_bits, mult_bits=mult_bits, n=n, m=m, c_in=c_in, c_out=c_out,
                      kh=kh, kw=kw, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, h=h, w=w, z_x=z_x, z_y=z_y, lo=lo, hi=hi, mode=mode,
                      w_q=wq, x_q=x_q, meta={"generator": "random_conv_record"})
    return _finish_mac(rng, rec, False)


def random_pool_record(rng: np.random.Generator, op: OpKind | str, *, c: int, h: int, w: int,
                       kh: int = 2, kw: int = 2, stride: Any = 2, padding: Any = 0,
                       dilation: Any = 1, batch: int = 1, a_bits: int = 8, a_signed: bool = True,
                       mult_bits: int = 32, mode: str = "half_even", name: str = "pool",
                       x_q: np.ndarray | None = None, z_x: int | None = None,
                       inputs: tuple[str, ...] = ("input",)) -> LayerRecord:
    """A max, average or global-average pool record with golden results.

    Output format = input format (``z_y = z_x``); average pools use ``m = 1 / window``
    (``s_y = s_x``), quantized with ``quantize_multiplier``; ``gavgpool`` ignores the kernel.
    """
    op = OpKind(op)
    if op not in (OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.GAVGPOOL):
        raise RecordError(f"layer {name}: {op.value} is not a pool")
    if x_q is None:
        x_q = _random_x(rng, (batch, h, w, c), a_bits, a_signed)
    z_x = random_zero_point(rng, a_bits, a_signed) if z_x is None else int(z_x)
    lo, hi = qrange(a_bits, a_signed)
    rec = LayerRecord(name=name, op=op, inputs=inputs, a_bits=a_bits, a_signed=a_signed,
                      y_bits=a_bits, y_signed=a_signed, mult_bits=mult_bits, c_in=c, c_out=c,
                      kh=kh, kw=kw, stride=stride, padding=padding, dilation=dilation,
                      h=h, w=w, z_x=z_x, z_y=z_x, lo=lo, hi=hi, mode=mode, x_q=x_q,
                      meta={"generator": "random_pool_record"})
    if op is not OpKind.MAXPOOL:
        window = h * w if op is OpKind.GAVGPOOL else kh * kw
        M0, sh = quantize_multiplier(np.array([1.0 / window]), mult_bits)
        rec = rec.replace(M0=M0, sh=sh)
    res = run_layer(rec)
    return rec.replace(acc=res.acc, y=res.y).validate()


def random_add_record(rng: np.random.Generator, *, shape: tuple[int, ...], a_bits: int = 8,
                      a_signed: bool = True, y_bits: int = 8, y_signed: bool = True,
                      mult_bits: int = 32, mode: str = "half_even", relu: bool = False,
                      name: str = "add", a: np.ndarray | None = None,
                      b: np.ndarray | None = None, z_a: int | None = None,
                      z_b: int | None = None, inputs: tuple[str, str] = ("a", "b"),
                      ) -> tuple[LayerRecord, np.ndarray]:
    """A residual-add record and its second input ``b`` (``x_q`` holds ``a``).

    ``(Ma, Mb, sh)`` come from ``quantize_multipliers_shared`` of real multipliers drawn from
    ``[0.25, 1)`` (``s_a / s_y``, ``s_b / s_y``). Returns ``(record, b)``.
    """
    a = _random_x(rng, shape, a_bits, a_signed) if a is None else np.asarray(a, np.int64)
    b = _random_x(rng, shape, a_bits, a_signed) if b is None else np.asarray(b, np.int64)
    z_a = random_zero_point(rng, a_bits, a_signed) if z_a is None else int(z_a)
    z_b = random_zero_point(rng, a_bits, a_signed) if z_b is None else int(z_b)
    ms, sh = quantize_multipliers_shared(list(rng.uniform(0.25, 1.0, size=2)), mult_bits)
    z_y, lo, hi = _out_format(rng, y_bits, y_signed, relu)
    rec = LayerRecord(name=name, op=OpKind.ADD, inputs=inputs, a_bits=a_bits, a_signed=a_signed,
                      y_bits=y_bits, y_signed=y_signed, mult_bits=mult_bits, z_x=z_a, z_b=z_b,
                      z_y=z_y, lo=lo, hi=hi, mode=mode, M0=np.array(ms), sh=np.array([sh]),
                      x_q=a, meta={"generator": "random_add_record"})
    res = run_layer(rec, a, b)
    return rec.replace(y=res.y).validate(), b


def random_network(rng: np.random.Generator, *, batch: int = 1, h: int = 8, w: int = 8,
                   c_in: int = 3, channels: int = 8, classes: int = 10, n: int = 1, m: int = 1,
                   a_bits: int = 8, w_bits: int = 8, acc_bits: int = 32, mult_bits: int = 32,
                   mode: str = "half_even") -> list[LayerRecord]:
    """A small valid network with golden results attached (activations signed ``a_bits``).

    ``conv1`` (3x3, ReLU) -> ``pool`` (max 2x2/2) -> ``conv2`` (3x3) -> ``add`` (pool + conv2,
    ReLU) -> ``gap`` (global avg) -> ``flatten`` -> ``fc`` (``classes`` outputs). MAC layers use
    ``n:m`` weights. ``h`` and ``w`` must be even. The network input is ``records[0].x_q``.
    """
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise RecordError(f"random_network: h={h} and w={w} must be even and >= 2")
    fmt = dict(a_bits=a_bits, a_signed=True, mode=mode, mult_bits=mult_bits)
    mac = dict(fmt, n=n, m=m, w_bits=w_bits, y_bits=a_bits, acc_bits=acc_bits)
    conv1 = random_conv_record(rng, c_in=c_in, c_out=channels, h=h, w=w, batch=batch, relu=True,
                               name="conv1", **mac)
    pool = random_pool_record(rng, "maxpool", c=channels, h=h, w=w, batch=batch, name="pool",
                              x_q=conv1.y, z_x=conv1.z_y, inputs=("conv1",), **fmt)
    conv2 = random_conv_record(rng, c_in=channels, c_out=channels, h=h // 2, w=w // 2,
                               batch=batch, name="conv2", x_q=pool.y, z_x=pool.z_y,
                               inputs=("pool",), **mac)
    add, _ = random_add_record(rng, shape=pool.y.shape, a=pool.y, b=conv2.y, z_a=pool.z_y,
                               z_b=conv2.z_y, relu=True, name="add", inputs=("pool", "conv2"),
                               y_bits=a_bits, **fmt)
    gap = random_pool_record(rng, "gavgpool", c=channels, h=h // 2, w=w // 2, batch=batch,
                             name="gap", x_q=add.y, z_x=add.z_y, inputs=("add",), **fmt)
    lo, hi = qrange(a_bits, True)
    flat = LayerRecord(name="flatten", op=OpKind.FLATTEN, inputs=("gap",), a_bits=a_bits,
                       y_bits=a_bits, z_x=gap.z_y, z_y=gap.z_y, lo=lo, hi=hi, c_in=channels,
                       c_out=channels)
    fc = random_linear_record(rng, c_in=channels, c_out=classes, rows=batch, name="fc",
                              x_q=gap.y.reshape(batch, -1), z_x=gap.z_y, inputs=("flatten",),
                              **mac)
    records = [conv1, pool, conv2, add, gap, flat, fc]
    trace = run_network(records, conv1.x_q)
    return attach_results(records, trace)


def random_matmul_record(rng: np.random.Generator, *, p: int, k: int, c: int,
                         lead: tuple[int, ...] = (), a_bits: int = 8, a_signed: bool = True,
                         b_bits: int = 8, b_signed: bool = True, trans_b: bool = False,
                         params: str = "tensor", bias: str | None = None, y_bits: int = 8,
                         y_signed: bool = True, acc_bits: int = 32, mult_bits: int = 32,
                         mode: str = "half_even", relu: bool = False, name: str = "mm",
                         z_a: int | None = None, z_b: int | None = None,
                         inputs: tuple[str, str] = ("a", "b")) -> LayerRecord:
    """A random valid matmul ``a[*lead, p, k] @ b[*lead, k, c]`` with golden ``acc``/``y``.

    ``b`` is stored ``[*lead, c, k]`` when ``trans_b`` (``Q @ K^T``). ``x_q = a``, ``b_q = b``.
    ``params`` is one of :data:`MATMUL_PARAM_FORMS`; ``bias`` ``None`` or one of them (the
    optional ``bias_eff``). The real multiplier spreads ``y`` over its range (from the actual
    accumulators, as for MAC layers), times random per-row / per-column factors in ``[0.5, 2)``
    for the token-wise forms (those records say ``meta["input_specific"]``). Zero points are
    nonzero (random from the middle of each format unless given).
    """
    if params not in MATMUL_PARAM_FORMS or (bias is not None and bias not in MATMUL_PARAM_FORMS):
        raise RecordError(f"layer {name}: params={params!r} / bias={bias!r} must be one of "
                          f"{MATMUL_PARAM_FORMS} (bias also None)")
    a = _random_x(rng, (*lead, p, k), a_bits, a_signed)
    b = _random_x(rng, (*lead, c, k) if trans_b else (*lead, k, c), b_bits, b_signed)
    z_a = random_zero_point(rng, a_bits, a_signed) if z_a is None else int(z_a)
    z_b = random_zero_point(rng, b_bits, b_signed) if z_b is None else int(z_b)
    r = int(np.prod(lead, dtype=np.int64)) * p
    shape = {"tensor": (1,), "column": (c,), "row": (r, 1), "row_column": (r, c)}
    z_y, lo, hi = _out_format(rng, y_bits, y_signed, relu)
    da, db = max(abs(v - z_a) for v in qrange(a_bits, a_signed)), \
        max(abs(v - z_b) for v in qrange(b_bits, b_signed))
    bias_eff = None
    if bias is not None:
        span = int(np.sqrt(k) * da * db)
        bias_eff = rng.integers(-span, span + 1, size=shape[bias])
    worst = k * da * db + (int(np.abs(bias_eff).max()) if bias_eff is not None else 0)
    rec = LayerRecord(name=name, op=OpKind.MATMUL, inputs=inputs, a_bits=a_bits,
                      a_signed=a_signed, b_bits=b_bits, b_signed=b_signed, trans_b=trans_b,
                      y_bits=y_bits, y_signed=y_signed, acc_bits=acc_bits, mult_bits=mult_bits,
                      c_in=k, c_out=c, z_x=z_a, z_b=z_b, z_y=z_y, lo=lo, hi=hi, mode=mode,
                      M0=np.ones(1, np.int64), sh=np.zeros(1, np.int64), bias_eff=bias_eff,
                      x_q=a, b_q=b, wrap_ok=worst > (1 << (acc_bits - 1)) - 1,
                      meta={"generator": "random_matmul_record",
                            "input_specific": params in ("row", "row_column")
                            or bias in ("row", "row_column")})
    acc = run_layer(rec, a, b).acc.reshape(r, c)
    base = spread_multiplier(acc.reshape(-1, 1), y_bits, y_signed, mult_bits)   # one scalar
    m = np.broadcast_to(base, shape[params]).astype(np.float64)
    if params in ("column", "row_column"):
        m = m * rng.uniform(0.5, 2.0, size=(1, c) if params == "row_column" else c)
    if params in ("row", "row_column"):
        m = m * rng.uniform(0.5, 2.0, size=(r, 1))
    M0, sh = quantize_multiplier(np.clip(m, 2.0 ** -40, 2.0 ** (mult_bits - 1)), mult_bits)
    rec = rec.replace(M0=M0, sh=sh)
    res = run_layer(rec, a, b)
    return rec.replace(acc=res.acc, y=res.y).validate()


def with_profile(rng: np.random.Generator, rec: LayerRecord, profile: RoundProfile | str
                 ) -> LayerRecord:
    """``rec`` (linear or conv with ``acc_bits = 32``) under a runtime rounding ``profile``.

    Float scales are drawn so that ``s_x * s_w[c] / s_y`` is the record's multiplier
    ``M0 / 2^sh`` (token-wise records: ``s_x`` per row, ``s_w`` from row 0), then ``(M0, sh)``
    come from :func:`t2c_sim.rounding_profiles.profile_params` as an importer makes them, and the
    golden ``acc``/``y`` are recomputed under the profile.
    """
    profile = RoundProfile(profile)
    m = rec.M0 / np.exp2(rec.sh.astype(np.float64))
    s_y = float(rng.uniform(0.01, 0.1))
    if rec.M0.ndim == 2:                   # token-wise: one s_x per row
        s_x = float(rng.uniform(0.005, 0.05)) * m[:, 0] / m[0, 0]
        s_w = m[0] * s_y / s_x[0]
        pairs = [profile_params(profile, float(sx), s_w, s_y) for sx in s_x]
        M0, sh = np.stack([q[0] for q in pairs]), np.stack([q[1] for q in pairs])
    else:
        s_x = float(rng.uniform(0.005, 0.05))
        M0, sh = profile_params(profile, s_x, m * s_y / s_x, s_y)
    out = rec.replace(mode=profile, M0=M0, sh=sh, acc=None, y=None)
    res = run_layer(out)
    return out.replace(acc=res.acc, y=res.y).validate()
