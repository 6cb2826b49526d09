"""Simulator infrastructure: find the tools, build RTL once per key, run cocotb tests safely."""

from __future__ import annotations

from t2c_sim.cosim.sim.launch import (
    PAYLOAD_ENV,
    REPO_ROOT,
    RTL_DIR,
    SIMULATORS,
    TB_DIR,
    BuildInfo,
    build,
    default_build_root,
    find_tools,
    launch_spec,
    load_payload,
    rtl_sources,
    run,
)

__all__ = ["SIMULATORS", "REPO_ROOT", "RTL_DIR", "TB_DIR", "PAYLOAD_ENV", "BuildInfo", "find_tools",
           "build", "run", "launch_spec", "load_payload", "default_build_root", "rtl_sources"]
