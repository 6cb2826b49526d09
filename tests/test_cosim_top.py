"""The accelerator top through its own host ports (cocotb testbench ``test_accel_top.py``).

Error flags refuse illegal shapes; a GEMM written word by word through the host write port and
read back through the read port equals an independent NumPy oracle, also when the dot products
run as several K-chunks (partial sums checked between runs); ``cycles_o`` equals the cycle
model; a ``start_i`` pulse while busy is ignored; ``sh > SHIFT_MAX`` raises ``err_o[6]``. Both
PE array implementations (``PACKED``) on Icarus; Verilator in the slow tier. The build features
(per-row parameters through ``hw_sel_i = 3``, operand zero points, rounding profiles) run in
trials of their own; a build without them refuses each such run mode (``err_o[5]``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cosim_rq import MUTANTS, _mutant_rtl

from t2c_sim.config import HwConfig
from t2c_sim.cosim import sim
from t2c_sim.cosim.accel import RTL_MODULES
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.export import iface

# Parameters from the interface's one owner (Y_BITS, SH_BITS included), as the flow passes them.
PARAMS = iface.top_parameters(HwConfig(rows=2, cols=2, n=2, m=4, a_bits=8, w_bits=8, acc_bits=32,
                                       mult_bits=32, shift_max=40, act_depth=16, w_depth=12,
                                       out_depth=8, ch_depth=4))
PARAMS_B = {**PARAMS, "ROWS": 3, "COLS": 1, "N": 1, "M": 8, "A_BITS": 5, "W_BITS": 6,
            "ACT_DEPTH": 30, "W_DEPTH": 9, "OUT_DEPTH": 12, "CH_DEPTH": 3}


def _run(simulator: str, params: dict, seed: int, sources: list[Path] | None = None,
         build_root: Path | None = None) -> None:
    args = ["--output-split", "0"] if simulator == "verilator" else []
    info = sim.build(simulator, "t2c_accel_top", sources or sim.rtl_sources(*RTL_MODULES), params,
                     build_root or sim.default_build_root(), build_args=args)
    print(f"seed={seed}")
    sim.run(info, sim.TB_DIR / "test_accel_top.py", payload={"params": params, "seed": seed},
            timeout_s=300)


@pytest.mark.sim
@pytest.mark.parametrize("packed", [0, 1])
def test_accel_top_ports_icarus(packed: int) -> None:
    _run("icarus", {**PARAMS, "PACKED": packed}, 5)


@pytest.mark.sim
def test_accel_top_without_features_refuses_their_modes() -> None:
    """PROFILES = ROW_PARAMS = ZERO_POINTS = 0: every feature's run mode raises err_o[5]; the
    section-2 trials still pass."""
    _run("icarus", {**PARAMS, "PACKED": 1, "PROFILES": 0, "ROW_PARAMS": 0, "ZERO_POINTS": 0}, 11)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("simulator,pset,seed,packed", [
    ("verilator", "a", 6, 0), ("icarus", "b", 7, 1), ("verilator", "b", 8, 0),
    ("verilator", "a", 9, 1), ("icarus", "b", 10, 0)])
def test_accel_top_ports_more(simulator: str, pset: str, seed: int, packed: int) -> None:
    _run(simulator, {**(PARAMS if pset == "a" else PARAMS_B), "PACKED": packed}, seed)


# the directed cases catch these two; the random trials the others (one per feature here)
PORT_MUTANTS_FAST = ("ort_fp32_product_rounding_off_by_one", "mode_bit2_dropped",
                     "per_row_bias_dropped", "zw_dropped")


@pytest.mark.sim
@pytest.mark.parametrize("mutant", [m if m in PORT_MUTANTS_FAST else
                                    pytest.param(m, marks=pytest.mark.slow) for m in MUTANTS])
def test_port_testbench_catches_mutant(mutant: str, tmp_path: Path) -> None:
    """Every RTL mutant of tests/test_cosim_rq.py fails the port-level testbench: a mismatch
    naming the trial or case, or (a read of a word no one wrote) an X/Z on a read port."""
    rtl = _mutant_rtl(tmp_path, *MUTANTS[mutant])
    with pytest.raises((MismatchError, SimulationError)) as ei:
        _run("icarus", {**PARAMS, "PACKED": 1}, 5, [rtl / f"{m}.v" for m in RTL_MODULES],
             tmp_path / "b")
    msg = str(ei.value)
    assert isinstance(ei.value, MismatchError) or "is X/Z at row" in msg, msg
    print(f"{mutant}: {msg.split('; log')[0]}")
