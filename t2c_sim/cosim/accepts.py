"""What layer records a DUT accepts (the ``accepts`` section of a DUT file), and why not.

A DUT declares the numerics it implements and its shape limits; a record that does not fit
is refused before anything is simulated, with the reason and the key that refuses it::

    accepts:
      ops: [linear, conv2d]             # layer kinds (default both; matmul: activation x
                                        # activation, both zero points, no N:M)
      rounding: [floor]                 # SPEC section-2 modes and runtime profiles it implements
      a_signed: [true, false]           # activation signedness it takes (default both)
      y_signed: [true]                  # output signedness (default both)
      token_wise: false                 # per-row [P, C_out] requantizer parameters (default no)
      nm: dense                         # dense: weights sent dense (any record); record: the
                                        # record's own N:M compressed; {n: N, m: M}: weights
                                        # padded to M along K must be N:M (sent compressed)
      output_bits: Y_BITS               # [lo, hi] must fit this many bits of the record's
                                        # output signedness
      a_bits: {max: A_BITS}             # bounds: min, max, equal, multiple, each an integer
      acc_bits: {equal: ACC_BITS, why: wrapping would differ}   # or expression; `why` explains
      m0: {equal: 1}                    # per-channel values: every channel must satisfy it
      c_in: {multiple: 8}
      why: {rounding: the shifter truncates}   # why not, for the keys without an inline `why`

Bounded keys: ``a_bits, w_bits, acc_bits`` (the record's widths), ``m0, sh, bias`` (every
channel), ``z_y, lo, hi``, and the shape ``c_in, c_out, k`` (the record's padded reduction
length), ``rows`` (GEMM rows ``P``), ``groups`` (conv groups), ``kernel`` (``max(KH, KW)``).
Bounds are expressions over the DUT's Verilog parameters (:mod:`t2c_sim.cosim.expr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from t2c_sim.config import OpKind, RoundMode, RoundProfile
from t2c_sim.cosim.dutfile import Ctx
from t2c_sim.cosim.expr import Expr
from t2c_sim.errors import SparsityError, UnsupportedLayerError
from t2c_sim.estimate import gemm_rows, per_row_params
from t2c_sim.layout import padded_len
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.sparse.nm import check_nm

__all__ = ["Bound", "Accepts", "parse_accepts", "BOUNDED", "ROUNDINGS"]

#: Bounded keys: what each bound is checked against (see the module docstring).
BOUNDED = ("a_bits", "w_bits", "acc_bits", "m0", "sh", "bias", "z_y", "lo", "hi", "c_in",
           "c_out", "k", "rows", "groups", "kernel")
ROUNDINGS = tuple(m.value for m in RoundMode) + tuple(p.value for p in RoundProfile)
#: Layers a DUT may accept: linear, conv2d and the activation x activation matmul.
GEMM_OPS = (*MAC_OPS, OpKind.MATMUL)
_KEYS = ("ops", "rounding", "a_signed", "y_signed", "token_wise", "nm", "output_bits", "why",
         *BOUNDED)
_BOUND_KEYS = ("min", "max", "equal", "multiple", "why")


@dataclass(frozen=True)
class Bound:
    """``min <= v <= max``, ``v == equal``, ``v % multiple == 0`` (each optional), and why."""

    key: str
    min: Expr | None = None
    max: Expr | None = None
    equal: Expr | None = None
    multiple: Expr | None = None
    why: str = ""

    def reason(self, what: str, lo: int, hi: int, ns: dict[str, Any]) -> str | None:
        """Why values in ``[lo, hi]`` (``what`` names them) break the bound, or ``None``."""
        if self.equal is not None:
            e = self.equal.eval(ns)
            if lo != e or hi != e:
                return f"{what} but the DUT needs {e}"
        if self.min is not None and lo < self.min.eval(ns):
            return f"{what} is below the DUT's minimum {self.min.eval(ns)}"
        if self.max is not None and hi > self.max.eval(ns):
            return f"{what} exceeds the DUT's maximum {self.max.eval(ns)}"
        if self.multiple is not None:
            mul = self.multiple.eval(ns)
            if mul < 1 or lo % mul or (hi != lo and hi % mul):
                return f"{what} is not a multiple of {mul}"
        return None


@dataclass(frozen=True)
class Accepts:
    """The parsed ``accepts`` section (see the module docstring)."""

    ops: tuple[OpKind, ...] = MAC_OPS
    rounding: tuple[str, ...] = tuple(m.value for m in RoundMode)
    a_signed: tuple[bool, ...] = (True, False)
    y_signed: tuple[bool, ...] = (True, False)
    token_wise: bool = False
    nm: str | tuple[Expr, Expr] = "dense"
    output_bits: Expr | None = None
    bounds: dict[str, Bound] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)

    def refusal(self, rec: LayerRecord, ns: dict[str, Any]) -> tuple[str, str] | None:
        """``(reason, key)`` of the first constraint ``rec`` breaks, or ``None`` if it fits.

        ``ns`` holds the DUT's bound Verilog parameters (the names bounds may use).
        """
        mm = rec.op is OpKind.MATMUL
        if rec.op not in GEMM_OPS:
            return (f"{rec.op.value} is not a linear/conv2d/matmul layer (it runs on the host)",
                    "ops")
        if rec.op not in self.ops:
            return (f"{rec.op.value} layers are not accepted (accepts.ops: "
                    f"{', '.join(o.value for o in self.ops)})", "ops")
        for f in ("M0", "sh") if mm else ("w_q", "bias_eff", "M0", "sh"):
            if getattr(rec, f) is None:
                return f"{f} is missing", "ops"
        if rec.mode.value not in self.rounding:
            kind = "rounding profile" if isinstance(rec.mode, RoundProfile) else "rounding mode"
            return (f"{kind} {rec.mode.value} is not implemented (the DUT implements "
                    f"{', '.join(self.rounding)}); simulate golden only (--sim none) or make the "
                    f"records with a mode it implements", "rounding")
        if not self.token_wise and per_row_params(rec):
            return ("token-wise [P, C_out] requantizer parameters (the DUT holds one bias/M0/shift "
                    "per channel)", "token_wise")
        if rec.a_signed not in self.a_signed:
            return f"{'signed' if rec.a_signed else 'unsigned'} activations", "a_signed"
        if rec.y_signed not in self.y_signed:
            return f"{'signed' if rec.y_signed else 'unsigned'} outputs", "y_signed"
        for key in ("a_bits", "w_bits", "acc_bits"):
            v = rec.b_bits if (mm and key == "w_bits") else getattr(rec, key)  # b: the weight slot
            r = self._bound(key, f"{key}={v}", v, v, ns)
            if r:
                return r
        for key, arr in (("m0", rec.M0), ("sh", rec.sh), ("bias", rec.bias_eff)):
            a = np.asarray(arr if arr is not None else [], dtype=np.int64)
            if a.size:
                lo, hi = int(a.min()), int(a.max())
                r = self._bound(key, f"{key} in {lo}..{hi}", lo, hi, ns)
                if r:
                    return r
        for key in ("z_y", "lo", "hi"):
            v = int(getattr(rec, key))
            r = self._bound(key, f"{key}={v}", v, v, ns)
            if r:
                return r
        if self.output_bits is not None:
            b = self.output_bits.eval(ns)
            lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if rec.y_signed else (0, (1 << b) - 1)
            if rec.lo < lo or rec.hi > hi:
                return (f"output range [{rec.lo}, {rec.hi}] does not fit the DUT's {b}-bit "
                        f"{'signed' if rec.y_signed else 'unsigned'} outputs", "output_bits")
        r = self._shape(rec, ns)
        if r:
            return r
        return self._nm(rec, ns)

    def _bound(self, key: str, what: str, lo: int, hi: int, ns: dict[str, Any]
               ) -> tuple[str, str] | None:
        b = self.bounds.get(key)
        if b is None:
            return None
        r = b.reason(what, lo, hi, ns)
        return (r + (f" ({b.why})" if b.why else ""), key) if r else None

    def _shape(self, rec: LayerRecord, ns: dict[str, Any]) -> tuple[str, str] | None:
        conv = rec.op is OpKind.CONV2D
        vals = {"c_in": rec.c_in, "c_out": rec.c_out, "k": rec.k,
                "groups": rec.groups if conv else 1,
                "kernel": max(rec.kh, rec.kw) if conv else 1}
        for key, v in vals.items():
            r = self._bound(key, f"{key}={v}", v, v, ns)
            if r:
                return r
        if "rows" in self.bounds:
            p = gemm_rows(rec)
            return self._bound("rows", f"rows (GEMM P)={p}", p, p, ns)
        return None

    def _nm(self, rec: LayerRecord, ns: dict[str, Any]) -> tuple[str, str] | None:
        if self.nm in ("dense", "record") or rec.op is OpKind.MATMUL:  # a matmul's b is data
            return None
        n, m = (e.eval(ns) for e in self.nm)
        w = rec.w_q
        pad = padded_len(rec.k, m) - rec.k
        if pad:
            w = np.pad(w, ((0, 0), (0, pad)))
        try:
            check_nm(w, n, m, name="weights")
        except SparsityError as e:
            return (f"{rec.n}:{rec.m} weights do not fit the DUT's {n}:{m} ({e.detail})", "nm")
        return None

    def check(self, rec: LayerRecord, ns: dict[str, Any], dut: str) -> None:
        """Raise :class:`UnsupportedLayerError` naming the layer, the DUT, the reason and key."""
        r = self.refusal(rec, ns)
        if r is not None:
            reason, key = r
            why = self.why.get(key, "") if key not in self.bounds else ""
            raise UnsupportedLayerError(f"cannot run on DUT {dut}: {reason}"
                                        + (f" ({why})" if why else "") + f" [accepts.{key}]",
                                        layer=rec.name)


def _bools(ctx: Ctx, v: Any, key: str) -> tuple[bool, ...]:
    items = ctx.items(v, key, 2)
    return tuple(ctx.boolean(b, f"{key}[{i}]") for i, b in enumerate(items))


def parse_accepts(ctx: Ctx, data: Any, names: list[str]) -> Accepts:
    """Validate the ``accepts`` mapping; ``names`` are the parameters bounds may use."""
    d = ctx.mapping(data, "accepts", _KEYS)
    kw: dict[str, Any] = {}
    if "ops" in d:
        ops = []
        for i, o in enumerate(ctx.items(d["ops"], "accepts.ops", len(GEMM_OPS))):
            ops.append(OpKind(ctx.choice(o, f"accepts.ops[{i}]", [k.value for k in GEMM_OPS])))
        kw["ops"] = tuple(ops)
    if "rounding" in d:
        kw["rounding"] = tuple(ctx.choice(r, f"accepts.rounding[{i}]", ROUNDINGS)
                               for i, r in enumerate(ctx.items(d["rounding"], "accepts.rounding",
                                                               len(ROUNDINGS))))
    for k in ("a_signed", "y_signed"):
        if k in d:
            kw[k] = _bools(ctx, d[k], f"accepts.{k}")
    if "token_wise" in d:
        kw["token_wise"] = ctx.boolean(d["token_wise"], "accepts.token_wise")
    if "nm" in d:
        v = d["nm"]
        if isinstance(v, str):
            kw["nm"] = ctx.choice(v, "accepts.nm", ["dense", "record"])
        else:
            nm = ctx.mapping(v, "accepts.nm", ["n", "m"], ["n", "m"])
            kw["nm"] = (ctx.expr(nm["n"], "accepts.nm.n", names),
                        ctx.expr(nm["m"], "accepts.nm.m", names))
    if "output_bits" in d:
        kw["output_bits"] = ctx.expr(d["output_bits"], "accepts.output_bits", names)
    why = {}
    for k, v in ctx.mapping(d.get("why"), "accepts.why", [k for k in _KEYS if k != "why"]).items():
        why[k] = ctx.string(v, f"accepts.why.{k}", max_len=300)
    bounds = {}
    for key in BOUNDED:
        if key not in d:
            continue
        b = d[key]
        if not isinstance(b, dict):  # a bare value: equal for widths, max for the rest
            b = {"equal" if key == "acc_bits" else "max": b}
        b = ctx.mapping(b, f"accepts.{key}", _BOUND_KEYS)
        if not any(k in b for k in ("min", "max", "equal", "multiple")):
            raise ctx.err(f"accepts.{key}", "needs at least one of min, max, equal, multiple")
        parsed = {k: ctx.expr(b[k], f"accepts.{key}.{k}", names)
                  for k in ("min", "max", "equal", "multiple") if k in b}
        w = ctx.string(b["why"], f"accepts.{key}.why", max_len=300) if "why" in b else ""
        bounds[key] = Bound(key, why=w or why.get(key, ""), **parsed)
    kw["bounds"] = bounds
    kw["why"] = why
    return Accepts(**kw)
