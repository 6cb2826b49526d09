"""Example float models and datasets (the zoo the recipes in ``models/*.yaml`` build)."""

from t2c_sim.models.data import Split, load_dataset
from t2c_sim.models.nets import MLP, MODELS, DigitsCNN, ResNetBlockNet, TransformerMLP, make_model

__all__ = ["Split", "load_dataset", "DigitsCNN", "MLP", "ResNetBlockNet", "TransformerMLP",
           "MODELS", "make_model"]
