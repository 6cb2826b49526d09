"""Cycle model of the accelerator RTL: exact cycles, tile plan, MAC counts, utilization."""

from __future__ import annotations

from t2c_sim.estimate.model import (
    CONTROL_OVERHEAD,
    RQ_LATENCY,
    Tile,
    TilePlan,
    cycles,
    gemm_k,
    gemm_rows,
    macs,
    per_layer,
    tile_cycles,
    tile_plan,
    utilization,
)

__all__ = ["CONTROL_OVERHEAD", "RQ_LATENCY", "Tile", "TilePlan", "cycles", "gemm_k", "gemm_rows",
           "macs", "per_layer", "tile_cycles", "tile_plan", "utilization"]
