"""Suites that run RTL (the target's own or a mutant's copy) and say whether it passed.

A suite has ``build(rtl_dir, build_root)`` (raises :class:`~t2c_sim.errors.SimulationError`
when the RTL does not build), ``run(rtl_dir, build_root) -> str | None`` (the first failed
check, or ``None``) and ``designs()`` (every :class:`Design` it simulates: toplevel, modules,
parameters; the equivalence check elaborates each one that contains a mutated file).
:class:`CosimSuite` runs layers through :func:`t2c_sim.cosim.run.run_layers` with the RTL
taken from ``rtl_dir`` and compares ``y``, the raw accumulators (``np.array_equal``) and
every run's cycle count with the golden model and the cycle model; :class:`UnitSuite` runs
one of the target's unit testbenches (:class:`~t2c_sim.closure.target.Bench`);
:class:`ChainSuite` runs several in order.

:func:`named_suite` builds the suites ``t2c-sim mutate --suite`` offers (:data:`SUITES`):

======== ==================================================================================
smoke    two K-split layers on the small-bank array and the requantizer testbench (a few
         seconds per mutant: the fast tier's campaign)
layers   random layers on four arrays (multi-tile, P = 1, dense, grouped conv, 2:8 with 4-bit
         operands, K-split into 2 and many chunks with partial tiles and wrapping partial
         sums; the three rounding profiles, per-row parameters and a matmul with both
         operand zero points), both PE array implementations (the dense array on PE instances, the others
         lane-packed), and a tile whose masked rows address past the output memory
units    every unit testbench with every parameter set, and layers through the AXI front
         door (register block and DMA around the core) on three bus configurations (one
         whose write segments span burst windows)
full     layers, then the records that close functional coverage on each array, then units:
         the suite that reaches the mutation target
======== ==================================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from t2c_sim.closure.benches import bench_design_params, build_bench, run_bench
from t2c_sim.closure.generate import close_coverage, regolden
from t2c_sim.closure.target import Bench, Target
from t2c_sim.config import HwConfig
from t2c_sim.cosim.run import build_accel, default_packed, run_layers
from t2c_sim.errors import ConfigError, MismatchError, SimulationError
from t2c_sim.record import LayerRecord
from t2c_sim.workloads.gen import (
    random_conv_record,
    random_linear_record,
    random_matmul_record,
    with_profile,
)

__all__ = ["Suite", "Design", "Stage", "CosimSuite", "UnitSuite", "ChainSuite", "SUITES", "named_suite",
           "random_stages", "edge_stages", "closure_stages", "unit_suites", "parts"]

log = logging.getLogger(__name__)

SUITES = ("smoke", "layers", "units", "full")


@dataclass(frozen=True)
class Design:
    """One elaborated design a suite simulates: a toplevel, its modules, its parameters."""

    top: str
    modules: tuple[str, ...]
    params: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, top: str, modules: Sequence[str], params: dict[str, int]) -> Design:
        return cls(top, tuple(modules), tuple(sorted(params.items())))


class Suite(Protocol):
    name: str

    def build(self, rtl_dir: Path, build_root: Path) -> None: ...

    def run(self, rtl_dir: Path, build_root: Path) -> str | None: ...

    def designs(self) -> list[Design]: ...


@dataclass(frozen=True)
class Stage:
    """Layers run together in one simulator process on one array configuration.

    ``packed`` picks the PE array implementation (``None``: the simulator's default).
    """

    name: str
    hw: HwConfig
    records: tuple[LayerRecord, ...]
    packed: bool | None = None


class CosimSuite:
    """Layers through the target's RTL, checked against golden ``y``, ``acc`` and cycles.

    Args:
        target: The design (its top's parameters for the equivalence check).
        stages: Run in order; the first failing stage kills the mutant.
        sim: ``"icarus"`` (fast builds: the default for mutants) or ``"verilator"``.
        timeout_s: Wall-clock limit of each stage's simulator run.
        name: Suite name for reports.
        build_args: Extra simulator build arguments (e.g. coverage flags).
        keep: Keep run directories (their paths collect in ``run_dirs``).
    """

    def __init__(self, target: Target, stages: Sequence[Stage], sim: str = "icarus",
                 timeout_s: float = 120.0, name: str = "cosim", build_args: Sequence[str] = (),
                 keep: bool = False) -> None:
        self.target = target
        self.stages = list(stages)
        self.sim = sim
        self.timeout_s = timeout_s
        self.name = name
        self.build_args = tuple(build_args)
        self.keep = keep
        self.run_dirs: list[Path] = []

    def _packed(self, st: Stage) -> bool:
        return default_packed(self.sim) if st.packed is None else st.packed

    def parts(self) -> list[CosimSuite]:
        """One suite per stage (a mutant builds and runs them one at a time)."""
        return [CosimSuite(self.target, [st], self.sim, self.timeout_s, self.name,
                           self.build_args, self.keep) for st in self.stages]

    def designs(self) -> list[Design]:
        out: list[Design] = []
        for st in self.stages:
            d = Design.of(self.target.top, self.target.modules,
                          self.target.top_parameters(st.hw, self._packed(st)))
            if d not in out:
                out.append(d)
        return out

    def build(self, rtl_dir: Path, build_root: Path) -> None:
        for st in self.stages:
            build_accel(st.hw, self.sim, build_root, rtl_dir=rtl_dir, build_args=self.build_args,
                        packed=self._packed(st))

    def run(self, rtl_dir: Path, build_root: Path) -> str | None:
        for st in self.stages:
            try:
                res = run_layers(list(st.records), st.hw, self.sim, build_root=build_root,
                                 rtl_dir=rtl_dir, timeout_s=self.timeout_s,
                                 build_args=self.build_args, keep=self.keep,
                                 packed=self._packed(st))
            except MismatchError as e:
                return f"{self.name}/{st.name}: {e}"
            except SimulationError as e:  # the same class (a timeout stays a timeout)
                raise type(e)(f"{self.name}/{st.name}: {e}") from None
            if self.keep and res and res[0].run_dir is not None:
                self.run_dirs.append(res[0].run_dir)
            for rec, r in zip(st.records, res):
                why = check_result(rec, r)
                if why:
                    return f"{self.name}/{st.name}: {why}"
        return None


def check_result(rec: LayerRecord, r) -> str | None:
    """The first difference of a co-simulation result from the golden record and the model."""
    if not np.array_equal(r.y, rec.y):
        bad = np.argwhere(r.y != rec.y)
        i = tuple(int(v) for v in bad[0])
        return (f"layer {rec.name}: y differs at {i} (expected {int(rec.y[i])}, got "
                f"{int(r.y[i])}; {len(bad)} of {r.y.size} outputs)")
    if r.acc is not None and rec.acc is not None and not np.array_equal(r.acc, rec.acc):
        i = tuple(int(v) for v in np.argwhere(r.acc != rec.acc)[0])
        return f"layer {rec.name}: acc differs at {i} (expected {int(rec.acc[i])}, got {int(r.acc[i])})"
    for t in r.tiles:
        if t.cycles_measured != t.cycles_predicted:
            return (f"layer {rec.name} tile {t.index}: {t.cycles_measured} cycles, the cycle "
                    f"model predicts {t.cycles_predicted}")
    return None


class UnitSuite:
    """One of the target's unit testbenches, once per parameter set.

    Args:
        target: The design (its RTL files by module name).
        bench: The testbench (toplevel, modules, cocotb module, default sets and payload).
        param_sets: Toplevel parameters (default the bench's), one build and run each.
        payload: Overrides of the bench's payload.
    """

    def __init__(self, target: Target, bench: Bench, *, sim: str = "icarus",
                 param_sets: Sequence[dict[str, int]] | None = None,
                 payload: dict | None = None, timeout_s: float = 300.0,
                 build_args: Sequence[str] = ()) -> None:
        self.target, self.bench = target, bench
        self.param_sets = [dict(p) for p in (param_sets if param_sets is not None
                                             else bench.param_sets)]
        self.payload = {**bench.payload, **(payload or {})}
        self.sim, self.timeout_s = sim, timeout_s
        self.name = f"unit-{bench.name}"
        self.build_args = tuple(build_args)
        self.run_dirs: list[Path] = []
        self.first_index = 0  # of param_sets[0] in the whole bench's sets (messages)

    def parts(self) -> list[UnitSuite]:
        """One suite per parameter set (a mutant builds and runs them one at a time)."""
        out = []
        for i, p in enumerate(self.param_sets):
            u = UnitSuite(self.target, self.bench, sim=self.sim, param_sets=[p],
                          payload=self.payload, timeout_s=self.timeout_s,
                          build_args=self.build_args)
            u.name, u.first_index = self.name, self.first_index + i
            out.append(u)
        return out

    def designs(self) -> list[Design]:
        out: list[Design] = []
        for p in self.param_sets:
            d = Design.of(self.bench.top, self.bench.modules,
                          bench_design_params(self.bench, p))
            if d not in out:
                out.append(d)
        return out

    def build(self, rtl_dir: Path, build_root: Path) -> None:
        for p in self.param_sets:
            build_bench(self.target, self.bench, p, self.payload, sim=self.sim,
                        build_root=build_root, rtl_dir=rtl_dir, build_args=self.build_args)

    def run(self, rtl_dir: Path, build_root: Path) -> str | None:
        for i, p in enumerate(self.param_sets, self.first_index):
            try:
                d = run_bench(self.target, self.bench, p, self.payload, sim=self.sim,
                              build_root=build_root, timeout_s=self.timeout_s,
                              rtl_dir=rtl_dir, build_args=self.build_args)
            except MismatchError as e:
                return f"{self.name}[{i}]: {e}"
            except SimulationError as e:  # the same class (a timeout stays a timeout)
                raise type(e)(f"{self.name}[{i}]: {e}") from None
            self.run_dirs.append(d)
        return None


class ChainSuite:
    """Several suites in order (first kill wins); builds each before running any."""

    def __init__(self, suites: Sequence[Suite], name: str | None = None) -> None:
        self.suites = list(suites)
        self.name = name or "+".join(s.name for s in suites)

    @property
    def run_dirs(self) -> list[Path]:
        return [d for s in self.suites for d in getattr(s, "run_dirs", [])]

    def parts(self) -> list[Suite]:
        """Every stage and parameter set of every suite, in order (see :func:`parts`)."""
        return [q for x in self.suites for q in parts(x)]

    def restricted(self, module: str) -> ChainSuite:
        """The suites that simulate ``module`` (a mutant of a file that a suite does not
        compile cannot be killed by it, so its run is skipped)."""
        return ChainSuite([s for s in self.suites
                           if any(module in d.modules for d in s.designs())], self.name)

    def designs(self) -> list[Design]:
        out: list[Design] = []
        for s in self.suites:
            out += [d for d in s.designs() if d not in out]
        return out

    def build(self, rtl_dir: Path, build_root: Path) -> None:
        for s in self.suites:
            s.build(rtl_dir, build_root)

    def run(self, rtl_dir: Path, build_root: Path) -> str | None:
        for s in self.suites:
            why = s.run(rtl_dir, build_root)
            if why:
                return why
        return None


def parts(suite: Suite) -> list[Suite]:
    """``suite`` cut into the smallest pieces that build and run on their own (a stage, a
    parameter set), in order; a suite without ``parts()`` is one piece."""
    fn = getattr(suite, "parts", None)
    return list(fn()) if fn is not None else [suite]


# ------------------------------------------------------------------------------ the suites
def random_stages(target: Target, seed: int = 1) -> list[Stage]:
    """Random layers on the accelerator's four arrays (see the module docstring)."""
    r = np.random.default_rng(seed)
    hw_a, hw_c, hw_k, hw_b = (target.arrays[k] for k in ("hw_a", "hw_c", "hw_k", "hw_b"))
    a = (random_linear_record(r, name="fc_multitile", c_in=24, c_out=7, rows=11, n=2, m=4),
         random_linear_record(r, name="fc_p1_unsigned", c_in=10, c_out=3, rows=1, n=1, m=4,
                              a_signed=False, mode="half_up", relu=True),
         random_conv_record(r, name="conv3x3", c_in=3, c_out=4, h=5, w=5, n=2, m=4,
                            mode="half_away"),
         random_linear_record(r, name="fc_a4_floor", c_in=20, c_out=2, rows=2, n=2, m=4,
                              a_bits=4, a_signed=False, mode="floor"),
         # the build features: runtime rounding profiles, per-row (token-wise) parameters, an
         # activation x activation matmul with both operand zero points (leading dims, b^T)
         with_profile(r, random_linear_record(r, name="fc_ort", c_in=12, c_out=3, rows=5, n=2,
                                              m=4), "ort_fp32"),
         with_profile(r, random_linear_record(r, name="fc_tfl_rows", c_in=9, c_out=3, rows=4,
                                              n=2, m=4, token_wise=True), "tflite_double"),
         with_profile(r, random_conv_record(r, name="conv_tfl1", c_in=2, c_out=3, h=4, w=4,
                                            n=2, m=4), "tflite_single"),
         random_matmul_record(r, name="mm_zp", p=5, k=7, c=3, lead=(2,), trans_b=True,
                              params="row_column", mode="half_away"))
    k = (random_linear_record(r, name="fc_k2", c_in=20, c_out=3, rows=5, n=2, m=4),
         random_linear_record(r, name="fc_k_many", c_in=52, c_out=5, rows=7, n=2, m=4,
                              mode="half_up"),
         random_conv_record(r, name="conv_k", c_in=4, c_out=3, h=4, w=4, n=2, m=4,
                            mode="half_away", a_signed=False),
         _psum_wrap(random_linear_record(r, name="fc_k_wrap", c_in=33, c_out=2, rows=3,
                                         n=1, m=4, mode="floor")))
    c = (random_linear_record(r, name="fc_dense", c_in=12, c_out=5, rows=7, n=4, m=4),
         random_conv_record(r, name="conv_grouped", c_in=4, c_out=4, h=6, w=5, stride=2,
                            groups=2, n=1, m=4, batch=2, mode="floor"))
    b = (random_linear_record(r, name="fc_b", c_in=40, c_out=9, rows=13, n=2, m=8, a_bits=4,
                              w_bits=4),
         random_conv_record(r, name="conv_b", c_in=8, c_out=5, h=6, w=6, n=1, m=8, a_bits=4,
                            w_bits=4, mode="half_up"))
    return [Stage("hw_a", hw_a, a, packed=True), Stage("hw_k", hw_k, k, packed=True),
            Stage("hw_c", hw_c, c, packed=False), Stage("hw_b", hw_b, b, packed=True)]


def edge_stages(target: Target, seed: int = 1) -> list[Stage]:
    """Fixed corner layers: a 2-row tile of 64 channels that fills the power-of-two output
    memory of ``hw_o`` exactly (the masked row of the partial block addresses past its end)."""
    r = np.random.default_rng(seed)
    hw = target.arrays["hw_o"]
    rec = random_linear_record(r, name="fc_out_edge", c_in=8, c_out=64, rows=2, n=2, m=4)
    return [Stage("hw_o", hw, (rec,), packed=True)]


def _psum_wrap(rec: LayerRecord) -> LayerRecord:
    """``rec`` with ``bias_eff`` at the accumulator's top, so partial sums wrap (golden redone)."""
    top = (1 << (rec.acc_bits - 1)) - 1
    return regolden(rec.replace(bias_eff=np.full(rec.c_out, top - 5, np.int64), wrap_ok=True))


def closure_stages(target: Target, stages: Sequence[Stage], seed: int) -> list[Stage]:
    """One stage per array of ``stages``: the records that close functional coverage on it."""
    out = []
    for st in stages:
        res = close_coverage(target.cover_model(st.hw), seed, max_records=400,
                             prefix=f"cov_{st.name}_")
        log.info("closure on %s: %d records, holes %s", st.name, len(res.records), res.holes)
        out.append(Stage(f"closure_{st.name}", st.hw, tuple(res.records), st.packed))
    return out


def unit_suites(target: Target, sim: str = "icarus", build_args: Sequence[str] = ()
                ) -> list[UnitSuite]:
    """Every bench of the target with every parameter set."""
    return [UnitSuite(target, b, sim=sim, build_args=build_args) for b in target.benches.values()]


def named_suite(name: str, target: Target, *, sim: str = "icarus", seed: int = 1,
                build_args: Sequence[str] = (), keep: bool = False,
                timeout_s: float = 300.0) -> ChainSuite:
    """The suite ``name`` (one of :data:`SUITES`) on ``target`` (see the module docstring).

    Raises:
        ConfigError: An unknown name (names the known ones).
    """
    if name not in SUITES:
        raise ConfigError(f"unknown suite {name!r} (known: {', '.join(SUITES)})", key="--suite")
    kw = dict(sim=sim, build_args=build_args)
    if name == "smoke":
        r = np.random.default_rng(seed)
        hw = target.arrays["hw_k"]
        recs = (random_linear_record(r, name="fc_k", c_in=20, c_out=3, rows=3, n=2, m=4),
                random_conv_record(r, name="conv_k", c_in=2, c_out=3, h=3, w=4, n=2, m=4,
                                   mode="half_away"))
        cos = CosimSuite(target, [Stage("hw_k", hw, recs, packed=True)], name=f"smoke-s{seed}",
                         timeout_s=timeout_s, keep=keep, **kw)
        req = UnitSuite(target, target.bench("requant"), payload={"n_random": 400},
                        param_sets=[dict(target.bench("requant").param_sets[0])], **kw)
        return ChainSuite([cos, req], name=f"smoke-s{seed}")
    if name == "units":
        return ChainSuite(unit_suites(target, **kw), name="units")
    stages = random_stages(target, seed)
    cos = CosimSuite(target, stages + edge_stages(target, seed), name=f"layers-s{seed}",
                     timeout_s=timeout_s, keep=keep, **kw)
    if name == "layers":
        return ChainSuite([cos], name=f"layers-s{seed}")
    cov = CosimSuite(target, closure_stages(target, stages, seed), name=f"closure-s{seed}",
                     timeout_s=timeout_s, keep=keep, **kw)
    return ChainSuite([cos, cov, *unit_suites(target, **kw)], name=f"full-s{seed}")
