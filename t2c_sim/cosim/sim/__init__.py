"""Simulator infrastructure: find the tools, build RTL once per key, run cocotb tests safely.

- :mod:`.sources`: where the HDL is (the checkout's ``rtl/`` or the packaged copy), build roots;
- :mod:`.tools`: the simulators and the environment they get, subprocesses that never outlive
  their caller;
- :mod:`.builder`: :func:`build` once per key (cocotb's runner in a worker process);
- :mod:`.launch`: :func:`run` a cocotb test module against a build, :func:`load_payload` on the
  testbench side.

Example::

    info = build("icarus", "t2c_requant", rtl_sources("t2c_requant"), {"MULT_BITS": 16},
                 default_build_root())
    run(info, TB_DIR / "test_requant.py", payload={"seed": 1, "n_random": 1000})
"""

from __future__ import annotations

from t2c_sim.cosim.sim.builder import BuildInfo, build
from t2c_sim.cosim.sim.launch import launch_spec, load_payload, run
from t2c_sim.cosim.sim.sources import (
    PACKAGED_RTL_DIR,
    REPO_ROOT,
    RTL_DIR,
    TB_DIR,
    default_build_root,
    rtl_sources,
)
from t2c_sim.cosim.sim.tools import PAYLOAD_ENV, SIMULATORS, find_tools

__all__ = ["SIMULATORS", "REPO_ROOT", "RTL_DIR", "PACKAGED_RTL_DIR", "TB_DIR", "PAYLOAD_ENV",
           "BuildInfo", "find_tools", "build", "run", "launch_spec", "load_payload",
           "default_build_root", "rtl_sources"]
