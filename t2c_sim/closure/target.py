"""The one place the closure engines learn what they verify: a DUT's RTL, top, benches, arrays.

Coverage (:mod:`.codecov`, :mod:`.funcov`) and mutation (:mod:`.mutate`, :mod:`.mutrun`) never
name a file, a module or a parameter of the accelerator themselves: they take a
:class:`Target`. It holds

* the RTL folder, the top module and the modules it needs in compile order (the files a
  mutation campaign mutates, the files code coverage is reported for), and the waiver files
  next to the RTL;
* the top's Verilog parameters for an array (:attr:`Target.top_parameters`), so the same
  :class:`~t2c_sim.config.HwConfig` the host plans with is what the simulator and the Yosys
  equivalence check elaborate;
* named arrays (:attr:`Target.arrays`) and unit testbenches (:class:`Bench`, with their
  parameter sets and payloads) that the suites of :mod:`.suites` are built from;
* whether the DUT has stream ports, and the sampler that turns an observed ready/valid trace
  into a back-pressure bin (:func:`backpressure_bin`; :meth:`Target.cover_model` passes it on).

:func:`accel_target` is today's accelerator (``rtl/``). Another DUT (e.g. the systolic
array example under ``examples/``, described by its ``dut.yaml``) would be another
:class:`Target` built from that description; nothing else in ``t2c_sim.closure`` changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from t2c_sim.closure.funcov import CoverModel
from t2c_sim.config import HwConfig
from t2c_sim.cosim.axi_frontdoor import AXI_RTL_MODULES, REGS
from t2c_sim.cosim.axi_frontdoor import TB_MODULE as FD_TB
from t2c_sim.cosim.run import RTL_MODULES, hw_parameters
from t2c_sim.cosim.sim import RTL_DIR, TB_DIR
from t2c_sim.errors import ConfigError, SimulationError

__all__ = ["Bench", "Target", "accel_target", "backpressure_bin", "sources"]

BackpressureSampler = Callable[[Sequence[int]], str]


def sources(rtl_dir: str | Path, modules: Sequence[str]) -> list[Path]:
    """``<rtl_dir>/<module>.v`` for each module, in order.

    Raises:
        SimulationError: A file is missing (names it).
    """
    out = []
    for m in modules:
        p = Path(rtl_dir) / (m if m.endswith(".v") else f"{m}.v")
        if not p.is_file():
            raise SimulationError("RTL source not found", file=str(p))
        out.append(p)
    return out


def backpressure_bin(ready: Sequence[int]) -> str:
    """Classify a per-cycle ``ready`` trace (1 = the sink accepted) of one stream transfer.

    ``none``: ready every cycle; ``stalled``: some run of 8 or more cycles without ready;
    ``bursty``: at least two separate runs of 2..7 not-ready cycles; ``sparse``: otherwise
    (isolated single-cycle gaps, or one short run).

    Raises:
        ConfigError: An empty trace or a value other than 0/1.
    """
    if not len(ready):
        raise ConfigError("an empty ready trace has no back-pressure pattern", key="ready")
    if any(v not in (0, 1) for v in ready):
        raise ConfigError("a ready trace holds 0 and 1 only", key="ready")
    runs, n = [], 0
    for v in ready:
        if v:
            if n:
                runs.append(n)
            n = 0
        else:
            n += 1
    if n:
        runs.append(n)
    if not runs:
        return "none"
    if max(runs) >= 8:
        return "stalled"
    if sum(1 for r in runs if r >= 2) >= 2:
        return "bursty"
    return "sparse"



@dataclass(frozen=True)
class Bench:
    """A bench of the target: a cocotb module run against one toplevel, or (``kind``
    ``frontdoor``) layers through the AXI front door (:mod:`t2c_sim.closure.benches`).

    Attributes:
        name: Short name (``requant``); suites and suite files refer to it.
        top: Toplevel module (the RTL top the bench verifies).
        modules: RTL modules it needs, in compile order.
        tb: The cocotb test module.
        param_sets: Toplevel parameter sets the closure suites run (fast-tier sizes).
        payload: Testbench payload besides ``params`` (seed, vector counts).
        kind: ``cocotb`` or ``frontdoor``.
    """

    name: str
    top: str
    modules: tuple[str, ...]
    tb: Path
    param_sets: tuple[Mapping[str, int], ...]
    payload: Mapping[str, object] = field(default_factory=dict)
    kind: str = "cocotb"


@dataclass(frozen=True)
class Target:
    """A design under verification, as the closure engines see it (see the module docstring)."""

    name: str
    rtl_dir: Path
    top: str
    modules: tuple[str, ...]
    top_parameters: Callable[[HwConfig, bool], dict[str, int]]
    arrays: Mapping[str, HwConfig]
    benches: Mapping[str, Bench]
    stream: bool = False
    backpressure: BackpressureSampler | None = None
    excluded: Mapping[str, str] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        """The RTL files of the top and of every bench (what is mutated), in first-use order."""
        mods = dict.fromkeys([*self.modules, *(m for b in self.benches.values()
                                               for m in b.modules)])
        return tuple(f"{m}.v" for m in mods)

    def unassigned(self) -> list[str]:
        """``*.v`` files of the RTL folder that are neither verified (:attr:`files`) nor in
        :attr:`excluded` (file -> reason): a new RTL file must be one or the other."""
        return sorted(p.name for p in self.rtl_dir.glob("*.v")
                      if p.name not in self.files and p.name not in self.excluded)

    @property
    def mutation_waivers(self) -> Path:
        return self.rtl_dir / "mutation_waivers.yaml"

    @property
    def coverage_waivers(self) -> Path:
        return self.rtl_dir / "coverage_waivers.yaml"

    def sources(self, rtl_dir: str | Path | None = None,
                modules: Sequence[str] | None = None) -> list[Path]:
        """The top's sources (or ``modules``) from ``rtl_dir`` (default the target's)."""
        return sources(rtl_dir if rtl_dir is not None else self.rtl_dir, modules or self.modules)

    def bench(self, name: str) -> Bench:
        """A bench by name; :class:`ConfigError` naming the known ones otherwise."""
        if name not in self.benches:
            raise ConfigError(f"no testbench {name!r} for {self.name} (known: "
                              f"{', '.join(sorted(self.benches))})", key="testbench")
        return self.benches[name]

    def cover_model(self, hw: HwConfig) -> CoverModel:
        """The functional coverage model of this target on array ``hw``."""
        return CoverModel(hw, stream=self.stream)


def _accel_benches() -> dict[str, Bench]:
    tb = TB_DIR if TB_DIR is not None else Path("testbenches")
    top = {"ROWS": 2, "COLS": 2, "N": 2, "M": 4, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32,
           "MULT_BITS": 32, "SHIFT_MAX": 40, "ACT_DEPTH": 16, "W_DEPTH": 12, "OUT_DEPTH": 8,
           "CH_DEPTH": 4, "Y_BITS": 16, "SH_BITS": 6}
    # tests/test_cosim_top.py's PARAMS_B: 3x1, 1:8, odd widths
    top_b = {**top, "ROWS": 3, "COLS": 1, "N": 1, "M": 8, "A_BITS": 5, "W_BITS": 6,
             "ACT_DEPTH": 30, "W_DEPTH": 9, "OUT_DEPTH": 12, "CH_DEPTH": 3}
    pe = {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 4, "IDX_BITS": 2}
    arr = {"ROWS": 3, "COLS": 2, "A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 4,
           "IDX_BITS": 2}
    here = Path(__file__).resolve().parent
    mods = RTL_MODULES
    fd_mods = (*RTL_MODULES, *AXI_RTL_MODULES)
    # the front door (t2c_axi_accel: AXI4-Lite registers, DMA, core) on a 2x3 array whose banks
    # K-split the bench's first layer, a 64-bit bus with long bursts and one command per layer,
    # then a 32-bit bus with 2-beat bursts, a slow memory and one command per run (its 3-beat
    # acc write ends in a 1-beat burst), then bus errors (SLVERR) on a read and on a write,
    # then the register map and refused commands, then the layers again with bursts of 8 beats:
    # a tile's acc writes (12 and 16 beats) span two burst windows with 2+ beats in the
    # second. The last two reach t2c_axi_wr's reload of a burst length in the middle of a
    # segment, which decides WLAST (with 16 beats every write fits one window). Last, resets:
    # in the middle of a load and after a completed command (the registers read 0 after it).
    fd = {**top, "ROWS": 2, "COLS": 3, "ACT_DEPTH": 16, "W_DEPTH": 24, "OUT_DEPTH": 64,
          "CH_DEPTH": 6, "SHIFT_MAX": 63, "PACKED": 1, "DATA_W": 64, "BURST_LEN": 16,
          "OUTSTANDING": 4, "RD_LAT": 4, "WR_LAT": 4, "MODE": 0}
    regs = {**{k: v for k, v in top.items() if k != "SH_BITS"}, "ROWS": 3, "COLS": 5, "N": 1,
            "M": 8, "A_BITS": 6, "W_BITS": 7, "ACC_BITS": 28, "MULT_BITS": 24, "ACT_DEPTH": 96,
            "W_DEPTH": 80, "OUT_DEPTH": 64, "CH_DEPTH": 10, "Y_BITS": 16,
            "DATA_W": 128, "BURST_LEN": 8, "OUTSTANDING": 3}
    return {
        "accel_top": Bench("accel_top", "t2c_accel_top", mods, tb / "test_accel_top.py",
                           ({**top, "PACKED": 1}, {**top, "PACKED": 0},
                            # a build without the features: every feature's run mode refused
                            # (err_o[5]), the section-2 trials unchanged
                            {**top, "PACKED": 1, "PROFILES": 0, "ROW_PARAMS": 0,
                             "ZERO_POINTS": 0}), {"seed": 5}),
        "accel_top_b": Bench("accel_top_b", "t2c_accel_top", mods, tb / "test_accel_top.py",
                             ({**top_b, "PACKED": 1},), {"seed": 7}),
        # a dense 8:8 row of two PEs: the weight word is the widest host word (HW_W's middle
        # branch; accel_top has the channel word widest, accel_top_b the activation word)
        "accel_top_dense": Bench("accel_top_dense", "t2c_accel_top", mods,
                                 tb / "test_accel_top.py",
                                 ({**top, "ROWS": 1, "N": 8, "M": 8, "ACT_DEPTH": 16,
                                   "PACKED": 1},), {"seed": 9}),
        "reset_idle": Bench("reset_idle", "t2c_accel_top", mods, here / "tb_reset_idle.py",
                            ({**top, "PACKED": 1},), {"idle": 8}),
        # the requantizer-latency self-check (err_o[7]) fires on an injected skew
        "self_check": Bench("self_check", "t2c_accel_top", mods, here / "tb_self_check.py",
                            ({**top, "PACKED": 1},), {}),
        # section 2 and the three runtime profiles (ties of each rounding step, extremes), a
        # narrow M0 (section 2 only), ort_fp32 on a 24-bit accumulator and a 32-bit output, a build
        # without profiles
        "requant": Bench("requant", "t2c_requant", ("t2c_requant",), tb / "test_requant.py",
                         ({"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16},
                          {"ACC_BITS": 24, "MULT_BITS": 16, "SHIFT_BITS": 6, "Y_BITS": 8},
                          {"ACC_BITS": 24, "MULT_BITS": 24, "SHIFT_BITS": 6, "Y_BITS": 12},
                          # a 32-bit output: ort_fp32's left-shift path (float32 products of
                          # 2^24 and more) shows instead of saturating
                          {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 32},
                          {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16,
                           "PROFILES": 0}),
                         {"seed": 11, "n_random": 3000, "n_profile": 1000}),
        "nm_pe": Bench("nm_pe", "t2c_nm_pe", ("t2c_nm_pe",), tb / "test_nm_pe.py",
                       (pe, {**pe, "N": 1}, {**pe, "N": 4},
                        {**pe, "A_BITS": 4, "W_BITS": 4, "ACC_BITS": 24, "M": 8, "IDX_BITS": 3},
                        {**pe, "ACC_BITS": 17}, {**pe, "M": 5, "IDX_BITS": 3}),
                       {"seed": 21, "n_cycles": 1500}),
        "pe_array": Bench("pe_array", "t2c_pe_array", ("t2c_nm_pe", "t2c_pe_array"),
                          tb / "test_pe_array.py",
                          ({**arr, "PACKED": 1}, {**arr, "PACKED": 0},
                           {**arr, "ROWS": 2, "COLS": 3, "ACC_BITS": 17, "PACKED": 1},
                           {**arr, "ROWS": 2, "COLS": 2, "M": 5, "IDX_BITS": 3, "PACKED": 1},
                           {**arr, "COLS": 1, "A_BITS": 4, "W_BITS": 4, "ACC_BITS": 24, "N": 9,
                            "M": 16, "IDX_BITS": 4, "PACKED": 1},
                           # 9 rows of 3:12: 108 activation fields (a seventh spread step) and
                           # indices 12..15 >= M past the unrolled eight lanes
                           {**arr, "ROWS": 9, "COLS": 1, "A_BITS": 4, "W_BITS": 4,
                            "ACC_BITS": 16, "N": 3, "M": 12, "IDX_BITS": 4, "PACKED": 1},
                           # operand zero points (matmul): both implementations, and wrapping
                           # at the minimal ACC_BITS = A_BITS + W_BITS + 3
                           {**arr, "ZP": 1, "PACKED": 1}, {**arr, "ZP": 1, "PACKED": 0},
                           {**arr, "ROWS": 2, "COLS": 3, "ACC_BITS": 19, "ZP": 1, "PACKED": 1}),
                          {"seed": 41, "n_cycles": 300}),
        "frontdoor": Bench("frontdoor", "t2c_axi_accel", fd_mods, FD_TB,
                           (fd, {**fd, "DATA_W": 32, "BURST_LEN": 2, "OUTSTANDING": 2,
                                 "RD_LAT": 9, "WR_LAT": 3, "MODE": 1}, {**fd, "MODE": 2},
                            {**fd, "MODE": 3}, {**fd, "BURST_LEN": 8}, {**fd, "MODE": 4}),
                           {"seed": 13}, kind="frontdoor"),
        "axi_regs": Bench("axi_regs", "t2c_axil_regs", ("t2c_axil_regs",),
                          tb / "test_axi_regs.py", (regs,), {"seed": 11, "regs": dict(REGS)}),
    }


def _accel_arrays() -> dict[str, HwConfig]:
    return {
        # 2x2 2:4, 8-bit, banks of 32 words: multi-tile layers, P = 1, 4-bit activations
        "hw_a": HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=64, w_depth=64,
                         out_depth=32, ch_depth=8),
        # 3x2 dense 4:4: rows not a power of two, grouped convs
        "hw_c": HwConfig(rows=3, cols=2, n=4, m=4, a_bits=8, w_bits=8, act_depth=96,
                         w_depth=64, out_depth=48, ch_depth=8),
        # 2x2 2:4 with banks of 3-4 words: every layer with K > 12 is K-split (2 or many
        # chunks), short last chunks stall, partial sums wrap
        "hw_k": HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=8, w_depth=6,
                         out_depth=24, ch_depth=4),
        # 4x4 2:8 with 4-bit operands: a wider N:M, narrow lanes
        "hw_b": HwConfig(rows=4, cols=4, n=2, m=8, a_bits=4, w_bits=4, act_depth=256,
                         w_depth=128, out_depth=64, ch_depth=16),
        # 3x2 with a power-of-two output memory and 32 channel blocks: a 2-row tile of 64
        # channels fills it exactly, so the masked third row of the block addresses past its
        # end (the address wraps onto row 0 if the row mask were wrong)
        "hw_o": HwConfig(rows=3, cols=2, n=2, m=4, a_bits=8, w_bits=8, act_depth=12,
                         w_depth=128, out_depth=64, ch_depth=64),
    }


def accel_target() -> Target:
    """The accelerator of ``rtl/`` (top ``t2c_accel_top``, :data:`t2c_sim.cosim.run.RTL_MODULES`)."""
    return Target(name="t2c_accel", rtl_dir=RTL_DIR, top="t2c_accel_top", modules=RTL_MODULES,
                  top_parameters=hw_parameters,
                  arrays=_accel_arrays(), benches=_accel_benches())
