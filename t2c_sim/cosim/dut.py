"""The DUT contract: a DUT file (YAML) plus, where YAML is not enough, a small adapter class.

A DUT file names the Verilog top and its sources, its Verilog parameters, clock and reset,
which layer records it accepts (:mod:`t2c_sim.cosim.accepts`), how data moves (the interface
profile, :mod:`t2c_sim.cosim.ifspec`), an optional adapter and its cycle model::

    name: my_gemm
    top: my_gemm_top
    sources: [rtl/*.v]                    # relative to this file; "@rtl/x.v": t2c-sim's rtl/
    parameters: {ROWS: 4, COLS: 4, LANES: 4, Y_BITS: 8, ACC_DEPTH: 16}
    clock: {port: clk_i, period_ns: 10}
    reset: {port: rst_ni, active: low, cycles: 4}
    accepts: {...}
    interface: {profile: stream, ...}
    adapter: adapter.py:MyAdapter         # optional ("module:Class" for an installed module)
    cycles: {model: cycle_model.py:cycles}   # cycles(layer, params) -> int; or adapter; or none

:func:`load_dut` validates the file once, at the edge (every error names the file, line and
key). :meth:`DutSpec.bind` evaluates the parameters (expressions over ``hw.<field>``, the
array configuration, and the parameters above them; ``overrides`` replace values) and loads
the adapter and the model: the result, a :class:`Dut`, is what co-simulation takes
(:func:`t2c_sim.cosim.engine.cosimulate`). Our own accelerator is the DUT file shipped in the
package, :data:`DEFAULT_DUT_FILE` (:func:`default_dut`).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.config import HwConfig
from t2c_sim.cosim.accepts import Accepts, parse_accepts
from t2c_sim.cosim.dutfile import Ctx, read_dut_yaml
from t2c_sim.cosim.expr import Expr
from t2c_sim.cosim.gemm import GemmOp, gemm_ops
from t2c_sim.cosim.ifspec import AxiIf, BackdoorIf, StreamIf, parse_interface
from t2c_sim.cosim.sim import RTL_DIR
from t2c_sim.errors import ConfigError, T2CError
from t2c_sim.export import iface
from t2c_sim.record import LayerRecord

__all__ = ["DutSpec", "Dut", "load_dut", "default_dut", "DEFAULT_DUT_FILE", "BUILTIN_DIR",
           "Clock", "Reset", "parse_dut_params", "MAX_SOURCES", "builtin_duts", "dut_path"]

BUILTIN_DIR = Path(__file__).resolve().parent / "duts"
#: Our accelerator's DUT file (the default DUT of every command).
DEFAULT_DUT_FILE = BUILTIN_DIR / "t2c_accel.yaml"
MAX_SOURCES = 512
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_KEYS = ("name", "description", "top", "sources", "includes", "defines", "parameters", "clock",
         "reset", "accepts", "interface", "adapter", "cycles")
_REF = re.compile(r"^(?P<mod>[^:]+):(?P<attr>[A-Za-z_][A-Za-z0-9_]*)$")
#: ``iface.<NAME>`` in parameter expressions: our accelerator's interface constants (their owner).
_IFACE = {"Y_BITS": iface.Y_BITS, "SH_BITS": iface.SH_BITS, "PLAN_WORDS": iface.PLAN_WORDS}


@dataclass(frozen=True)
class Clock:
    port: str
    period_ns: int


@dataclass(frozen=True)
class Reset:
    port: str
    active_low: bool
    cycles: int


@dataclass(frozen=True)
class DutSpec:
    """A validated DUT file (not yet bound to parameter values)."""

    name: str
    file: Path
    top: str
    sources: tuple[Path, ...]
    parameters: tuple[tuple[str, Expr], ...]
    accepts: Accepts
    interface: BackdoorIf | StreamIf | AxiIf
    description: str = ""
    includes: tuple[Path, ...] = ()
    defines: dict[str, Any] = field(default_factory=dict)
    clock: Clock | None = None
    reset: Reset | None = None
    adapter: str | None = None
    model: str | None = None        # "adapter", "none", or "file.py:func" / "module:func"
    exact: bool = True

    @property
    def profile(self) -> str:
        return self.interface.profile

    @property
    def folder(self) -> Path:
        return self.file.parent

    def bind(self, hw: HwConfig | None = None, overrides: Mapping[str, int] | None = None,
             ) -> Dut:
        """Evaluate the parameters for ``hw`` and ``overrides``; load the adapter and model.

        Raises:
            ConfigError: An override names no parameter, an expression cannot be evaluated, or
                the adapter / model cannot be loaded (each names the file and key).
        """
        hw = hw or HwConfig()
        over = dict(overrides or {})
        known = [n for n, _ in self.parameters]
        for k in over:
            if k not in known:
                raise ConfigError(f"unknown parameter of DUT {self.name} (known: "
                                  f"{', '.join(known) or 'none'})", key=f"--dut-param {k}")
        params: dict[str, int] = {}
        for name, e in self.parameters:
            params[name] = int(over[name]) if name in over else \
                e.eval({"hw": hw, "iface": _IFACE, **params})
            if not -(1 << 31) <= params[name] < 1 << 31:
                where = {"key": f"--dut-param {name}"} if name in over else \
                    {"file": str(self.file), "key": f"parameters.{name}"}
                raise ConfigError(f"{params[name]} does not fit a Verilog integer parameter "
                                  "(32-bit signed)", **where)
        return Dut(self, hw, params, tuple(over))


@dataclass(eq=False)
class Dut:
    """A DUT bound to its parameter values: what co-simulation runs.

    Attributes:
        spec: The DUT file.
        hw: The array configuration the parameters were computed from (our accelerator's
            :class:`HwConfig`; a DUT whose parameters do not use ``hw`` ignores it).
        params: Verilog parameters of the top, by name.
        overrides: The parameters set by ``--dut-param`` / a suite's ``dut_params``.
    """

    spec: DutSpec
    hw: HwConfig
    params: dict[str, int]
    overrides: tuple[str, ...] = ()

    def param_key(self, name: str) -> dict[str, str]:
        """Where parameter ``name`` was set, as error context (``file``/``key``)."""
        if name in self.overrides:
            return {"key": f"--dut-param {name}"}
        return {"file": str(self.spec.file), "key": f"parameters.{name}"}

    @property
    def name(self) -> str:
        return self.spec.name

    def __reduce__(self) -> tuple[Any, ...]:
        # A worker process re-reads the DUT file and binds the same values (the adapter and the
        # model are loaded there again); the loaded objects themselves need not pickle.
        return (_rebind, (str(self.spec.file), self.hw, dict(self.params)))

    @property
    def sources(self) -> list[Path]:
        return list(self.spec.sources)

    @functools.cached_property
    def adapter(self) -> Any:
        """The adapter instance (``None`` without one): ``AdapterClass(dut)``."""
        if self.spec.adapter is None:
            return None
        cls = _load_ref(self.spec.adapter, self.spec, "adapter")
        try:
            return cls(self)
        except T2CError:
            raise
        except Exception as e:  # noqa: BLE001 - a user's adapter failing to start is bad input
            raise ConfigError(f"adapter {self.spec.adapter} failed to initialise: "
                              f"{type(e).__name__}: {e}", file=str(self.spec.file),
                              key="adapter") from None

    @functools.cached_property
    def model(self) -> Callable[[dict[str, Any], dict[str, int]], int] | None:
        """The cycle model ``cycles(layer, params) -> int`` (``None``: none, or the adapter's)."""
        m = self.spec.model
        if m in (None, "none"):
            return None
        if m == "adapter":
            fn = getattr(self.adapter, "cycles", None)
            return fn if callable(fn) else None
        return _load_ref(m, self.spec, "cycles.model")

    @property
    def exact(self) -> bool:
        """Whether the DUT declares an exact cycle model (a measured difference fails)."""
        return self.spec.exact and self.spec.model not in (None, "none")

    def check(self, rec: LayerRecord) -> None:
        """Raise :class:`~t2c_sim.errors.UnsupportedLayerError` unless the DUT accepts ``rec``."""
        self.spec.accepts.check(rec, dict(self.params), self.name)
        extra = getattr(self.adapter, "check", None)
        if callable(extra):
            extra(rec)

    def layer_cycles(self, rec: LayerRecord) -> int | None:
        """The model's cycles of a whole layer (``None`` without a model).

        The adapter's ``layer_cycles(rec)`` when it has one (our accelerator: the tile plan),
        else the sum of ``cycles(op.shape(), params)`` over the layer's GEMMs.
        """
        fn = getattr(self.adapter, "layer_cycles", None)
        if callable(fn):
            return int(fn(rec))
        if self.model is None:
            return None
        ops, _ = gemm_ops(rec)
        return sum(self.op_cycles(op) for op in ops)

    def op_cycles(self, op: GemmOp) -> int:
        """The model's cycles of one GEMM (``cycles(op.shape(), params)``).

        Raises:
            ConfigError: No model, or the model failed or returned no integer (names the file).
        """
        fn = self.model
        if fn is None:
            raise ConfigError(f"DUT {self.name} has no cycle model", file=str(self.spec.file),
                              key="cycles.model")
        try:
            v = fn(op.shape(), self.model_params())
        except T2CError:
            raise
        except Exception as e:  # noqa: BLE001 - the DUT's own model failing is its bad input
            raise ConfigError(f"the cycle model failed on layer {op.layer} op {op.index}: "
                              f"{type(e).__name__}: {e}", file=str(self.spec.file),
                              key="cycles.model") from None
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ConfigError(f"the cycle model returned {v!r} for layer {op.layer} (expected "
                              "an integer >= 0)", file=str(self.spec.file), key="cycles.model")
        return int(v)

    def model_params(self) -> dict[str, int]:
        """What the cycle model gets as ``params``: the Verilog parameters plus, for the axi
        profile, the interface figures it depends on (lower case, never Verilog names):
        ``mem_read_latency``, ``mem_write_latency``, ``mem_data_bits`` and ``register_writes``
        (writes before the completion wait)."""
        out = dict(self.params)
        cfg = self.spec.interface
        if isinstance(cfg, AxiIf):
            out.update(mem_read_latency=cfg.memory.read_latency,
                       mem_write_latency=cfg.memory.write_latency,
                       mem_data_bits=cfg.memory.data_bits, register_writes=len(cfg.registers))
        return out

    def utilization(self, rec: LayerRecord) -> float | None:
        """Useful-MAC utilization when the adapter can tell (our accelerator), else ``None``."""
        fn = getattr(self.adapter, "utilization", None)
        return float(fn(rec)) if callable(fn) else None

    def describe(self) -> dict[str, Any]:
        """What reports show about the DUT."""
        return {"name": self.name, "file": str(self.spec.file), "profile": self.spec.profile,
                "top": self.spec.top, "parameters": dict(self.params),
                "cycle_model": (self.spec.model or "none") + ("" if self.exact or
                                                              self.spec.model in (None, "none")
                                                              else " (not exact)")}


def _rebind(file: str, hw: HwConfig, params: dict[str, int]) -> Dut:
    return load_dut(file).bind(hw, params)


def _import_file(path: Path, spec: DutSpec, key: str) -> Any:
    name = "t2c_dut_" + hashlib.sha256(str(path).encode()).hexdigest()[:12] + "_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    folder = str(path.parent)
    if folder not in sys.path:  # the adapter may import its siblings (its own packer)
        sys.path.insert(0, folder)
    mspec = importlib.util.spec_from_file_location(name, path)
    if mspec is None or mspec.loader is None:
        raise ConfigError(f"cannot load {path}", file=str(spec.file), key=key)
    mod = importlib.util.module_from_spec(mspec)
    sys.modules[name] = mod
    try:
        mspec.loader.exec_module(mod)
    except Exception as e:  # noqa: BLE001 - a user's module failing to import is bad input
        del sys.modules[name]
        msg = " ".join(str(e).split())
        raise ConfigError(f"{path.name} failed to import: {type(e).__name__}: {msg}",
                          file=str(spec.file), key=key) from None
    return mod


def _load_ref(ref: str, spec: DutSpec, key: str) -> Any:
    """``file.py:Name`` (relative to the DUT file) or ``package.module:Name``."""
    m = _REF.match(ref)
    if m is None:  # validated at load; kept for direct construction
        raise ConfigError(f"must look like file.py:Name or module:Name, got {ref!r}",
                          file=str(spec.file), key=key)
    mod_ref, attr = m.group("mod"), m.group("attr")
    if mod_ref.endswith(".py"):
        mod = _import_file((spec.folder / mod_ref).resolve(), spec, key)
    else:
        try:
            mod = importlib.import_module(mod_ref)
        except ImportError as e:
            raise ConfigError(f"cannot import {mod_ref} ({e})", file=str(spec.file),
                              key=key) from None
    obj = getattr(mod, attr, None)
    if obj is None or not callable(obj):
        raise ConfigError(f"{mod_ref} has no callable {attr!r}", file=str(spec.file), key=key)
    return obj


def _sources(ctx: Ctx, v: Any, base: Path) -> tuple[Path, ...]:
    out: list[Path] = []
    for i, s in enumerate(ctx.items(v, "sources", MAX_SOURCES)):
        key = f"sources[{i}]"
        s = ctx.string(s, key, max_len=1000)
        root, pat = (RTL_DIR, s[5:]) if s.startswith("@rtl/") else (base, s)
        full = pat if Path(pat).is_absolute() else str(root / pat)
        hits = sorted(Path(p).resolve() for p in glob.glob(full))
        hits = [h for h in hits if h.is_file()]
        if not hits:
            raise ctx.err(key, f"no file matches {s!r} (relative to "
                               f"{'the package rtl/' if root is RTL_DIR else base})")
        for h in hits:
            if h.suffix not in (".v", ".sv", ".vh", ".svh"):
                raise ctx.err(key, f"{h.name} is not a Verilog file (.v, .sv)")
            if h not in out:
                out.append(h)
    if len(out) > MAX_SOURCES:
        raise ctx.err("sources", f"more than {MAX_SOURCES} files")
    return tuple(out)


def _ref(ctx: Ctx, v: Any, key: str, base: Path) -> str:
    s = ctx.string(v, key, max_len=300)
    m = _REF.match(s)
    if m is None:
        raise ctx.err(key, f"must look like file.py:Name or module:Name, got {s!r}")
    if m.group("mod").endswith(".py") and not (base / m.group("mod")).is_file():
        raise ctx.err(key, f"file {m.group('mod')!r} not found (relative to {base})")
    return s


def builtin_duts() -> list[str]:
    """Names of the DUT files shipped in the package (``--dut NAME`` selects one)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def dut_path(ref: str | Path) -> Path:
    """The DUT file ``ref`` names: a path, or the name of a built-in DUT (``t2c_axi_accel``) when
    no file of that name exists."""
    p = Path(ref)
    if p.exists() or p.suffix or len(p.parts) != 1:
        return p
    b = BUILTIN_DIR / f"{p.name}.yaml"
    return b if b.is_file() else p


def load_dut(path: str | Path) -> DutSpec:
    """Read and validate a DUT file (a path, or a built-in DUT's name: :func:`dut_path`; see the
    module docstring).

    Raises:
        ConfigError: One line naming the file, line and key of the first problem.
    """
    p = dut_path(path)
    if not p.exists() and not p.suffix and len(p.parts) == 1:
        raise ConfigError(f"no DUT file and no built-in DUT named {str(path)!r} (built in: "
                          f"{', '.join(builtin_duts())})", file=str(path))
    p = p.resolve() if p.exists() else p
    data, lines = read_dut_yaml(p)
    ctx = Ctx(str(path) if p.parent != BUILTIN_DIR else str(p), lines)
    ctx.mapping(data, "", _KEYS, ["name", "top", "sources", "interface"])
    base = p.parent
    name = ctx.string(data["name"], "name", _NAME, 64)
    top = ctx.ident(data["top"], "top")
    sources = _sources(ctx, data["sources"], base)
    includes = tuple(ctx.path(v, f"includes[{i}]", base, is_dir=True)
                     for i, v in enumerate(ctx.items(data["includes"], "includes", 64))) \
        if "includes" in data else ()
    defines = {}
    for k, v in ctx.mapping(data.get("defines"), "defines").items():
        ctx.ident(k, f"defines.{k}")
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise ctx.err(f"defines.{k}", f"must be an integer or a string, got {v!r}")
        defines[k] = v
    params: list[tuple[str, Expr]] = []
    for k, v in ctx.mapping(data.get("parameters"), "parameters").items():
        ctx.ident(k, f"parameters.{k}")
        if len(params) >= 256:
            raise ctx.err("parameters", "more than 256 parameters")
        params.append((k, ctx.expr(v, f"parameters.{k}",
                                   ["hw", "iface", *(n for n, _ in params)])))
    names = [n for n, _ in params]
    accepts = parse_accepts(ctx, data.get("accepts"), names)
    interface = parse_interface(ctx, data["interface"], names)
    clock = reset = None
    if "clock" in data:
        c = ctx.mapping(data["clock"], "clock", ["port", "period_ns"], ["port"])
        clock = Clock(ctx.ident(c["port"], "clock.port"),
                      ctx.integer(c.get("period_ns", 10), "clock.period_ns", 2, 1_000_000))
    if "reset" in data:
        r = ctx.mapping(data["reset"], "reset", ["port", "active", "cycles"], ["port"])
        reset = Reset(ctx.ident(r["port"], "reset.port"),
                      ctx.choice(r.get("active", "low"), "reset.active", ("low", "high")) == "low",
                      ctx.integer(r.get("cycles", 4), "reset.cycles", 1, 1000))
    if interface.profile in ("stream", "axi"):
        for k, v in (("clock", clock), ("reset", reset)):
            if v is None:
                raise ctx.err("", f"missing key {k!r} (the {interface.profile} profile's harness "
                                  f"drives the DUT's clock and reset ports)")
    adapter = _ref(ctx, data["adapter"], "adapter", base) if "adapter" in data else None
    if isinstance(interface, AxiIf) and not interface.operands and adapter is None:
        raise ctx.err("interface", "missing key 'operands' (the axi profile's memory layout; "
                                   "only an adapter with axi_layout() can do without)")
    if interface.profile == "backdoor" and adapter is None:
        raise ctx.err("interface.profile", "the backdoor profile needs an adapter (it packs the "
                                           "DUT's memories and names its harness)")
    model, exact = None, True
    if "cycles" in data:
        cy = ctx.mapping(data["cycles"], "cycles", ["model", "exact"], ["model"])
        mv = cy["model"]
        model = mv if mv in ("none", "adapter") else _ref(ctx, mv, "cycles.model", base)
        if model == "adapter" and adapter is None:
            raise ctx.err("cycles.model", "'adapter' needs an adapter")
        exact = ctx.boolean(cy.get("exact", True), "cycles.exact")
    desc = ctx.string(data["description"], "description", max_len=2000) \
        if "description" in data else ""
    return DutSpec(name=name, file=p.resolve(), top=top, sources=sources,
                   parameters=tuple(params), accepts=accepts, interface=interface,
                   description=desc, includes=includes, defines=defines, clock=clock,
                   reset=reset, adapter=adapter, model=model, exact=exact)


@functools.lru_cache(maxsize=8)
def _default_spec() -> DutSpec:
    return load_dut(DEFAULT_DUT_FILE)


@functools.lru_cache(maxsize=64)
def default_dut(hw: HwConfig | None = None) -> Dut:
    """Our accelerator (:data:`DEFAULT_DUT_FILE`) bound to the array ``hw`` (default 4x4)."""
    return _default_spec().bind(hw or HwConfig())


def parse_dut_params(items: list[str] | None) -> dict[str, int]:
    """``["ROWS=8", "LANES=8"]`` (``--dut-param``) -> ``{"ROWS": 8, "LANES": 8}``."""
    out: dict[str, int] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"must look like NAME=VALUE, got {item!r}", key="--dut-param")
        try:
            out[key] = int(val.strip(), 0)
        except ValueError:
            raise ConfigError(f"value must be an integer, got {val.strip()!r}",
                              key=f"--dut-param {key}") from None
    return out
