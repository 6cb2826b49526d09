"""Co-simulation: simulator infrastructure (``sim``) and RTL drivers.

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
