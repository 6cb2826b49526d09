"""The default path is the fast path (issue 10 item 2): what a user's run gets.

- a Verilator model is built with ONE optimization level, ``-O2`` unless the caller chose
  another, so asking for the optimized build and taking the default are the same build;
- the testbench side of a run (imported inside every simulator process) loads no NumPy, which
  cost ~1-2 s of every simulator start;
- the design-independent objects of a Verilator build (runtime, timing, the simulator's main
  per toplevel interface) are cached and seeded, never recompiled per model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from t2c_sim.cosim.sim import builder

ROOT = Path(__file__).resolve().parents[1]

OPT_CASES = [  # (caller's build args, what reaches Verilator after the fixed arguments)
    ([], ["-CFLAGS", "-O2"]),
    (["--timing"], ["--timing", "-CFLAGS", "-O2"]),
    (["-CFLAGS", "-O2"], ["-CFLAGS", "-O2"]),
    (["-CFLAGS", "-O0"], ["-CFLAGS", "-O0"]),
    (["-CFLAGS", "-O0", "--timing", "-CFLAGS", "-O3"], ["--timing", "-CFLAGS", "-O3"]),
    (["-CFLAGS", "-Os", "-CFLAGS", "-DFOO"], ["-CFLAGS", "-DFOO", "-CFLAGS", "-Os"]),
    (["-CFLAGS", "-Ofast"], ["-CFLAGS", "-Ofast"]),
    (["-CFLAGS", "-O"], ["-CFLAGS", "-O"]),
    (["-CFLAGS", "-Ox"], ["-CFLAGS", "-Ox", "-CFLAGS", "-O2"]),   # not an -O flag: kept
    (["-LDFLAGS", "-O1"], ["-LDFLAGS", "-O1", "-CFLAGS", "-O2"]),  # a linker flag: kept
]


@pytest.mark.parametrize("args,want", OPT_CASES)
def test_one_optimization_level_reaches_verilator(args: list[str], want: list[str]) -> None:
    assert builder._one_opt_level(args) == want


def _key(args: list[str]) -> str:
    src = ROOT / "rtl" / "t2c_ram.v"
    return builder._build_key("verilator", "t2c_ram", [src], {}, [], {}, False,
                              builder._one_opt_level(args))


def test_default_and_explicit_o2_are_one_build_and_o0_another() -> None:
    assert _key([]) == _key(["-CFLAGS", "-O2"]) == _key(["-CFLAGS", "-O0", "-CFLAGS", "-O2"])
    assert _key(["-CFLAGS", "-O0"]) != _key([])


def test_the_testbench_import_path_loads_no_numpy() -> None:
    """What every simulator process imports before its first cycle (tb_accel_layer and the unit
    testbenches: ``from t2c_sim.cosim.sim import load_payload``); the parent's API still works
    through the lazy package inits."""
    code = ("import sys\n"
            "from t2c_sim.cosim.sim import load_payload\n"
            "import t2c_sim.cosim.sim.payload\n"
            "heavy = sorted(m for m in ('numpy', 'yaml', 'torch') if m in sys.modules)\n"
            "assert not heavy, heavy\n"
            "from t2c_sim.cosim import sim\n"
            "assert callable(sim.build) and sim.RTL_DIR.is_dir()\n"
            "from t2c_sim.cosim import build, find_tools\n"
            "assert 'numpy' in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_lazy_package_init_names_what_it_lacks() -> None:
    from t2c_sim import cosim
    from t2c_sim.cosim import sim

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sim.nope  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cosim.nope  # noqa: B018
    assert set(sim.__all__) <= set(dir(sim))


def test_runtime_cache_seeds_runtime_and_the_matching_main(tmp_path: Path) -> None:
    """Stored once per key; the main object only for the same Vtop.h (ports), never another."""
    cache, b1, b2, b3 = (tmp_path / n for n in ("cache", "b1", "b2", "b3"))
    for b in (b1, b2, b3):
        b.mkdir()
    for stem in ("verilated", "verilated_timing"):
        (b1 / f"{stem}.o").write_bytes(b"obj " + stem.encode())
        (b1 / f"{stem}.d").write_text(f"{stem}.o: x.cpp\n")
    (b1 / "verilator.o").write_bytes(b"main of ports A")
    (b1 / "verilator.d").write_text("verilator.o: Vtop.h\n")
    (b1 / "Vtop.h").write_text("class Vtop { ports A };\n")
    builder._store_runtime_objects(b1, cache)
    assert (cache / "verilated_timing.o").read_bytes() == b"obj verilated_timing"
    (b2 / "Vtop.h").write_text("class Vtop { ports A };\n")
    (b3 / "Vtop.h").write_text("class Vtop { ports B };\n")
    builder._seed_runtime_objects(cache, b2)
    builder._seed_runtime_objects(cache, b3)
    assert (b2 / "verilator.o").read_bytes() == b"main of ports A"
    assert (b2 / "verilated_timing.o").is_file() and (b3 / "verilated.o").is_file()
    assert not (b3 / "verilator.o").exists()  # other ports: compiled, then stored
    (b3 / "verilator.o").write_bytes(b"main of ports B")
    (b3 / "verilator.d").write_text("verilator.o: Vtop.h\n")
    builder._store_runtime_objects(b3, cache)
    assert len(list(cache.glob("main-*.o"))) == 2
