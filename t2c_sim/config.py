"""Frozen configuration dataclasses and ``str`` enums shared by every stage.

Validated once, at construction; errors name the field. Loading from YAML (with the file
name in the error) lives in the callers that read files (recipes, suites, hw configs).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from t2c_sim.errors import ConfigError, NMParamsError


class RoundMode(str, Enum):
    """Rounding of ``v / 2**s`` in the requantizer (SPEC section 2).

    The integer ``code`` is what the RTL's ``round_mode`` control register holds.
    """

    HALF_EVEN = "half_even"
    HALF_UP = "half_up"
    HALF_AWAY = "half_away"
    FLOOR = "floor"

    @property
    def code(self) -> int:
        return _ROUND_CODES[self]

    @classmethod
    def parse(cls, value: Any) -> RoundMode:
        if isinstance(value, RoundMode):
            return value
        try:
            return cls(str(value))
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ConfigError(f"unknown rounding mode {value!r} (expected one of {names})",
                              key="mode") from None


_ROUND_CODES = {RoundMode.HALF_EVEN: 0, RoundMode.HALF_UP: 1, RoundMode.HALF_AWAY: 2,
                RoundMode.FLOOR: 3}


class RoundProfile(str, Enum):
    """Rounding profile of a deployed runtime (SPEC section 10), declared instead of a RoundMode.

    The accumulator is the same; only the step from ``acc`` to ``y`` follows the runtime, and
    the record's ``M0``/``sh`` hold that profile's integers (``t2c_sim.rounding_profiles``).
    """

    ORT_FP32 = "ort_fp32"            # ONNX Runtime CPU (MLAS): float32 scale, round half to even
    TFLITE_DOUBLE = "tflite_double"  # TFLite reference / gemmlowp: SRDHM then RoundingDivideByPOT
    TFLITE_SINGLE = "tflite_single"  # TFLITE_SINGLE_ROUNDING and ruy: one rounding shift

    @property
    def code(self) -> int:
        """The RTL requantizer's mode code (``rtl/t2c_requant.v``): 4, 5, 6 after the four
        section-2 modes (a build with ``profiles = 0`` lacks them; the host refuses such records)."""
        return _PROFILE_CODES[self]


_PROFILE_CODES = {RoundProfile.ORT_FP32: 4, RoundProfile.TFLITE_DOUBLE: 5,
                  RoundProfile.TFLITE_SINGLE: 6}


def parse_rounding(value: Any) -> RoundMode | RoundProfile:
    """A section-2 :class:`RoundMode` or a runtime :class:`RoundProfile`, from either or its name.

    >>> parse_rounding("half_up"), parse_rounding("tflite_double")
    (<RoundMode.HALF_UP: 'half_up'>, <RoundProfile.TFLITE_DOUBLE: 'tflite_double'>)
    """
    if isinstance(value, (RoundMode, RoundProfile)):
        return value
    for cls in (RoundMode, RoundProfile):
        try:
            return cls(str(value))
        except ValueError:
            pass
    names = ", ".join([m.value for m in RoundMode] + [p.value for p in RoundProfile])
    raise ConfigError(f"unknown rounding mode or profile {value!r} (expected one of {names})",
                      key="mode")


class OpKind(str, Enum):
    """Kinds of integer layer records."""

    LINEAR = "linear"
    CONV2D = "conv2d"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GAVGPOOL = "gavgpool"
    ADD = "add"
    FLATTEN = "flatten"
    # transformer ops (docs/numerics.md sections 7-10)
    MATMUL = "matmul"        # activation x activation matmul (Q @ K^T, attn @ V)
    SOFTMAX = "softmax"      # integer softmax over the last axis (exp table + exact division)
    LAYERNORM = "layernorm"  # integer LayerNorm over the last axis (exact isqrt + division)
    GELU = "gelu"            # elementwise table lookup (GELU fixed at fuse time)
    CONCAT = "concat"        # concat along the token axis (-2) with requantization
    RESHAPE = "reshape"      # data movement: reshape / permute the non-batch axes
    SLICE = "slice"          # data movement: a range of one non-batch axis


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range of a ``bits``-bit operand: signed ``[-2^(b-1), 2^(b-1)-1]``, unsigned ``[0, 2^b-1]``.

    >>> qrange(8, True), qrange(4, False)
    ((-128, 127), (0, 15))
    """
    if not isinstance(bits, int) or bits < 1 or bits > 32:
        raise ConfigError(f"bit width must be an int in 1..32, got {bits!r}", key="bits")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@dataclass(frozen=True)
