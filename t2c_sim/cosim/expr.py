"""Integer expressions in DUT files: parsed once at load, evaluated per layer, never ``eval``.

A value in a DUT file (a Verilog parameter, a bound in ``accepts``, a register field, a
descriptor word) is an integer or a string holding an expression over named integers::

    ROWS * COLS                      # Verilog parameters by name
    hw.rows                          # a field of the array configuration (t2c accelerator)
    mode | a_signed << 2             # fields of the layer's GEMM (registers, words)
    addr.x + stride.x * 2            # where the profile placed an operand in memory
    (1 << (Y_BITS - 1)) - 1
    cdiv(k, 8) * 8                   # ceil division; also min, max, abs, clog2, align(v, a)
    rows if a_signed else 0

Allowed: integer literals, ``True``/``False``, names and ``ns.field`` of the namespaces the
profile provides, ``+ - * // % ** << >> & | ^ ~``, comparisons, ``and``/``or``/``not``,
``x if c else y`` and the functions above. Anything else (a call to another function, a
string, an attribute of an attribute) is refused when the file is loaded, naming the file
and key. Evaluation is bounded (shifts and exponents below 512, results below 2^512) so a
hostile file cannot make a huge number.

Example: ``Expr("cdiv(k, 4) * 4", ...).eval({"k": 10}) == 12``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from t2c_sim.errors import ConfigError

__all__ = ["Expr", "FUNCS", "MAX_BITS", "as_expr"]

MAX_BITS = 512


def _clog2(v: int) -> int:
    """``ceil(log2(v))`` for ``v >= 1`` (Verilog's ``$clog2``; 0 for 1)."""
    if v < 1:
        raise ValueError(f"clog2({v}) needs an argument >= 1")
    return (v - 1).bit_length()


def _cdiv(a: int, b: int) -> int:
    if b == 0:
        raise ValueError("cdiv by 0")
    return -(-a // b)


def _align(v: int, a: int) -> int:
    if a < 1:
        raise ValueError(f"align to {a}: the alignment must be >= 1")
    return -(-v // a) * a


#: The functions an expression may call.
FUNCS: dict[str, Callable[..., int]] = {"min": min, "max": max, "abs": abs, "clog2": _clog2,
                                        "cdiv": _cdiv, "align": _align}

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
        ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitAnd: operator.and_,
        ast.BitOr: operator.or_, ast.BitXor: operator.xor}
_UN = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
       ast.Not: operator.not_}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge}
_MAX_LEN = 2000


