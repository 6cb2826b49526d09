"""Verification closure: mutation testing, functional coverage, code coverage.

This stage sits after :mod:`t2c_sim.cosim` (it runs the RTL through co-simulation) and before
the regression runner and the CLI (which will call it):

* :mod:`.mutate`: source-level mutants of Verilog (pyslang), waivers;
* :mod:`.netlist`: cheap equivalence detection (Yosys ``opt`` netlist signatures);
* :mod:`.suites`: what a mutant (or the original RTL) is run against: layers, unit testbenches;
* :mod:`.mutrun`: the mutant runner and campaign (killed / survived / equivalent / ...);
* :mod:`.funcov`: the functional coverage model (bins, crosses, JSON merge, holes);
* :mod:`.generate`: coverage-driven random layer generation;
* :mod:`.codecov`: Verilator line/toggle/user coverage, merge, lcov export, per-file table.
"""
