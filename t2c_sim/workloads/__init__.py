"""Random, valid integer records and networks with golden results, for regressions and tests."""