class QuantSpec:
    """Integer format of a tensor: ``bits`` (2..8 for operands, up to 32 for others), ``signed``.

    The one place the integer range of a format is derived (:func:`qrange`): quantizers, the
    fuse step's tensor formats and the records all ask it.

    >>> s = QuantSpec.from_range(0, 255); (s.bits, s.signed, s.qmin, s.qmax, s.max_abs)
    (8, False, 0, 255, 255)
    """

    bits: int = 8
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 32:
            raise ConfigError(f"bits must be an int in 2..32, got {self.bits!r}", key="bits")

    @classmethod
    def from_range(cls, qmin: int, qmax: int) -> QuantSpec:
        """The format whose range is exactly ``[qmin, qmax]`` (a full signed or unsigned range)."""
        n = qmax - qmin + 1
        bits = int(round(math.log2(n))) if n > 0 else 0
        if n <= 1 or (1 << bits) != n or qmin not in (0, -(1 << (bits - 1))):
            raise ConfigError(f"integer range [{qmin}, {qmax}] is not a signed or unsigned b-bit "
                              "range", key="bits")
        return cls(bits, qmin < 0)

    @property
    def qmin(self) -> int:
        return qrange(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.bits, self.signed)[1]

    @property
    def max_abs(self) -> int:
        """``max |q|`` over the range (the worst-case operand magnitude)."""
        return max(-self.qmin, self.qmax)


def nm_params(n: Any, m: Any) -> tuple[int, int]:
    """Check N:M parameters: integers (Python or NumPy, not bool) with ``1 <= N <= M``.

    The one check every N:M routine runs (config, the NumPy N:M format, the torch pruners).
    Returns ``(int(n), int(m))``; raises :class:`NMParamsError` (key ``nm``) otherwise.

    >>> nm_params(2, 4)
    (2, 4)
    """
    ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (n, m))
    if not ok or not 1 <= n <= m:
        raise NMParamsError(f"need integers 1 <= N <= M, got N={n!r} M={m!r}", key="nm")
    return int(n), int(m)


@dataclass(frozen=True)
class SparsitySpec:
    """N:M structured sparsity: at most ``n`` nonzeros in every group of ``m`` along k.

    ``n == m`` is dense. Indices are stored in ``idx_bits = ceil(log2 m)`` bits (at least 1).
    """

    n: int = 1
    m: int = 1

    def __post_init__(self) -> None:
        nm_params(self.n, self.m)
        if self.m > 256:
            raise ConfigError(f"M={self.m} is larger than 256", key="nm")

    @property
    def dense(self) -> bool:
        return self.n == self.m

    @property
    def idx_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.m)))

    @classmethod
    def parse(cls, text: str | None) -> SparsitySpec:
        """Parse ``"2:4"``; ``None``, ``"dense"`` and ``""`` mean 1:1."""
        if text is None or str(text).strip().lower() in ("", "dense", "none"):
            return cls(1, 1)
        try:
            n, m = (int(p) for p in str(text).split(":"))
        except ValueError:
            raise ConfigError(f"N:M must look like '2:4', got {text!r}", key="nm") from None
        return cls(n, m)

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"


@dataclass(frozen=True)
class FuseOptions:
    """Integer parameters of the fuse target: accumulator and multiplier widths, rounding, wrap.

    Recipes spell ``mode`` as the YAML key ``fuse.rounding``.
    """

    acc_bits: int = 32
    mult_bits: int = 32
    shift_max: int = 63
    mode: RoundMode = RoundMode.HALF_EVEN
    wrap_ok: bool = False


#: Build features of the accelerator: ``HwConfig`` fields that are 0 or 1 (docs/rtl.md).
FEATURES = ("profiles", "row_params", "zero_points")


