"""sws_top (examples/systolic_ws) without simulation: lint, the cycle model's form, independence.

* the RTL folder is lint-clean under ``verilator --lint-only -Wall`` and ``iverilog -Wall``
  (the project's ``scripts/lint_rtl.py`` pointed at the folder), for several parameter sets;
* ``cycle_model.py`` is the vendor's code: it imports nothing but the standard library and
  works with ``t2c_sim`` unimportable; its hand-derived single-tile form and small examples hold;
* no line under ``t2c_sim/`` names this accelerator (it is integrated only through its files).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1]
REPO = EXAMPLE.parents[1]
RTL = EXAMPLE / "rtl"
sys.path.insert(0, str(EXAMPLE))
import cycle_model  # noqa: E402


def _lint_module():
    spec = importlib.util.spec_from_file_location("lint_rtl", REPO / "scripts" / "lint_rtl.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.sim
def test_rtl_folder_is_lint_clean(caplog):
    lint = _lint_module()
    assert [t for t, _ in lint.tops(RTL)] == ["sws_top"]
    with caplog.at_level("INFO"):
        rc = lint.main(["--rtl", str(RTL)])
    assert rc == 0, caplog.text
    assert "[ok] verilator sws_top" in caplog.text
    assert "[ok] iverilog  sws_top" in caplog.text


@pytest.mark.sim
@pytest.mark.parametrize("params", [
    {"ROWS": 1, "COLS": 1, "ACC_DEPTH": 1},
    {"ROWS": 3, "COLS": 2, "ACC_DEPTH": 5, "ACC_BITS": 20, "MULT_BITS": 16, "Y_BITS": 16,
     "A_BITS": 4, "W_BITS": 5},
    {"ROWS": 8, "COLS": 8, "LANES": 8, "ACC_DEPTH": 64},
    {"ROWS": 2, "COLS": 7, "LANES": 8, "ACC_DEPTH": 3, "Y_BITS": 32},
])
def test_rtl_lint_clean_for_parameter_sets(params: dict):
    """Verilator -Wall with non-default parameters (widths change which bits are used)."""
    from t2c_sim.cosim.sim import find_tools

    tools = find_tools(("verilator",))
    cmd = [tools["verilator"], "--lint-only", "-Wall", "-y", str(RTL), "--top-module", "sws_top",
           *[f"-G{k}={v}" for k, v in params.items()], str(RTL / "sws_top.v")]
    p = subprocess.run(cmd, env=tools["env"], capture_output=True, text=True, check=False)
    msgs = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip() and not ln.startswith("- ")]
    assert p.returncode == 0 and not msgs, "\n".join(msgs)


def test_cycle_model_imports_only_the_standard_library():
    tree = ast.parse((EXAMPLE / "cycle_model.py").read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= {"__future__"} | set(sys.stdlib_module_names), mods
    code = ("import sys; sys.modules['t2c_sim'] = None; sys.path.insert(0, sys.argv[1]); "
            "import cycle_model as m; print(m.cycles({'rows': 3, 'K': 5, 'C_out': 2}, {}))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout) == cycle_model.cycles({"rows": 3, "K": 5, "C_out": 2}, {})


def test_cycle_model_hand_example():
    """The docstring's 1 x 1 example, derived by hand from the RTL timing."""
    assert cycle_model.cycles({"rows": 1, "K": 1, "C_out": 1, "N": 1, "M": 1, "bits": 8},
                              {"ROWS": 1, "COLS": 1, "ACC_DEPTH": 4}) == 19


@pytest.mark.parametrize("rows_", [1, 2, 3, 4])
@pytest.mark.parametrize("cols_", [1, 2, 5])
def test_cycle_model_single_tile_closed_form(rows_: int, cols_: int):
    """One tile, one K block: no hold can bind, so cycles = beats + ROWS + COLS + P + 4."""
    params = {"ROWS": rows_, "COLS": cols_, "ACC_DEPTH": 6}
    for p in range(1, 7):
        for k in range(1, rows_ + 1):
            for c in range(1, cols_ + 1):
                beats = 7 + 3 * c + k + p
                s = cycle_model.schedule({"rows": p, "K": k, "C_out": c}, params)
                assert s["in_beats"] == beats and s["in_stall"] == 0
                assert s["cycles"] == beats + rows_ + cols_ + p + 4, (p, k, c)


def test_input_beats_formula_matches_packer_and_model():
    """README's beat count = the packer's frame length = the model's in_beats."""
    import numpy as np
    from sws_stream import pack_layer

    params = {"ROWS": 3, "COLS": 2, "LANES": 4, "ACC_DEPTH": 4}
    rng = np.random.default_rng(5)
    for p, k, c in [(1, 1, 1), (4, 3, 2), (9, 7, 5), (5, 12, 1)]:
        npt, nct, nkt = -(-p // 4), -(-c // 2), -(-k // 3)
        beats = 7 + npt * 3 * c + nct * npt * k + nct * nkt * p
        frame = pack_layer(rng.integers(-128, 128, (p, k)), rng.integers(-128, 128, (c, k)),
                           np.zeros(c, int), np.ones(c, int), np.zeros(c, int), z_y=0, lo=-128,
                           hi=127, mode="floor", a_signed=True, params=params)
        assert frame.shape == (beats, 4)
        assert cycle_model.schedule({"rows": p, "K": k, "C_out": c}, params)["in_beats"] == beats


def test_cycle_model_refuses_empty_layers():
    with pytest.raises(ValueError, match="must all be >= 1"):
        cycle_model.cycles({"rows": 0, "K": 3, "C_out": 2}, {})


def test_no_line_under_t2c_sim_names_this_accelerator():
    pat = re.compile(r"systolic_ws|\bsws_\w+", re.IGNORECASE)
    hits = [f"{f.relative_to(REPO)}:{i}" for f in sorted((REPO / "t2c_sim").rglob("*"))
            if f.is_file() and f.suffix in (".py", ".v", ".yaml", ".yml", ".json", ".md", ".txt")
            for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1)
            if pat.search(line)]
    assert not hits, hits


def test_example_is_ruff_clean():
    import shutil

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff not installed in this environment")
    res = subprocess.run([ruff, "check", str(EXAMPLE)], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
