"""YAML recipes: validate once at the edge (:mod:`.schema`), then build (:mod:`.flow`: train,
prune, smooth, quantize, calibrate, fuse, cross-check)."""

from __future__ import annotations

from t2c_sim.recipe.flow import BuildResult, build
from t2c_sim.recipe.schema import (
    CalibCfg,
    QatCfg,
    QuantCfg,
    Recipe,
    SmoothCfg,
    SparsityCfg,
    TrainCfg,
    load_recipe,
    parse_recipe,
)

__all__ = ["Recipe", "TrainCfg", "QuantCfg", "SmoothCfg", "SparsityCfg", "CalibCfg", "QatCfg",
           "load_recipe", "parse_recipe", "BuildResult", "build"]
