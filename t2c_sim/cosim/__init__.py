"""Co-simulation: the DUT contract and its interface profiles, on top of the simulator
infrastructure (``sim``).

- :mod:`.dut` (with :mod:`.dutfile`, :mod:`.accepts`, :mod:`.ifspec`, :mod:`.expr`): DUT files,
  validated at the edge, bound to parameters; what a DUT accepts and why not;
- :mod:`.engine`: :func:`~t2c_sim.cosim.engine.cosimulate`, co-simulate layers on a DUT;
- :mod:`.profiles`: ``backdoor``, ``stream``, ``axi`` (generated harnesses, HDL bus models);
- :mod:`.gemm`: a layer as the GEMMs a DUT computes; :mod:`.result`: what a run produced;
- :mod:`.accel`: our accelerator's adapter (back-door packing, :mod:`.bulk` the whole-layer
  packer), :mod:`.run` its ``HwConfig`` API;
- :mod:`.axi_accel`: our front door's adapter (axi profile: memory layout, exact cycle model),
  :mod:`.axi_frontdoor` its bindings for bus settings and the register-level bench;
- :mod:`.compare`: exact comparison, localization, the cycle check.

The names re-exported here are loaded on first use (PEP 562), so that a testbench importing
:mod:`t2c_sim.cosim.sim.payload` inside the simulator does not load NumPy through this init.
``t2c_sim.cosim.run`` is the module :mod:`t2c_sim.cosim.run` (the simulator runner is
:func:`t2c_sim.cosim.sim.run`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the static import graph (tests/test_structure.py) sees these edges
    from t2c_sim.cosim.sim import BuildInfo, build, find_tools, load_payload  # noqa: F401

__all__ = ["BuildInfo", "build", "find_tools", "load_payload"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("t2c_sim.cosim.sim"), name)
    globals()[name] = value
    return value
