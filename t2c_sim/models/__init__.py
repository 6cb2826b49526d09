"""Example models, datasets and a small training loop."""

from t2c_sim.models.data import Split, load_dataset
from t2c_sim.models.nets import MLP, MODELS, DigitsCNN, ResNetBlockNet, TransformerMLP, make_model
from t2c_sim.models.train import accuracy, predict, train

__all__ = ["Split", "load_dataset", "DigitsCNN", "MLP", "ResNetBlockNet", "TransformerMLP",
           "MODELS", "make_model", "train", "accuracy", "predict"]
