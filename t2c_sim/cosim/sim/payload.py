"""The testbench side of a run's data: :func:`load_payload` (imported inside the simulator).

This module imports nothing heavy (NumPy only when the payload has arrays): a cocotb testbench
imports it in every simulator process, where importing NumPy costs ~0.5-1.5 s of start-up
(measured on the 2-core development machine, its OpenBLAS start-up included). The package
inits above it (:mod:`t2c_sim.cosim`, :mod:`t2c_sim.cosim.sim`) load their submodules lazily
for the same reason; ``tests/test_fast_path.py`` checks that this import path stays free of
NumPy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from t2c_sim.errors import SimulationError

__all__ = ["PAYLOAD_ENV", "load_payload"]

#: Environment variable naming the run's ``payload.json`` (set by :func:`t2c_sim.cosim.sim.run`).
PAYLOAD_ENV = "T2C_PAYLOAD"


def load_payload() -> dict[str, Any]:
    """Read the payload :func:`t2c_sim.cosim.sim.run` passed (JSON, plus arrays from
    ``payload.npz`` if any).

    Called inside a cocotb testbench. Returns ``{}`` when no payload was given.

    Raises:
        SimulationError: The payload file named by ``T2C_PAYLOAD`` is missing or malformed.
    """
    p = os.environ.get(PAYLOAD_ENV)
    if not p:
        return {}
    try:
        data = json.loads(Path(p).read_text())
    except (OSError, ValueError) as e:
        raise SimulationError(f"cannot read testbench payload ({e})", file=str(p)) from None
    npz = data.pop("__npz__", None)
    if npz:
        import numpy as np

        with np.load(npz) as z:
            data.update({k: z[k] for k in z.files})
    return data
