"""Which design runs and regressions verify: the one place the accelerator contract will wire.

Today the accelerator of ``rtl/`` (:func:`t2c_sim.closure.target.accel_target`); coverage,
``testbench:`` suite entries and ``t2c-sim mutate`` take it from :func:`current_target`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from t2c_sim.closure.target import Target

__all__ = ["current_target"]


def current_target() -> Target:
    """The design under verification.

    The closure modules are imported here, not at the top: every regression worker imports
    this module, and only testbench jobs, coverage and mutation need them (~0.2 s of a worker's
    start otherwise).
    """
    from t2c_sim.closure.target import accel_target

    return accel_target()
