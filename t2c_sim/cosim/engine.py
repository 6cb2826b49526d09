"""Co-simulate these layers (or tiles) of a network on this DUT: the one entry point.

:func:`cosimulate` checks every record against the DUT's ``accepts`` (before any build), then
hands the layers to the DUT's interface profile, which builds once per key, runs every layer in
ONE simulator process and reads the results back:

* ``backdoor`` (:mod:`t2c_sim.cosim.profiles.backdoor`): memories loaded in bulk by the DUT's
  harness; the adapter packs them (our accelerator, the fast path);
* ``stream`` (:mod:`t2c_sim.cosim.profiles.stream`): AXI4-Stream frames played and recorded
  by HDL with seeded LFSR back-pressure;
* ``axi`` (:mod:`t2c_sim.cosim.profiles.axi`): AXI4-Lite register programs and an AXI4 memory
  model, both in HDL, loaded in bulk.

Each returns one :class:`~t2c_sim.cosim.result.CosimResult` per layer with the outputs, the
units it was timed on (measured and modelled cycles) and where the run left its files. The
framework compares them (:mod:`t2c_sim.cosim.compare`); nothing here judges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from t2c_sim.cosim.dut import Dut
from t2c_sim.cosim.profiles.axi import run_axi
from t2c_sim.cosim.profiles.backdoor import run_backdoor
from t2c_sim.cosim.profiles.stream import run_stream
from t2c_sim.cosim.result import CosimResult
from t2c_sim.errors import ConfigError, SimulationError
from t2c_sim.record import LayerRecord

__all__ = ["cosimulate", "Layers", "MAX_BACKPRESSURE"]

Layers = Sequence[LayerRecord | tuple[LayerRecord, np.ndarray | None]]
#: Largest stall probability (percent) of a stream partner: beyond it a run may never end.
MAX_BACKPRESSURE = 90


def _pairs(layers: Layers) -> list[tuple[LayerRecord, np.ndarray | None]]:
    out = [(item, None) if isinstance(item, LayerRecord) else tuple(item) for item in layers]
    if not out:
        raise SimulationError("no layers to co-simulate")
    return out  # type: ignore[return-value]


def cosimulate(dut: Dut, layers: Layers, sim: str = "verilator", *,
               build_root: str | Path = "build/sim", waves: bool = False,
               tiles: list[list[int] | None] | None = None, timeout_s: float | None = None,
               keep: bool = False, mutate: Callable[[Path], None] | None = None,
               optimize: bool = True, watchdog_margin: int = 1000,
               backpressure: tuple[int, int] = (0, 0), seed: int = 1,
               packed: bool | None = None, rtl_dir: str | Path | None = None,
               build_args: Sequence[str] = (),
               ) -> list[CosimResult]:
    """Co-simulate MAC layers on ``dut`` in one simulator process.

    Args:
        dut: The bound DUT (:meth:`t2c_sim.cosim.dut.DutSpec.bind`, or
            :func:`t2c_sim.cosim.dut.default_dut` for our accelerator).
        layers: Records (``x_q`` is the input), or ``(record, x)`` pairs.
        sim: ``"verilator"`` or ``"icarus"``.
        build_root: Where builds (and their run directories) live.
        waves: Record a waveform (FST on Verilator).
        tiles: Per layer, the units (tiles, frames, jobs) to run (``None``: all); the other
            outputs stay 0. Used to re-run just the failing part with waves.
        timeout_s: Wall-clock limit of the simulator run (default from the cycle model).
        keep: Keep the run directory (operand files, dumps, logs); always kept with waves.
        mutate: Called with the run directory after the operand files are written and before
            the simulator starts (fault injection in tests).
        optimize: Build a Verilator model with ``-O2`` (the default; ``False``: ``-O0``, a
            quicker build that simulates 3-4x slower).
        watchdog_margin: The per-unit watchdog is ``2 * predicted + margin`` cycles (with
            back-pressure, stretched by the stall probabilities).
        backpressure: ``(input, output)`` stall probabilities in percent (stream profile; a
            seeded LFSR withholds ``tvalid`` / ``tready``); ``(0, 0)``: none.
        seed: Seed of the back-pressure patterns.
        packed: Our accelerator's PE array implementation (``None``: the simulator's fast one).
        rtl_dir: Our accelerator: build this copy of its RTL (same file names).
        build_args: Extra simulator build arguments, appended (e.g. Verilator coverage flags,
            :data:`t2c_sim.closure.codecov.COVERAGE_ARGS`; part of the build key).

    Returns:
        One :class:`CosimResult` per layer.

    Raises:
        UnsupportedLayerError: The DUT does not accept a record (before anything is built).
        ConfigError: Back-pressure on a profile without streams, or out of bounds.
        SimulationError: Build failure, hang (watchdog or wall clock), error flags, X/Z output.
    """
    pairs = _pairs(layers)
    for rec, _ in pairs:
        dut.check(rec)
    bp = tuple(int(v) for v in backpressure)
    if len(bp) != 2 or not all(0 <= v <= MAX_BACKPRESSURE for v in bp):
        raise ConfigError(f"must be two stall probabilities in 0..{MAX_BACKPRESSURE} percent, got "
                          f"{backpressure!r}", key="backpressure")
    prof = dut.spec.profile
    if any(bp) and prof != "stream":
        raise ConfigError(f"back-pressure applies to the stream profile; DUT {dut.name} uses "
                          f"{prof}", key="backpressure")
    common = dict(build_root=build_root, waves=waves, tiles=tiles, timeout_s=timeout_s,
                  keep=keep, mutate=mutate, optimize=optimize, watchdog_margin=watchdog_margin,
                  build_args=tuple(build_args))
    if prof == "backdoor":
        return run_backdoor(dut, pairs, sim, packed=packed, rtl_dir=rtl_dir, **common)
    if prof == "stream":
        return run_stream(dut, pairs, sim, backpressure=bp, seed=seed, **common)
    return run_axi(dut, pairs, sim, seed=seed, **common)
