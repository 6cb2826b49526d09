"""Suites that run RTL (original or a mutant's copy) and say whether it passed.

A suite has ``build(rtl_dir, build_root)`` (raises :class:`~t2c_sim.errors.SimulationError`
when the RTL does not build), ``run(rtl_dir, build_root) -> str | None`` (the first failed
check, or ``None``) and ``parameter_sets()`` (the ``t2c_accel_top`` parameters it simulates,
for the equivalence check). :class:`CosimSuite` runs layers through
:func:`t2c_sim.cosim.run.run_layers` with the RTL taken from ``rtl_dir`` and compares ``y``,
the raw accumulators (``np.array_equal``) and every tile's cycle count with the golden model
and the cycle model; :class:`UnitSuite` runs a cocotb unit testbench; :class:`ChainSuite`
runs several in order. :func:`full_suite` is the one that reaches the mutation target.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from t2c_sim.config import HwConfig
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.record import LayerRecord

__all__ = ["Suite", "Stage", "CosimSuite", "UnitSuite", "ChainSuite", "unit_suites", "closure_unit_suites",
           "closure_stages", "full_suite", "REQUANT_SETS", "PE_SETS", "TOP_SET"]

log = logging.getLogger(__name__)


class Suite(Protocol):
    name: str

    def build(self, rtl_dir: Path, build_root: Path) -> None: ...

    def run(self, rtl_dir: Path, build_root: Path) -> str | None: ...

    def parameter_sets(self) -> list[dict[str, int]]: ...


@dataclass(frozen=True)
class Stage:
    """Layers run together in one simulator process on one array configuration."""

    name: str
    hw: HwConfig
    records: tuple[LayerRecord, ...]


class CosimSuite:
    """Layers through the accelerator RTL, checked against golden ``y``, ``acc`` and cycles.

    Args:
        stages: Run in order; the first failing stage kills the mutant.
        sim: ``"icarus"`` (fast builds: the default for mutants) or ``"verilator"``.
        timeout_s: Wall-clock limit of each stage's simulator run.
        name: Suite name for reports.
    """

    def __init__(self, stages: Sequence[Stage], sim: str = "icarus", timeout_s: float = 120.0,
                 name: str = "cosim", build_args: Sequence[str] = (), keep: bool = False) -> None:
        self.stages = list(stages)
        self.sim = sim
        self.timeout_s = timeout_s
        self.name = name
        self.build_args = tuple(build_args)
        self.keep = keep
        self.run_dirs: list[Path] = []  # kept run directories (keep=True), e.g. coverage.dat

    @classmethod
    def random(cls, seed: int = 1, sim: str = "icarus", timeout_s: float = 120.0,
               **kw) -> CosimSuite:
        """A small random suite: two array configurations, linear and conv layers."""
        from t2c_sim.workloads.gen import random_conv_record, random_linear_record

        r = np.random.default_rng(seed)
        hw_a = HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=64,
                        w_depth=64, out_depth=32, ch_depth=8)
        hw_c = HwConfig(rows=3, cols=2, n=4, m=4, a_bits=8, w_bits=8, act_depth=96,
                        w_depth=64, out_depth=48, ch_depth=8)
        a = (random_linear_record(r, name="fc_multitile", c_in=24, c_out=7, rows=11, n=2, m=4),
             random_linear_record(r, name="fc_p1_unsigned", c_in=10, c_out=3, rows=1, n=1, m=4,
                                  a_signed=False, mode="half_up", relu=True),
             random_conv_record(r, name="conv3x3", c_in=3, c_out=4, h=5, w=5, n=2, m=4,
                                mode="half_away"),
             random_linear_record(r, name="fc_a4_floor", c_in=20, c_out=2, rows=2, n=2, m=4,
                                  a_bits=4, a_signed=False, mode="floor"))
        c = (random_linear_record(r, name="fc_dense", c_in=12, c_out=5, rows=7, n=4, m=4),
             random_conv_record(r, name="conv_grouped", c_in=4, c_out=4, h=6, w=5, stride=2,
                                groups=2, n=1, m=4, batch=2, mode="floor"))
        return cls([Stage("hw_a", hw_a, a), Stage("hw_c", hw_c, c)], sim, timeout_s,
                   name=f"cosim-random-s{seed}", **kw)

    def parameter_sets(self) -> list[dict[str, int]]:
        from t2c_sim.cosim.run import hw_parameters

        out: list[dict[str, int]] = []
        for st in self.stages:
            p = hw_parameters(st.hw)
            if p not in out:
                out.append(p)
        return out

    def build(self, rtl_dir: Path, build_root: Path) -> None:
        from t2c_sim.cosim.run import build_accel

        for st in self.stages:
            build_accel(st.hw, self.sim, build_root, rtl_dir=rtl_dir, build_args=self.build_args)

    def run(self, rtl_dir: Path, build_root: Path) -> str | None:
        from t2c_sim.cosim.run import run_layers

        for st in self.stages:
            try:
                res = run_layers(list(st.records), st.hw, self.sim, build_root=build_root,
                                 rtl_dir=rtl_dir, timeout_s=self.timeout_s,
                                 build_args=self.build_args, keep=self.keep)
            except MismatchError as e:
                return f"{self.name}/{st.name}: {e}"
            except SimulationError as e:
                raise SimulationError(f"{self.name}/{st.name}: {e}") from None
            if self.keep and res and res[0].run_dir is not None:
                self.run_dirs.append(res[0].run_dir)
            for rec, r in zip(st.records, res):
                why = _check(rec, r)
                if why:
                    return f"{self.name}/{st.name}: {why}"
        return None


def _check(rec: LayerRecord, r) -> str | None:
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
    """A cocotb testbench of one RTL toplevel (``testbenches/test_<unit>.py``) per parameter set.

    Args:
        top: Toplevel module (``t2c_requant``, ``t2c_nm_pe``, ``t2c_accel_top``).
        modules: RTL modules it needs, in compile order (default: ``top`` alone).
        param_sets: Toplevel parameters, one build and run each.
        payload: Testbench payload besides ``params`` (seed, vector counts).
    """

    def __init__(self, top: str, param_sets: Sequence[dict[str, int]], payload: dict, *,
                 modules: Sequence[str] | None = None, sim: str = "icarus",
                 timeout_s: float = 300.0, build_args: Sequence[str] = (),
                 tb: str | Path | None = None) -> None:
        from t2c_sim.cosim import sim as simmod

        self.top, self.param_sets, self.payload = top, list(param_sets), dict(payload)
        self.modules = tuple(modules or (top,))
        self.tb = Path(tb) if tb is not None else \
            simmod.TB_DIR / f"test_{top.removeprefix('t2c_')}.py"
        self.sim, self.timeout_s = sim, timeout_s
        self.name = f"unit-{top}" if tb is None else f"{Path(tb).stem}-{top}"
        self.build_args = tuple(build_args)
        self.run_dirs: list[Path] = []

    def parameter_sets(self) -> list[dict[str, int]]:
        return list(self.param_sets) if self.top == "t2c_accel_top" else []

    def _build(self, rtl_dir: Path, build_root: Path, p: dict[str, int]):
        from t2c_sim.cosim import sim as simmod

        return simmod.build(self.sim, self.top, sources(rtl_dir, self.modules), p, build_root,
                            build_args=self.build_args)

    def build(self, rtl_dir: Path, build_root: Path) -> None:
        for p in self.param_sets:
            self._build(rtl_dir, build_root, p)

    def run(self, rtl_dir: Path, build_root: Path) -> str | None:
        from t2c_sim.cosim import sim as simmod

        for p in self.param_sets:
            info = self._build(rtl_dir, build_root, p)
            try:
                res = simmod.run(info, self.tb, payload={"params": p, **self.payload},
                                 timeout_s=self.timeout_s)
            except MismatchError as e:
                return f"{self.name}: {e}"
            self.run_dirs.append(res.parent)
        return None


REQUANT_SETS = (
    {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16},
    {"ACC_BITS": 24, "MULT_BITS": 16, "SHIFT_BITS": 6, "Y_BITS": 8},
)
PE_SETS = (
    {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 4, "IDX_BITS": 2},
    {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 1, "M": 4, "IDX_BITS": 2},
    {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 4, "M": 4, "IDX_BITS": 2},
    {"A_BITS": 4, "W_BITS": 4, "ACC_BITS": 24, "N": 2, "M": 8, "IDX_BITS": 3},
    {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 17, "N": 2, "M": 4, "IDX_BITS": 2},
    {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 5, "IDX_BITS": 3},
)
TOP_SET = {"ROWS": 2, "COLS": 2, "N": 2, "M": 4, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32,
           "MULT_BITS": 32, "SHIFT_MAX": 40, "ACT_DEPTH": 16, "W_DEPTH": 12, "OUT_DEPTH": 8,
           "CH_DEPTH": 4}


def unit_suites(sim: str = "icarus", build_args: Sequence[str] = (), *,
                all_sets: bool = False) -> list[UnitSuite]:
    """Today's unit testbenches with the parameter sets of ``tests/test_rtl_units.py`` and
    ``tests/test_cosim_top.py`` (fast-tier vector counts): the first set of each, or with
    ``all_sets`` every set the fast tier runs on Icarus."""
    from t2c_sim.cosim.run import RTL_MODULES

    kw = dict(sim=sim, build_args=build_args)
    req = REQUANT_SETS if all_sets else REQUANT_SETS[:1]
    pe = PE_SETS if all_sets else PE_SETS[:1]
    return [
        UnitSuite("t2c_accel_top", [TOP_SET], {"seed": 5}, modules=RTL_MODULES, **kw),
        UnitSuite("t2c_requant", list(req), {"seed": 11, "n_random": 3000}, **kw),
        UnitSuite("t2c_nm_pe", list(pe), {"seed": 21, "n_cycles": 1500}, **kw),
    ]


def closure_unit_suites(sim: str = "icarus", build_args: Sequence[str] = ()) -> list[UnitSuite]:
    """Tests added to kill survivors of the mutation campaign (see rtl/mutation_waivers.yaml):

    * the top's port testbench on a dense 4:4 array, where the host write word is the weight
      word (``N*(W_BITS+IDX_BITS) >= M*A_BITS``): kills mutants of the port width;
    * :mod:`t2c_sim.closure.tb_reset_idle`: every control register reads 0 after reset and
      the status outputs stay idle: kills control registers dropped from the reset.
    """
    from t2c_sim.cosim.run import RTL_MODULES

    dense = {**TOP_SET, "N": 4, "M": 4}
    kw = dict(sim=sim, build_args=build_args, modules=RTL_MODULES)
    return [
        UnitSuite("t2c_accel_top", [dense], {"seed": 9}, **kw),
        UnitSuite("t2c_accel_top", [TOP_SET], {"idle": 8},
                  tb=Path(__file__).with_name("tb_reset_idle.py"), **kw),
    ]


def closure_stages(suite: CosimSuite, seed: int) -> list[Stage]:
    """One stage per array of ``suite``: the records that close functional coverage on it."""
    from t2c_sim.closure.funcov import CoverModel
    from t2c_sim.closure.generate import close_coverage

    out = []
    for st in list(suite.stages):
        res = close_coverage(CoverModel(st.hw), seed, max_records=400, prefix=f"cov_{st.name}_")
        log.info("closure on %s: %d records, holes %s", st.name, len(res.records), res.holes)
        out.append(Stage(f"closure_{st.name}", st.hw, tuple(res.records)))
    return out


def full_suite(seed: int = 1, sim: str = "icarus") -> ChainSuite:
    """The suite that reaches the mutation target: random layers plus the records that close
    functional coverage, every fast-tier unit parameter set, and the tests added for survivors."""
    cos = CosimSuite.random(seed, sim=sim)
    cos.stages += closure_stages(cos, seed)
    return ChainSuite([cos, *unit_suites(sim, all_sets=True), *closure_unit_suites(sim)])


class ChainSuite:
    """Several suites in order (first kill wins); builds each before running any."""

    def __init__(self, suites: Sequence[Suite], name: str | None = None) -> None:
        self.suites = list(suites)
        self.name = name or "+".join(s.name for s in suites)

    def parameter_sets(self) -> list[dict[str, int]]:
        out: list[dict[str, int]] = []
        for s in self.suites:
            out += [p for p in s.parameter_sets() if p not in out]
        return out

    def build(self, rtl_dir: Path, build_root: Path) -> None:
        for s in self.suites:
            s.build(rtl_dir, build_root)

    def run(self, rtl_dir: Path, build_root: Path) -> str | None:
        for s in self.suites:
            try:
                why = s.run(rtl_dir, build_root)
            except SimulationError as e:
                raise SimulationError(f"{s.name}: {e}") from None
            if why:
                return why
        return None
