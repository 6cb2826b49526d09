"""The independent oracles: the PyTorch integer path and the fake-quant cross-check."""
