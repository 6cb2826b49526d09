"""The integer layer record (SPEC section 5): everything needed to reproduce one layer.

A record is produced by the fuse step (or built by hand / randomly in tests), executed by the
golden model, saved by :mod:`t2c_sim.export`, and fed to the RTL by :mod:`t2c_sim.cosim`.

Layouts (all integer arrays are ``int64``):

- activations are channel-last: conv ``x[B, H, W, C]``, linear ``x[..., C_in]`` (rows ``P`` =
  product of the leading dims), flatten turns ``[B, H, W, C]`` into ``[B, H*W*C]`` (fuse permutes
  the next linear layer's columns from torch's ``(c, h, w)`` order to this ``(h, w, c)`` order);
- ``w_q[C_out, K]`` is in reduction order. Linear: ``K = pad(C_in, M)``. Conv: with
  ``C_g = C_in / groups`` and ``C_gp = pad(C_g, M)``, ``k = (kh * KW + kw) * C_gp + c``; output
  channel ``o`` reads input channels ``(o // (C_out/groups)) * C_g + c``. Padding weights are 0;
- ``values/indices[C_out, K/M*N]`` are the N:M compressed ``w_q`` (SPEC section 4);
- ``bias_eff, M0, sh`` are per output channel ``[C_out]``; a linear layer with token-wise
  (dynamic, per-row) activation scales stores them as ``[P, C_out]`` (``P`` = rows of ``x_q``;
  a golden-model feature the RTL refuses); avg pools use length-1 arrays;
  a residual add stores ``M0 = [Ma, Mb]``, ``sh = [sh]``, ``z_x = z_a`` and ``z_b``;
- ``x_q`` (input), ``acc`` and ``y`` (golden results) are optional and, when present, have
  the layer's input/output shapes (``acc`` only for linear, conv, avg pools and matmul).

Transformer ops (``docs/numerics.md`` sections 7-10; their integer constants are named in
``params``, a dict of ints or int tuples, one schema per op in :data:`OP_PARAMS`):

- matmul: inputs ``a[..., P, K]`` (format ``a_bits/a_signed``, zero point ``z_x``) and
  ``b[..., K, C]`` (``b[..., C, K]`` when ``trans_b``; format ``b_bits/b_signed``, ``z_b``);
  ``c_in = K``, ``c_out = C``; ``M0, sh`` and the optional ``bias_eff`` are ``[1]``, ``[C]`` or
  token-wise ``[R, 1]`` / ``[R, C]`` (``R`` = product of the output's leading dims);
- softmax: ``table[2^a_bits]`` (``table[d] = round(2^F exp(-s_x d))``), ``M0 = [Mo]``,
  ``sh = [sho]``, ``params = {frac_bits}``; gelu: ``table[2^a_bits]`` (output integers), or
  ``table[R, 2^a_bits]`` for a token-wise output (one table per row ``R`` of the flattened
  leading dims);
- layernorm: ``gamma_q[C]``, ``beta_q[C]`` (``c_in = c_out = C``), or ``[R, C]`` for a
  token-wise output (row ``r`` of the input uses row ``r``), ``params = {eps_q, sqrt_shift,
  g_shift}``;
- concat: inputs ``x_0 .. x_{n-1}`` (``1 <= n <= MAX_CONCAT_INPUTS``), ``M0[n]``, ``sh[n]``,
  ``params = {axis, z_in, bits_in, signed_in}`` (axis of the integer layout, negative, default
  -2 = tokens; per-input zero points and formats, required for ``n > 2``; absent, input 0 has
  ``z_x``, ``a_bits/a_signed`` and input 1 ``z_b``, ``b_bits/b_signed``, which the params must
  agree with when both are given: :func:`concat_formats`); optional ``const_q[Tc, D]`` (class
  token, already in the output format, placed first; axis -2 only);
- add with one input: ``const_q`` is operand ``b`` (position embedding; broadcast over the
  leading axes), in the record's input format with zero point ``z_b``;
- reshape: ``params = {shape, perm, out_shape}`` (each optional); slice: ``{axis, start, stop}``;
- ``b_q`` (optional, like ``x_q``) is the second input of a two-input op, so that the record
  alone reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from math import isqrt
from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundMode, RoundProfile, parse_rounding, qrange
from t2c_sim.errors import NumericsError, RecordError, SparsityError
from t2c_sim.layout import padded_len
from t2c_sim.rounding_profiles import check_ort_add_params, check_params
from t2c_sim.sparse.nm import check_nm, decompress

ARRAY_FIELDS = ("w_q", "values", "indices", "bias_eff", "M0", "sh", "x_q", "acc", "y",
                "const_q", "table", "gamma_q", "beta_q", "b_q")
MAC_OPS = (OpKind.LINEAR, OpKind.CONV2D)
TABLE_MAX_BITS = 16  # softmax / gelu tables have 2^a_bits entries
# Integer constants each op keeps in ``params`` (docs/numerics.md); other ops take none.
OP_PARAMS: dict[OpKind, tuple[str, ...]] = {
    OpKind.SOFTMAX: ("frac_bits",),
    OpKind.LAYERNORM: ("eps_q", "sqrt_shift", "g_shift"),
    OpKind.RESHAPE: ("shape", "perm", "out_shape"),
    OpKind.SLICE: ("axis", "start", "stop"),
    OpKind.CONCAT: ("axis", "z_in", "bits_in", "signed_in"),
}
MAX_CONCAT_INPUTS = 64


def _pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    try:
        a, b = v
        return int(a), int(b)
    except (TypeError, ValueError):
        raise RecordError(f"{name} must be an int or a pair of ints, got {v!r}") from None


def _norm_params(name: str, params: Any) -> dict[str, Any]:
    """``params`` as ``{str: int | tuple[int, ...]}`` (JSON lists become tuples)."""
    if not isinstance(params, dict):
        raise RecordError(f"params must be a mapping, got {type(params).__name__}", layer=name)
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            items = list(v)
        else:
            items = [v]
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
            raise RecordError(f"params[{k!r}] must be an int or a list of ints, got {v!r}", layer=name)
        out[str(k)] = tuple(int(i) for i in items) if isinstance(v, (list, tuple)) else int(v)
    return out


@dataclass
class LayerRecord:
    """One integer layer. See the module docstring for layouts; SPEC section 2 for semantics."""

    name: str
    op: OpKind
    inputs: tuple[str, ...] = ("input",)
    # formats
    a_bits: int = 8
    a_signed: bool = True
    w_bits: int = 8
    y_bits: int = 8
    y_signed: bool = True
    acc_bits: int = 32
    mult_bits: int = 32
    n: int = 1
    m: int = 1
    # shapes
    c_in: int = 0
    c_out: int = 0
    kh: int = 1
    kw: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    h: int = 0
    w: int = 0
    # requantizer
    z_x: int = 0
    z_y: int = 0
    z_b: int = 0
    lo: int = -128
    hi: int = 127
    mode: RoundMode | RoundProfile = RoundMode.HALF_EVEN  # a profile: SPEC section 10
    wrap_ok: bool = False  # user opted in to accumulator wrap semantics (skips the overflow check)
    # integer arrays
    w_q: np.ndarray | None = None
    values: np.ndarray | None = None
    indices: np.ndarray | None = None
    bias_eff: np.ndarray | None = None
    M0: np.ndarray | None = None
    sh: np.ndarray | None = None
    x_q: np.ndarray | None = None
    acc: np.ndarray | None = None
    y: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # free-form provenance (scales, module)
    # transformer ops (see the module docstring)
    b_bits: int = 8            # format of the second operand of matmul / concat
    b_signed: bool = True
    trans_b: bool = False      # matmul: b is stored [..., C, K] (Q @ K^T)
    params: dict[str, Any] = field(default_factory=dict)  # op-specific integer constants
    const_q: np.ndarray | None = None
    table: np.ndarray | None = None
    gamma_q: np.ndarray | None = None
    beta_q: np.ndarray | None = None
    b_q: np.ndarray | None = None  # second input of a two-input op (add, matmul, concat)

    def __post_init__(self) -> None:
        self.op = OpKind(self.op)
        self.mode = parse_rounding(self.mode)
        self.inputs = tuple(self.inputs)
        self.stride = _pair(self.stride, "stride")
        self.padding = _pair(self.padding, "padding")
        self.dilation = _pair(self.dilation, "dilation")
        self.params = _norm_params(self.name, self.params)
        for f in ARRAY_FIELDS:
            v = getattr(self, f)
            if v is not None:
                a = np.asarray(v)
                if a.dtype.kind not in "iu":
                    raise RecordError(f"{f} must be integers, got dtype {a.dtype}", layer=self.name)
                setattr(self, f, a.astype(np.int64))

    # ---- derived shapes -------------------------------------------------------------
    @property
    def c_in_g(self) -> int:
        """Input channels per group."""
        return self.c_in // self.groups

    @property
    def c_in_p(self) -> int:
        """Input channels per group padded up to a multiple of M."""
        return padded_len(self.c_in_g, self.m)

    @property
    def k(self) -> int:
        """Reduction length per output channel (padded)."""
        if self.op is OpKind.LINEAR:
            return padded_len(self.c_in, self.m)
        return self.kh * self.kw * self.c_in_p

    @property
    def k_real(self) -> int:
        """Reduction length without N:M padding."""
        if self.op is OpKind.LINEAR:
            return self.c_in
        return self.kh * self.kw * self.c_in_g

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output spatial size of conv/pool layers."""
        if self.op is OpKind.GAVGPOOL:
            return 1, 1
        oh = (self.h + 2 * self.padding[0] - self.dilation[0] * (self.kh - 1) - 1) // self.stride[0] + 1
        ow = (self.w + 2 * self.padding[1] - self.dilation[1] * (self.kw - 1) - 1) // self.stride[1] + 1
        return oh, ow

    @property
    def x_range(self) -> tuple[int, int]:
        return qrange(self.a_bits, self.a_signed)

    @property
    def y_range(self) -> tuple[int, int]:
        return qrange(self.y_bits, self.y_signed)

    @property
    def b_range(self) -> tuple[int, int]:
        """Range of the second operand of a matmul / concat (``b_bits``, ``b_signed``)."""
        return qrange(self.b_bits, self.b_signed)

    def macs(self, batch: int = 1) -> int:
        """Dense multiply-accumulates (without N:M padding) for ``batch`` images / rows."""
        if self.op is OpKind.LINEAR:
            return batch * self.c_in * self.c_out
        if self.op is OpKind.CONV2D:
            oh, ow = self.out_hw
            return batch * oh * ow * self.c_out * self.k_real
        return 0

    def replace(self, **changes: Any) -> LayerRecord:
        return replace(self, **changes)

    # ---- validation -------------------------------------------------------------------
    def validate(self) -> LayerRecord:
        """Check internal consistency; raise :class:`RecordError` naming the layer and field."""
        def bad(msg: str) -> RecordError:
            return RecordError(msg, layer=self.name)

        if not 1 <= self.n <= self.m:
            raise bad(f"need 1 <= N <= M, got {self.n}:{self.m}")
        if self.lo > self.hi:
            raise bad(f"clamp bounds lo={self.lo} > hi={self.hi}")
        ylo, yhi = self.y_range
        if self.lo < ylo or self.hi > yhi:
            raise bad(f"clamp bounds [{self.lo}, {self.hi}] exceed the output range [{ylo}, {yhi}]")
        if self.op in MAC_OPS:
            if self.c_in <= 0 or self.c_out <= 0:
                raise bad("c_in and c_out must be positive")
            if self.c_in % self.groups or self.c_out % self.groups:
                raise bad(f"groups={self.groups} must divide c_in={self.c_in} and c_out={self.c_out}")
            if self.w_q is None:
                raise bad("w_q is missing")
            if self.w_q.shape != (self.c_out, self.k):
                raise bad(f"w_q has shape {self.w_q.shape}, expected {(self.c_out, self.k)}")
            wlo, whi = qrange(self.w_bits, True)
            if self.w_q.size and (self.w_q.min() < wlo or self.w_q.max() > whi):
                raise bad(f"w_q outside the signed {self.w_bits}-bit range")
            try:
                check_nm(self.w_q, self.n, self.m, name=f"layer {self.name} w_q")
            except SparsityError as e:
                raise e.recast(RecordError) from None
            if (self.values is None) != (self.indices is None):
                raise bad("values and indices must both be present or both absent")
            if self.values is not None:
                dense = decompress(self.values, self.indices, self.n, self.m)
                if not np.array_equal(dense, self.w_q):
                    raise bad("decompress(values, indices) != w_q")
            for f in ("bias_eff", "M0", "sh"):
                a = getattr(self, f)
                # [C_out]; token-wise activation scales (linear only, golden-model feature):
                # [P, C_out], one row per token of x_q's flattened leading dims.
                ok = a is not None and (a.shape == (self.c_out,) or (
                    self.op is OpKind.LINEAR and a.ndim == 2 and a.shape[1] == self.c_out))
                if not ok:
                    raise bad(f"{f} must have shape ({self.c_out},) (or (P, {self.c_out}) for a "
                              f"token-wise linear), got {None if a is None else a.shape}")
        if self.M0 is not None and (self.M0.min() < 0 or self.M0.max() >= (1 << self.mult_bits)):
            raise bad(f"M0 outside the unsigned {self.mult_bits}-bit range")
        if self.sh is not None and (self.sh.min() < 0 or self.sh.max() > 63):
            raise bad("sh outside [0, 63]")
        if isinstance(self.mode, RoundProfile):
            self._validate_profile(bad)
        if self.x_q is not None and self.x_q.size:
            lo, hi = self.x_range
            if self.x_q.min() < lo or self.x_q.max() > hi:
                raise bad(f"x_q outside the input range [{lo}, {hi}]")
        _validate_transformer_op(self, bad)
        return self

    def _validate_profile(self, bad: Any) -> None:
        """A runtime rounding profile (SPEC section 10): linear/conv (every profile), average pools
        and the two-input residual add (``ort_fp32``: ONNX Runtime's kernels), int32 accumulator,
        the profile's M0/sh."""
        prof = self.mode.value
        ort = self.mode is RoundProfile.ORT_FP32
        pool = self.op in (OpKind.AVGPOOL, OpKind.GAVGPOOL)
        add = self.op is OpKind.ADD and self.const_q is None
        if self.op not in MAC_OPS and not (ort and (pool or add)):
            raise bad(f"mode: rounding profile {prof} applies to linear and conv2d requantizers "
                      f"(ort_fp32 also to average pools and the residual add), not {self.op.value}")
        if self.acc_bits != 32:
            raise bad(f"mode: rounding profile {prof} needs acc_bits = 32 (the runtime's int32 "
                      f"accumulator), got {self.acc_bits}")
        try:
            if add:
                if self.a_bits > 8:
                    raise NumericsError(f"ONNX Runtime's QLinearAdd takes 8-bit inputs, got "
                                        f"a_bits = {self.a_bits}")
                check_ort_add_params(self.M0, self.sh)
            else:
                if pool and (self.M0 is None or self.sh is None or self.M0.shape != (1,)
                             or self.sh.shape != (1,)):
                    raise NumericsError("an average pool needs M0 and sh of shape (1,)")
                check_params(self.mode, self.M0, self.sh)
        except NumericsError as e:
            raise bad(f"M0/sh: {e}") from None

    # ---- (de)serialisation helpers used by t2c_sim.export ---------------------------------
    def scalars(self) -> dict[str, Any]:
        """JSON-able dict of every non-array field."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ARRAY_FIELDS:
                continue
            v = getattr(self, f.name)
            if isinstance(v, (OpKind, RoundMode, RoundProfile)):
                v = v.value
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: getattr(self, f) for f in ARRAY_FIELDS if getattr(self, f) is not None}


# ---- transformer ops (docs/numerics.md sections 7-10) -----------------------------------------
def _param_shape_ok(a: np.ndarray | None, c: int) -> bool:
    """Requantizer parameters of a matmul: ``[1]``, ``[C]`` or token-wise ``[R, 1]``, ``[R, C]``."""
    return a is not None and (a.shape in ((1,), (c,)) or (a.ndim == 2 and a.shape[1] in (1, c)))


def _validate_transformer_op(rec: LayerRecord, bad: Any) -> None:
    """Structure and integer bounds of the transformer ops; ``bad(msg)`` makes the error."""
    op, p = rec.op, rec.params
    allowed = OP_PARAMS.get(op, ())
    unknown = sorted(set(p) - set(allowed))
    if unknown:
        raise bad(f"params {unknown} are not used by {op.value} (known: {list(allowed)})")
    if rec.const_q is not None and op not in (OpKind.ADD, OpKind.CONCAT):
        raise bad(f"const_q is only used by add and concat, not {op.value}")
    if rec.b_q is not None and rec.b_q.size:
        lo, hi = rec.x_range if op is OpKind.ADD else rec.b_range
        if op not in (OpKind.ADD, OpKind.MATMUL, OpKind.CONCAT) or len(rec.inputs) != 2:
            raise bad(f"b_q is the second input of a two-input add, matmul or concat, not {op.value}")
        if int(rec.b_q.min()) < lo or int(rec.b_q.max()) > hi:
            raise bad(f"b_q outside the second input's range [{lo}, {hi}]")

    def need(*names: str) -> None:
        for f in names:
            if getattr(rec, f) is None:
                raise bad(f"{f} is missing")

    def need_params(*keys: str) -> None:
        for k in keys:
            if not isinstance(p.get(k), int):
                raise bad(f"params[{k!r}] is missing (an int is required)")

    def in_range(f: str, lo: int, hi: int) -> None:
        a = getattr(rec, f)
        if a is not None and a.size and (int(a.min()) < lo or int(a.max()) > hi):
            raise bad(f"{f} outside [{lo}, {hi}]")

    if op is OpKind.ADD and rec.const_q is not None:
        if len(rec.inputs) != 1:
            raise bad("an add with const_q takes exactly one input")
        in_range("const_q", *rec.x_range)
    elif op is OpKind.MATMUL:
        if len(rec.inputs) != 2:
            raise bad(f"matmul takes two inputs, got {len(rec.inputs)}")
        if rec.c_in <= 0 or rec.c_out <= 0:
            raise bad("matmul needs c_in = K > 0 and c_out = C > 0")
        need("M0", "sh")
        for f in ("M0", "sh", "bias_eff"):
            a = getattr(rec, f)
            if (a is not None or f != "bias_eff") and not _param_shape_ok(a, rec.c_out):
                raise bad(f"{f} must have shape (1,), ({rec.c_out},), (R, 1) or (R, {rec.c_out}), "
                          f"got {None if a is None else a.shape}")
        if rec.M0.shape != rec.sh.shape:
            raise bad(f"M0 {rec.M0.shape} and sh {rec.sh.shape} differ in shape")
        if not isinstance(rec.b_bits, int) or not 1 <= rec.b_bits <= 32:
            raise bad(f"b_bits must be an int in 1..32, got {rec.b_bits!r}")
    elif op in (OpKind.SOFTMAX, OpKind.GELU):
        if rec.a_bits > TABLE_MAX_BITS:
            raise bad(f"{op.value} input has {rec.a_bits} bits; tables allow at most {TABLE_MAX_BITS}")
        need("table")
        n_t = 1 << rec.a_bits
        per_row = op is OpKind.GELU and rec.table.ndim == 2 and rec.table.shape[1] == n_t
        if rec.table.shape != (n_t,) and not per_row:
            raise bad(f"table must have shape ({n_t},)"
                      + (f" (or (R, {n_t}) per output row)" if op is OpKind.GELU else "")
                      + f", got {rec.table.shape}")
        if op is OpKind.GELU:
            in_range("table", rec.lo, rec.hi)
        else:
            need_params("frac_bits")
            f = p["frac_bits"]
            if not 1 <= f <= 30:
                raise bad(f"params['frac_bits'] = {f} outside [1, 30]")
            if int(rec.table[0]) != 1 << f:
                raise bad(f"table[0] must be 2^frac_bits = {1 << f}, got {int(rec.table[0])}")
            in_range("table", 0, 1 << f)
            need("M0", "sh")
            if rec.M0.shape != (1,) or rec.sh.shape != (1,):
                raise bad("softmax needs M0 = [Mo] and sh = [sho]")
            if f + rec.mult_bits > 62:
                raise bad(f"frac_bits + mult_bits = {f + rec.mult_bits} > 62 (table * Mo overflows)")
    elif op is OpKind.LAYERNORM:
        check_layernorm(rec)
    elif op is OpKind.CONCAT:
        n = len(rec.inputs)
        if not 1 <= n <= MAX_CONCAT_INPUTS:
            raise bad(f"concat takes 1 to {MAX_CONCAT_INPUTS} inputs, got {n}")
        need("M0", "sh")
        if rec.M0.shape != (n,) or rec.sh.shape != (n,):
            raise bad(f"concat of {n} input(s) needs M0 and sh of shape ({n},), got "
                      f"{rec.M0.shape} and {rec.sh.shape}")
        concat_formats(rec)
        if rec.const_q is not None:
            if rec.const_q.ndim != 2:
                raise bad(f"const_q must be [tokens, features], got shape {rec.const_q.shape}")
            if p.get("axis", -2) != -2:
                raise bad("const_q (constant tokens) needs a concat along the token axis -2")
            in_range("const_q", *rec.y_range)
    elif op is OpKind.RESHAPE:
        for k in ("shape", "out_shape"):
            v = p.get(k, ())
            if not isinstance(v, tuple) or sum(d == -1 for d in v) > 1 or any(d == 0 or d < -1 for d in v):
                raise bad(f"params[{k!r}] must be a list of positive ints with at most one -1")
        perm = p.get("perm", ())
        if not isinstance(perm, tuple) or sorted(perm) != list(range(len(perm))):
            raise bad(f"params['perm'] = {perm!r} is not a permutation of 0..n-1")
    elif op is OpKind.SLICE:
        need_params("axis", "start", "stop")
        if p["axis"] < 1 or not 0 <= p["start"] < p["stop"]:
            raise bad(f"slice needs axis >= 1 (0 is the batch axis) and 0 <= start < stop, got "
                      f"axis={p['axis']} start={p['start']} stop={p['stop']}")


def concat_formats(rec: LayerRecord) -> list[tuple[int, int, int]]:
    """``[(lo, hi, z)]`` of every concat input (the ``params`` schema in the module docstring).

    Raises :class:`RecordError` naming the layer for a bad ``axis``, ``z_in``, ``bits_in`` or
    ``signed_in`` (wrong length or type, disagreeing with ``z_x``/``a_bits``/``z_b``/``b_bits``).
    """
    def bad(msg: str) -> RecordError:
        return RecordError(msg, layer=rec.name)

    n, p = len(rec.inputs), rec.params
    ax = p.get("axis", -2)
    if not isinstance(ax, int) or ax >= 0:
        raise bad(f"params['axis'] = {ax!r}: the concat axis counts from the end (-1, -2, ...)")
    given = [k for k in ("z_in", "bits_in", "signed_in") if k in p]
    if n > 2 and len(given) < 3:
        raise bad(f"a concat of {n} inputs needs params z_in, bits_in and signed_in")
    fields_ = [(rec.z_x, rec.a_bits, int(rec.a_signed)), (rec.z_b, rec.b_bits, int(rec.b_signed))]
    cols = list(zip(*fields_[:min(n, 2)]))
    for i, k in enumerate(("z_in", "bits_in", "signed_in")):
        if k not in p:
            continue
        v = p[k]
        if not isinstance(v, tuple) or len(v) != n:
            raise bad(f"params[{k!r}] must be a list of {n} ints, got {v!r}")
        if tuple(v[:len(cols[i])]) != tuple(cols[i]):
            raise bad(f"params[{k!r}] = {list(v)} disagrees with the record's "
                      f"{('z_x/z_b', 'a_bits/b_bits', 'a_signed/b_signed')[i]} {list(cols[i])}")
    z = p.get("z_in", tuple(f[0] for f in fields_[:n]))
    bits = p.get("bits_in", tuple(f[1] for f in fields_[:n]))
    sgn = p.get("signed_in", tuple(f[2] for f in fields_[:n]))
    out = []
    for i in range(n):
        if not 1 <= bits[i] <= 32 or sgn[i] not in (0, 1):
            raise bad(f"concat input {i}: bits {bits[i]} outside 1..32 or signed {sgn[i]} not 0/1")
        lo, hi = qrange(bits[i], bool(sgn[i]))
        out.append((lo, hi, int(z[i])))
    return out


def check_layernorm(rec: LayerRecord) -> None:
    """LayerNorm record: shapes, params and the int64 bounds of docs/numerics.md section 9.

    Raises :class:`RecordError` naming the layer and the field. The bounds: ``C^2 max|x|^2 <
    2^62`` (the sums), ``V_max * 4^sqrt_shift + eps_q < 2^62`` with ``V_max = floor(C^2
    (qmax-qmin)^2 / 4)`` (the square root's argument), ``max|gamma_q| * ceil(sqrt(C-1)) +
    max|beta_q| <= 2^31`` and ``0 <= g_shift <= 31`` (numerator and divisor of the division).
    """
    def bad(msg: str) -> RecordError:
        return RecordError(msg, layer=rec.name)

    c = rec.c_out
    if c <= 0 or rec.c_in not in (0, c):
        raise bad(f"layernorm needs c_out = C > 0 (and c_in = C), got c_in={rec.c_in} c_out={c}")
    for f in ("gamma_q", "beta_q"):
        a = getattr(rec, f)
        if a is None or not (a.shape == (c,) or (a.ndim == 2 and a.shape[1] == c)):
            raise bad(f"{f} must have shape ({c},) (or (R, {c}) per output row), got "
                      f"{None if a is None else a.shape}")
    if rec.gamma_q.shape != rec.beta_q.shape:
        raise bad(f"gamma_q {rec.gamma_q.shape} and beta_q {rec.beta_q.shape} differ in shape")
    for k in OP_PARAMS[OpKind.LAYERNORM]:
        if not isinstance(rec.params.get(k), int):
            raise bad(f"params[{k!r}] is missing (an int is required)")
    e, k, gb = rec.params["eps_q"], rec.params["sqrt_shift"], rec.params["g_shift"]
    lo, hi = rec.x_range
    xmax = max(-lo, hi)
    if c * c * xmax * xmax >= 1 << 62:
        raise bad(f"C = {c} channels of {rec.a_bits}-bit inputs overflow the int64 sums")
    if e < 0 or k < 0 or not 0 <= gb <= 31:
        raise bad(f"need eps_q >= 0, sqrt_shift >= 0, 0 <= g_shift <= 31; got {e}, {k}, {gb}")
    v_max = c * c * (hi - lo) ** 2 // 4
    if (v_max << (2 * k)) + e >= 1 << 62:
        raise bad(f"C^2 var * 4^sqrt_shift + eps_q can reach 2^62 (V_max = {v_max}, "
                  f"sqrt_shift = {k}, eps_q = {e})")
    g = int(np.abs(rec.gamma_q).max())
    b = int(np.abs(rec.beta_q).max())
    r = isqrt(c - 1) + (isqrt(c - 1) ** 2 != c - 1)     # ceil(sqrt(C - 1))
    if g * r + b > 1 << 31:
        raise bad(f"max|gamma_q| * ceil(sqrt(C-1)) + max|beta_q| = {g * r + b} > 2^31")
