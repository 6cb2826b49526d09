"""Cycle model of the accelerator RTL: exact cycles, tile plan (with K-splitting), MAC counts."""

from __future__ import annotations

from t2c_sim.estimate.model import (
    CONTROL_OVERHEAD,
    MAX_PLAN_RUNS,
    RQ_LATENCY,
    Tile,
    TilePlan,
    array_ops,
    chunk_cycles,
    cycles,
    gemm_groups,
    gemm_k,
    gemm_rows,
    macs,
    per_layer,
    per_row_params,
    split_k,
    tile_cycles,
    tile_plan,
    utilization,
)

__all__ = ["CONTROL_OVERHEAD", "MAX_PLAN_RUNS", "RQ_LATENCY", "Tile", "TilePlan", "array_ops",
           "chunk_cycles", "cycles", "gemm_groups", "gemm_k", "gemm_rows", "macs", "per_layer",
           "per_row_params", "split_k", "tile_cycles", "tile_plan", "utilization"]
