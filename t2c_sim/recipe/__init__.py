"""YAML recipes: validate once at the edge, then build (train, prune, quantize, fuse)."""

from __future__ import annotations

from t2c_sim.recipe.schema import (
    BuildResult,
    CalibCfg,
    QatCfg,
    QuantCfg,
    Recipe,
    SmoothCfg,
    SparsityCfg,
    TrainCfg,
    build,
    load_recipe,
    parse_recipe,
)

__all__ = ["Recipe", "TrainCfg", "QuantCfg", "SmoothCfg", "SparsityCfg", "CalibCfg", "QatCfg",
           "load_recipe", "parse_recipe", "BuildResult", "build"]
