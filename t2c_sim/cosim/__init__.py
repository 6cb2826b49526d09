"""Co-simulation: the DUT contract and its interface profiles, on top of the simulator
infrastructure (``sim``).

- :mod:`.dut` (with :mod:`.dutfile`, :mod:`.accepts`, :mod:`.ifspec`, :mod:`.expr`): DUT files,
  validated at the edge, bound to parameters; what a DUT accepts and why not;
- :mod:`.engine`: :func:`~t2c_sim.cosim.engine.cosimulate`, co-simulate layers on a DUT;
- :mod:`.profiles`: ``backdoor``, ``stream``, ``axi`` (generated harnesses, HDL bus models);
- :mod:`.gemm`: a layer as the GEMMs a DUT computes; :mod:`.result`: what a run produced;
- :mod:`.accel`: our accelerator's adapter (back-door packing), :mod:`.run` its ``HwConfig`` API;
- :mod:`.axi_accel`: our front door's adapter (axi profile: memory layout, exact cycle model),
  :mod:`.axi_frontdoor` its bindings for bus settings and the register-level bench;
- :mod:`.compare`: exact comparison, localization, the cycle check.
"""

from t2c_sim.cosim.sim import BuildInfo, build, find_tools, load_payload, run  # noqa: F401
