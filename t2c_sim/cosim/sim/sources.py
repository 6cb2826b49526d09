"""Where the HDL sources are: the repository checkout, or the installed package.

The RTL lives at the top of the repository (``rtl/``, the accelerator's own tree); the
simulation harness and its cocotb module are package data (``t2c_sim/cosim/hdl``). A wheel
carries a copy of ``rtl/*.v`` in ``t2c_sim/cosim/hdl/rtl`` (``setup.py``'s build hook). So:

- in a source checkout (an editable install, or running from the tree) :data:`RTL_DIR` is the
  checkout's ``rtl/`` and builds go under ``<checkout>/build/sim``;
- in an installed package :data:`RTL_DIR` is the packaged copy and builds go under
  ``build/sim`` of the working folder (the CLI's ``--build-root`` default).

A checkout is recognized by :func:`t2c_sim.files.checkout_root`.
"""

from __future__ import annotations

from pathlib import Path

from t2c_sim.errors import SimulationError
from t2c_sim.files import checkout_root, project_file

__all__ = ["REPO_ROOT", "RTL_DIR", "PACKAGED_RTL_DIR", "TB_DIR", "rtl_sources",
           "default_build_root", "runtime_cache_root"]

#: The copy of ``rtl/*.v`` a wheel carries.
PACKAGED_RTL_DIR = Path(__file__).resolve().parents[1] / "hdl" / "rtl"
#: The source checkout holding this package, or ``None`` for an installed package.
REPO_ROOT: Path | None = checkout_root()
#: The accelerator RTL (``rtl/*.v``): the checkout's, else the packaged copy.
RTL_DIR: Path = project_file("rtl", "cosim/hdl/rtl")
#: The unit testbenches (a checkout only; they are not packaged).
TB_DIR: Path | None = REPO_ROOT / "testbenches" if REPO_ROOT is not None else None


def default_build_root() -> Path:
    """Where simulator builds live unless a caller chooses: ``<checkout>/build/sim``, or
    ``build/sim`` in the working folder for an installed package."""
    return (REPO_ROOT if REPO_ROOT is not None else Path.cwd()) / "build" / "sim"


def runtime_cache_root(build_root: str | Path) -> Path:
    """Where Verilator's design-independent runtime objects are kept: the checkout's build root
    (shared by every build root, e.g. the tests' temporary ones), else ``build_root``."""
    return default_build_root() if REPO_ROOT is not None else Path(build_root).resolve()


def rtl_sources(*names: str) -> list[Path]:
    """Paths of ``<RTL_DIR>/<name>.v`` files, raising :class:`SimulationError` for a missing one."""
    out = []
    for n in names:
        p = RTL_DIR / (n if n.endswith(".v") else f"{n}.v")
        if not p.is_file():
            raise SimulationError("RTL source not found", file=str(p))
        out.append(p)
    return out
