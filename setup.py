"""Build hook: ship the accelerator RTL and the example recipes inside the package.

The RTL stays at the top of the repository (``rtl/*.v``, its own tree), as do the example
recipes (``models/*.yaml``). A wheel must simulate and run ``t2c-sim demo`` on its own, so
``build_py`` copies ``rtl/*.v`` into ``t2c_sim/cosim/hdl/rtl/`` and ``models/*.yaml`` into
``t2c_sim/models/recipes/`` of the build (never into the source tree);
:func:`t2c_sim.files.project_file` finds the checkout's files first and the packaged copies
otherwise. Everything else is in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: (source folder, pattern, destination inside the package)
COPIES = ((HERE / "rtl", "*.v", Path("t2c_sim") / "cosim" / "hdl" / "rtl"),
          (HERE / "models", "*.yaml", Path("t2c_sim") / "models" / "recipes"))


class BuildPyWithRtl(build_py):
    """``build_py`` plus ``rtl/*.v`` and ``models/*.yaml`` copied into the built package."""

    def run(self) -> None:
        super().run()
        for src, pattern, rel in COPIES:
            files = sorted(src.glob(pattern))
            if not files:
                raise SystemExit(f"{src}: no {pattern} files; the package needs them")
            dst = Path(self.build_lib) / rel
            self.mkpath(str(dst))
            for f in files:
                self.copy_file(str(f), str(dst / f.name))


setup(cmdclass={"build_py": BuildPyWithRtl})
