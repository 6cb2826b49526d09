"""What a co-simulated layer produced, on any DUT and interface profile.

A :class:`CosimResult` holds the layer's outputs read back from the RTL and one
:class:`TileResult` per *unit of execution* the DUT was timed on: a tile of our accelerator's
plan (its K-chunks listed), a stream frame, an AXI job. Each unit carries the cycles the
framework measured, the cycles the DUT's model predicts (``None``: no model) and, when the DUT
reports its own count, that count too. :func:`t2c_sim.cosim.compare.cycle_mismatch` turns a
difference into a failure of the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from t2c_sim.estimate import Tile

__all__ = ["TileResult", "CosimResult"]


@dataclass(frozen=True)
class TileResult(Tile):
    """One executed unit (a tile of the plan): its place in the layer and its cycles.

    ``cycles_*`` sum the unit's runs; ``chunks_*`` list them, one per K-chunk (one entry for a
    unit run once). ``cycles_predicted`` is ``None`` when the DUT has no cycle model;
    ``counter`` is the DUT's own cycle count when it reports one (``None`` otherwise).
    """

    cycles_measured: int
    cycles_predicted: int | None
    chunks_measured: tuple[int, ...] = ()
    chunks_predicted: tuple[int, ...] | None = ()
    counter: int | None = None


@dataclass
class CosimResult:
    """What one co-simulated layer produced.

    Attributes:
        layer: Layer name.
        y: Outputs (int64) in the golden ``y``'s shape.
        acc: Raw accumulators in the same shape, when the DUT exposes them (else ``None``).
        cycles: Sum of the measured cycles over the units.
        tiles: Per-unit results in execution order.
        sim: Simulator.
        build_dir: Simulator build directory.
        run_dir: Directory with the memory files, dumps and logs (None once cleaned up).
        wave_file: Waveform file when ``waves`` was requested.
        wall_s: Wall time of the simulator run (excludes the build and the host-side packing).
        build_s: Build time (0 when the build was reused).
        prep_s: Host-side time to lay out and write the operand files.
        dut: Name of the DUT.
        check_cycles: Whether measured cycles must equal the model (the DUT declares an exact
            model and no back-pressure was applied).
        backpressure: ``(input, output)`` stall probabilities in percent (stream profile).
        extra: Free-form figures (e.g. ``layers_in_run``).
    """

    layer: str
    y: np.ndarray
    acc: np.ndarray | None
    cycles: int
    tiles: list[TileResult]
    sim: str
    build_dir: Path
    run_dir: Path | None = None
    wave_file: Path | None = None
    wall_s: float = 0.0
    build_s: float = 0.0
    prep_s: float = 0.0
    dut: str = "t2c_accel"
    check_cycles: bool = True
    backpressure: tuple[int, int] = (0, 0)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def cycles_predicted(self) -> int | None:
        """Sum of the model's cycles over the units (``None`` without a model)."""
        vals = [t.cycles_predicted for t in self.tiles]
        return None if any(v is None for v in vals) else sum(vals)
