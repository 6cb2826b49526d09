"""Simulator infrastructure: find the tools, build RTL once per key, run cocotb tests safely.

- :mod:`.sources`: where the HDL is (the checkout's ``rtl/`` or the packaged copy), build roots;
- :mod:`.tools`: the simulators and the environment they get, subprocesses that never outlive
  their caller;
- :mod:`.builder`: :func:`build` once per key (cocotb's runner in a worker process);
- :mod:`.launch`: :func:`run` a cocotb test module against a build;
- :mod:`.payload`: :func:`load_payload` on the testbench side.

The names below are loaded on first use (PEP 562): a testbench imports ``load_payload`` from
here inside every simulator process, and loading the builder there would import NumPy (~1 s
of every simulator start-up).

Example::

    info = build("icarus", "t2c_requant", rtl_sources("t2c_requant"), {"MULT_BITS": 16},
                 default_build_root())
    run(info, TB_DIR / "test_requant.py", payload={"seed": 1, "n_random": 1000})
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the static import graph (tests/test_structure.py) sees these edges
    from t2c_sim.cosim.sim.builder import BuildInfo, build
    from t2c_sim.cosim.sim.launch import launch_spec, run
    from t2c_sim.cosim.sim.payload import PAYLOAD_ENV, load_payload
    from t2c_sim.cosim.sim.sources import (
        PACKAGED_RTL_DIR,
        REPO_ROOT,
        RTL_DIR,
        TB_DIR,
        default_build_root,
        rtl_sources,
    )
    from t2c_sim.cosim.sim.tools import SIMULATORS, find_tools

__all__ = ["SIMULATORS", "REPO_ROOT", "RTL_DIR", "PACKAGED_RTL_DIR", "TB_DIR", "PAYLOAD_ENV",
           "BuildInfo", "find_tools", "build", "run", "launch_spec", "load_payload",
           "default_build_root", "rtl_sources"]

_WHERE = {"BuildInfo": "builder", "build": "builder", "run": "launch", "launch_spec": "launch",
          "load_payload": "payload", "PAYLOAD_ENV": "payload", "SIMULATORS": "tools",
          "find_tools": "tools", "REPO_ROOT": "sources", "RTL_DIR": "sources",
          "PACKAGED_RTL_DIR": "sources", "TB_DIR": "sources",
          "default_build_root": "sources", "rtl_sources": "sources"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
