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
  the layer's input/output shapes (``acc`` only for linear, conv and avg pools).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundMode, qrange
from t2c_sim.errors import RecordError, SparsityError
from t2c_sim.layout import padded_len
from t2c_sim.sparse.nm import check_nm, decompress

ARRAY_FIELDS = ("w_q", "values", "indices", "bias_eff", "M0", "sh", "x_q", "acc", "y")
MAC_OPS = (OpKind.LINEAR, OpKind.CONV2D)


def _pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    try:
        a, b = v
        return int(a), int(b)
    except (TypeError, ValueError):
        raise RecordError(f"{name} must be an int or a pair of ints, got {v!r}") from None


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
    mode: RoundMode = RoundMode.HALF_EVEN
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

    def __post_init__(self) -> None:
        self.op = OpKind(self.op)
        self.mode = RoundMode.parse(self.mode)
        self.inputs = tuple(self.inputs)
        self.stride = _pair(self.stride, "stride")
        self.padding = _pair(self.padding, "padding")
        self.dilation = _pair(self.dilation, "dilation")
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
        if self.x_q is not None and self.x_q.size:
            lo, hi = self.x_range
            if self.x_q.min() < lo or self.x_q.max() > hi:
                raise bad(f"x_q outside the input range [{lo}, {hi}]")
        return self

    # ---- (de)serialisation helpers used by t2c_sim.export ---------------------------------
    def scalars(self) -> dict[str, Any]:
        """JSON-able dict of every non-array field."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ARRAY_FIELDS:
                continue
            v = getattr(self, f.name)
            if isinstance(v, (OpKind, RoundMode)):
                v = v.value
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: getattr(self, f) for f in ARRAY_FIELDS if getattr(self, f) is not None}
