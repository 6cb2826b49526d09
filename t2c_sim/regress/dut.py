"""Which design runs and regressions verify: the one place the accelerator contract will wire.

Today the accelerator of ``rtl/`` (:func:`t2c_sim.closure.target.accel_target`); coverage,
``testbench:`` suite entries and ``t2c-sim mutate`` take it from :func:`current_target`.
"""

from __future__ import annotations

from t2c_sim.closure.target import Target, accel_target

__all__ = ["current_target"]


def current_target() -> Target:
    """The design under verification."""
    return accel_target()
