"""t2c-sim: bit-accurate co-simulation and verification of compressed neural networks."""

__version__ = "0.1.0"