@dataclass(frozen=True)
class HwConfig:
    """Parameters of the accelerator RTL (one build per distinct value).

    Attributes:
        rows: PE array rows (output rows P processed in parallel).
        cols: PE array columns (output channels processed in parallel).
        n, m: N:M sparsity the PEs support (per cycle a PE takes M activations and N weights).
        a_bits, w_bits: activation and weight operand widths.
        acc_bits: accumulator width (wraps).
        mult_bits: requantizer multiplier width (M0 unsigned).
        shift_max: largest requantizer shift.
        act_depth: activation scratchpad depth in words (one word = one group of M activations
            of one row).
        w_depth: weight scratchpad depth in words (one word = N values+indices of one channel).
        out_depth: output scratchpad depth in words.
        ch_depth: per-channel parameter memory depth (bias_eff, M0, shift).
        profiles: 1: the requantizer implements the rounding profiles of deployed runtimes
            (``ort_fp32``, ``tflite_double``, ``tflite_single``; SPEC section 10); 0: a build
            without them (records with a profile are refused).
        row_params: 1: a per-(row, channel) parameter memory (``bias_eff``, ``M0``, ``sh`` of
            shape ``[P, C_out]``: token-wise requantization, SPEC section 8); 0: without it.
        zero_points: 1: operand zero points in the PE array, so activation x activation matmuls
            (``Q @ K^T``, ``attn @ V``; SPEC section 7) run on it; 0: without them. Needs
            ``a_bits, w_bits <= 12`` (the zero-point fields of the run-mode register) and
            ``acc_bits >= a_bits + w_bits + 3``.
    """

    rows: int = 4
    cols: int = 4
    n: int = 2
    m: int = 4
    a_bits: int = 8
    w_bits: int = 8
    acc_bits: int = 32
    mult_bits: int = 32
    shift_max: int = 63
    act_depth: int = 4096
    w_depth: int = 4096
    out_depth: int = 4096
    ch_depth: int = 256
    profiles: int = 1
    row_params: int = 1
    zero_points: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in FEATURES:
                if not isinstance(v, int) or isinstance(v, bool) or v not in (0, 1):
                    raise ConfigError(f"must be 0 or 1 (a build feature), got {v!r}", key=f.name)
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"must be a positive integer, got {v!r}", key=f.name)
        SparsitySpec(self.n, self.m)
        if not 2 <= self.a_bits <= 16 or not 2 <= self.w_bits <= 16:
            raise ConfigError("a_bits and w_bits must be in 2..16", key="a_bits/w_bits")
        if not 8 <= self.acc_bits <= 48:
            raise ConfigError(f"acc_bits must be in 8..48, got {self.acc_bits}", key="acc_bits")
        if not 2 <= self.mult_bits <= 32:
            raise ConfigError(f"mult_bits must be in 2..32, got {self.mult_bits}", key="mult_bits")
        if self.shift_max > 63:
            raise ConfigError(f"shift_max must be <= 63, got {self.shift_max}", key="shift_max")
        if self.zero_points and (max(self.a_bits, self.w_bits) > 12
                                 or self.acc_bits < self.a_bits + self.w_bits + 3):
            raise ConfigError(f"zero_points = 1 widens both operands by one bit: it needs a_bits "
                              f"and w_bits <= 12 and acc_bits >= a_bits + w_bits + 3 = "
                              f"{self.a_bits + self.w_bits + 3} (got a{self.a_bits} w{self.w_bits} "
                              f"acc{self.acc_bits}); set zero_points: 0", key="zero_points")

    @property
    def sparsity(self) -> SparsitySpec:
        return SparsitySpec(self.n, self.m)

    @property
    def idx_bits(self) -> int:
        return self.sparsity.idx_bits

    @property
    def tag(self) -> str:
        """A short, filesystem-safe name that is unique per parameter set (build-dir key)."""
        return "_".join(f"{f.name}{getattr(self, f.name)}" for f in fields(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, file: str | None = None) -> HwConfig:
        """Build from a mapping (YAML), naming the unknown or bad key and the file on error."""
        if not isinstance(d, dict):
            raise ConfigError("hardware config must be a mapping", file=file)
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise ConfigError(f"unknown hardware parameter (known: {', '.join(sorted(known))})",
                                  file=file, key=str(k))
        try:
            return cls(**d)
        except ConfigError as e:
            raise e.with_context(file=file) from None

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
