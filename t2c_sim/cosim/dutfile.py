"""Reading a DUT file: YAML with the line of every key, and typed getters that name file,
line and key in one error.

Every value of a DUT file is validated once, here at the edge: a missing or unknown key, a
value of the wrong type or out of bounds is one :class:`~t2c_sim.errors.ConfigError` such as
``my_gemm/dut.yaml, line 14, key 'interface.in.data_bits': must be an integer in 1..4096, got 0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from t2c_sim.cosim.expr import Expr
from t2c_sim.errors import ConfigError
from t2c_sim.readers import read_yaml_node

__all__ = ["Ctx", "read_dut_yaml"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _lines(node: yaml.Node, path: str, out: dict[str, int], depth: int) -> None:
    if depth > 64 or len(out) > 100_000:  # deeper than any DUT file key: no line needed
        return
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{path}.{k.value}" if path else str(k.value)
            out.setdefault(key, k.start_mark.line + 1)
            _lines(v, key, out, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            key = f"{path}[{i}]"
            out.setdefault(key, v.start_mark.line + 1)
            _lines(v, key, out, depth + 1)


def read_dut_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """``(mapping, {key path: line})`` of a DUT file, read at the edge like every YAML input
    (:func:`t2c_sim.readers.read_yaml_node`: size, UTF-8, duplicate keys, alias bombs, FIFOs).

    Raises:
        ConfigError: Missing, not a regular file, too large, not valid YAML, or not a mapping.
    """
    p = Path(path)
    data, node = read_yaml_node(p, "DUT file")
    if not isinstance(data, dict):
        raise ConfigError("a DUT file must be a mapping (name, top, sources, accepts, interface, "
                          "...)", file=str(p))
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "", lines, 0)
    return data, lines


class Ctx:
    """Where values come from (the DUT file and its key lines); builds errors and checks types."""

    def __init__(self, file: str, lines: dict[str, int] | None = None) -> None:
        self.file = file
        self.lines = lines or {}

    def line(self, key: str) -> int | None:
        k = key
        while k:
            if k in self.lines:
                return self.lines[k]
            k = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", k) if ("." in k or "[" in k) else ""
        return None

    def err(self, key: str, detail: str) -> ConfigError:
        return ConfigError(detail, file=self.file, key=key or None,
                           line=self.line(key) if key else None)

    # ---- getters
    def mapping(self, v: Any, key: str, known: Iterable[str] | None = None,
                required: Iterable[str] = ()) -> dict[str, Any]:
        if v is None:
            v = {}
        if not isinstance(v, dict):
            raise self.err(key, f"must be a mapping, got {type(v).__name__}")
        if known is not None:
            known = list(known)
            for k in v:
                if k not in known:
                    raise self.err(f"{key}.{k}" if key else str(k),
                                   f"unknown key (known: {', '.join(known)})")
        for k in required:
            if k not in v:
                raise self.err(key, f"missing key {k!r}")
        return v

    def integer(self, v: Any, key: str, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.err(key, f"must be an integer in {lo}..{hi}, got {v!r}")
        return v

    def boolean(self, v: Any, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.err(key, f"must be true or false, got {v!r}")
        return v

    def string(self, v: Any, key: str, pattern: re.Pattern[str] | None = None,
               max_len: int = 200) -> str:
        if not isinstance(v, str) or not v.strip() or len(v) > max_len:
            raise self.err(key, f"must be a non-empty string of at most {max_len} characters, "
                                f"got {v!r}")
        if pattern is not None and not pattern.match(v):
            raise self.err(key, f"{v!r} is not a valid name (letters, digits, '_')")
        return v

    def ident(self, v: Any, key: str) -> str:
        """A Verilog identifier (a module, port or parameter name)."""
        return self.string(v, key, _IDENT, 128)

    def choice(self, v: Any, key: str, options: Iterable[str]) -> str:
        options = list(options)
        if not isinstance(v, str) or v not in options:
            raise self.err(key, f"must be one of {', '.join(options)}, got {v!r}")
        return v

    def items(self, v: Any, key: str, max_items: int, allow_scalar: bool = True) -> list[Any]:
        if allow_scalar and not isinstance(v, list):
            v = [v]
        if not isinstance(v, list) or not v:
            raise self.err(key, "must be a non-empty list")
        if len(v) > max_items:
            raise self.err(key, f"at most {max_items} entries, got {len(v)}")
        return v

    def expr(self, v: Any, key: str, names: Iterable[str] | None) -> Expr:
        try:
            return Expr(v, names, file=self.file, key=key)
        except ConfigError as e:
            raise e.with_context(line=self.line(key)) from None

    def path(self, v: Any, key: str, base: Path, *, must_exist: bool = True,
             is_dir: bool = False) -> Path:
        s = self.string(v, key, max_len=1000)
        p = Path(s)
        p = (p if p.is_absolute() else base / p).resolve()
        if must_exist and not (p.is_dir() if is_dir else p.is_file()):
            raise self.err(key, f"{'folder' if is_dir else 'file'} {s!r} not found "
                                f"(relative to {base})")
        return p
