"""Independent oracles of the integer model: the PyTorch integer path and the fake-quant cross-check."""