class Expr:
    """A parsed expression (see the module docstring).

    Args:
        text: The expression, or an int (a constant).
        names: Names it may use (plain names and ``ns`` of ``ns.field``; ``None``: any).
        file, key: Where it comes from (for errors).

    Raises:
        ConfigError: Not an expression of the allowed form, or a name not in ``names``.
    """

    def __init__(self, text: Any, names: Iterable[str] | None = None, *, file: str | None = None,
                 key: str | None = None) -> None:
        self.file, self.key = file, key
        if isinstance(text, bool) or isinstance(text, int):
            self.text, self._tree, self.refs = str(int(text)), ast.Constant(int(text)), frozenset()
            return
        if not isinstance(text, str) or not text.strip() or len(text) > _MAX_LEN:
            raise ConfigError(f"must be an integer or an integer expression (a string of at most "
                              f"{_MAX_LEN} characters), got {text!r}", file=file, key=key)
        self.text = text.strip()
        try:
            self._tree = ast.parse(self.text, mode="eval").body
        except SyntaxError as e:
            raise ConfigError(f"not a valid expression {self.text!r} ({e.msg})", file=file,
                              key=key) from None
        refs: set[str] = set()
        self._check(self._tree, refs)
        if names is not None:
            allowed = set(names)
            bad = sorted(r for r in refs if r not in allowed)
            if bad:
                raise ConfigError(f"unknown name {bad[0]!r} in {self.text!r} (known: "
                                  f"{', '.join(sorted(allowed)) or 'none'})", file=file, key=key)
        self.refs = frozenset(refs)

    def _bad(self, what: str) -> ConfigError:
        return ConfigError(f"{what} is not allowed in {self.text!r}", file=self.file, key=self.key)

    def _check(self, n: ast.AST, refs: set[str]) -> None:
        if isinstance(n, ast.Constant):
            if not isinstance(n.value, (int, bool)):
                raise self._bad(f"the constant {n.value!r}")
        elif isinstance(n, ast.Name):
            if n.id in FUNCS:
                raise self._bad(f"the function name {n.id!r} without a call")
            refs.add(n.id)
        elif isinstance(n, ast.Attribute):
            if not isinstance(n.value, ast.Name):
                raise self._bad("an attribute of an attribute")
            refs.add(n.value.id)
        elif isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            self._check(n.left, refs)
            self._check(n.right, refs)
        elif isinstance(n, ast.UnaryOp) and type(n.op) in _UN:
            self._check(n.operand, refs)
        elif isinstance(n, ast.BoolOp):
            for v in n.values:
                self._check(v, refs)
        elif isinstance(n, ast.Compare) and all(type(o) in _CMP for o in n.ops):
            for v in (n.left, *n.comparators):
                self._check(v, refs)
        elif isinstance(n, ast.IfExp):
            for v in (n.test, n.body, n.orelse):
                self._check(v, refs)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in FUNCS \
                and not n.keywords:
            for a in n.args:
                self._check(a, refs)
        else:
            raise self._bad(type(n).__name__)

    def eval(self, ns: Mapping[str, Any]) -> int:
        """The value with names from ``ns`` (a name maps to an int, or to a mapping / object
        whose fields ``ns.field`` reads).

        Raises:
            ConfigError: An unknown name or field, a value out of bounds, a division by 0.
        """
        try:
            v = self._ev(self._tree, ns)
        except (ZeroDivisionError, ValueError, TypeError, OverflowError) as e:
            raise ConfigError(f"cannot evaluate {self.text!r}: {e}", file=self.file,
                              key=self.key) from None
        return int(v)

    def _ev(self, n: ast.AST, ns: Mapping[str, Any]) -> int:
        if isinstance(n, ast.Constant):
            return int(n.value)
        if isinstance(n, ast.Name):
            if n.id not in ns:
                raise ConfigError(f"{n.id!r} is not defined here (in {self.text!r})",
                                  file=self.file, key=self.key)
            return self._int(ns[n.id], n.id)
        if isinstance(n, ast.Attribute):
            base = ns.get(n.value.id) if isinstance(n.value, ast.Name) else None
            if base is None:
                raise ConfigError(f"{getattr(n.value, 'id', '?')!r} is not defined here (in "
                                  f"{self.text!r})", file=self.file, key=self.key)
            if isinstance(base, Mapping):
                if n.attr not in base:
                    raise ConfigError(f"{n.value.id}.{n.attr} is not defined (known: "
                                      f"{', '.join(sorted(map(str, base)))})", file=self.file,
                                      key=self.key)
                return self._int(base[n.attr], f"{n.value.id}.{n.attr}")
            if not hasattr(base, n.attr) or n.attr.startswith("_"):
                raise ConfigError(f"{n.value.id}.{n.attr} is not defined", file=self.file,
                                  key=self.key)
            return self._int(getattr(base, n.attr), f"{n.value.id}.{n.attr}")
        if isinstance(n, ast.BinOp):
            a, b = self._ev(n.left, ns), self._ev(n.right, ns)
            if isinstance(n.op, (ast.LShift, ast.Pow)) and not 0 <= b < MAX_BITS:
                raise ValueError(f"shift or exponent {b} outside 0..{MAX_BITS - 1}")
            if isinstance(n.op, ast.RShift) and b < 0:
                raise ValueError(f"negative shift {b}")
            if isinstance(n.op, ast.Pow) and abs(a) > 1 and b * abs(a).bit_length() > MAX_BITS:
                raise ValueError(f"{a} ** {b} is too large")
            return self._bound(_BIN[type(n.op)](a, b))
        if isinstance(n, ast.UnaryOp):
            return int(_UN[type(n.op)](self._ev(n.operand, ns)))
        if isinstance(n, ast.BoolOp):
            vals = [self._ev(v, ns) for v in n.values]
            return int(all(vals) if isinstance(n.op, ast.And) else any(vals))
        if isinstance(n, ast.Compare):
            left = self._ev(n.left, ns)
            for op, c in zip(n.ops, n.comparators):
                right = self._ev(c, ns)
                if not _CMP[type(op)](left, right):
                    return 0
                left = right
            return 1
        if isinstance(n, ast.IfExp):
            return self._ev(n.body if self._ev(n.test, ns) else n.orelse, ns)
        if isinstance(n, ast.Call):
            return self._bound(int(FUNCS[n.func.id](*(self._ev(a, ns) for a in n.args))))
        raise self._bad(type(n).__name__)  # pragma: no cover - refused by _check

    def _int(self, v: Any, name: str) -> int:
        if isinstance(v, bool):
            return int(v)
        try:
            return self._bound(int(v))
        except (TypeError, ValueError):
            raise ConfigError(f"{name} is not an integer here (in {self.text!r})",
                              file=self.file, key=self.key) from None

    @staticmethod
    def _bound(v: int) -> int:
        if abs(v).bit_length() > MAX_BITS:
            raise OverflowError(f"a value beyond 2^{MAX_BITS}")
        return v

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


def as_expr(v: Any, names: Iterable[str] | None, *, file: str | None, key: str) -> Expr:
    """:class:`Expr` of a DUT-file value (an int or an expression string)."""
    return Expr(v, names, file=file, key=key)
