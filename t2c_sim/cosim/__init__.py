"""Co-simulation: simulator infrastructure (``sim``) and RTL drivers."""

from t2c_sim.cosim.sim import BuildInfo, build, find_tools, load_payload, run  # noqa: F401
