"""The wheel ships everything a user needs to simulate: the RTL, the harness, its cocotb module,
the example recipes and every module; installed outside the checkout it co-simulates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TREE = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "t2c_sim", "rtl", "models")


def _copy_tree(dst: Path) -> Path:
    """The files a build reads, copied (so the build never writes into the checkout)."""
    dst.mkdir(parents=True)
    for name in TREE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst / name)
    return dst


def _build_wheel(src: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                        "--no-index", "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("t2c_sim-*.whl")
    return whl


def expected_files() -> dict[str, bytes]:
    """Wheel path -> content of every file the package must carry."""
    exp = {f"t2c_sim/cosim/hdl/rtl/{p.name}": p.read_bytes() for p in (ROOT / "rtl").glob("*.v")}
    exp.update({f"t2c_sim/models/recipes/{p.name}": p.read_bytes()
                for p in (ROOT / "models").glob("*.yaml")})
    for p in (ROOT / "t2c_sim").rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".v"):
            exp[p.relative_to(ROOT).as_posix()] = p.read_bytes()
    return exp


def missing_from_wheel(whl: Path) -> list[str]:
    """Files of :func:`expected_files` that the wheel lacks or carries with other content."""
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        return sorted(k for k, v in expected_files().items() if k not in names or z.read(k) != v)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    return _build_wheel(_copy_tree(tmp / "src"), tmp / "dist")


def test_wheel_carries_rtl_harness_recipes_and_every_module(wheel: Path) -> None:
    assert len(list((ROOT / "rtl").glob("*.v"))) >= 5
    assert missing_from_wheel(wheel) == []
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "t2c-sim = t2c_sim.cli:main" in z.read(entry).decode()
        assert "t2c_sim/cosim/hdl/t2c_harness.v" in names
        assert "t2c_sim/cosim/tb_backdoor.py" in names
        assert "t2c_sim/cosim/sim/t2c_vl_main.cpp" in names
        assert "t2c_sim/cosim/duts/t2c_accel.yaml" in names


def test_contents_check_catches_a_wheel_without_the_build_hook(tmp_path: Path) -> None:
    src = _copy_tree(tmp_path / "src")
    (src / "setup.py").write_text("from setuptools import setup\nsetup()\n")  # mutant: no hook
    missing = missing_from_wheel(_build_wheel(src, tmp_path / "dist"))
    assert "t2c_sim/cosim/hdl/rtl/t2c_accel_top.v" in missing
    assert "t2c_sim/models/recipes/digits_cnn_w8a8_2of4.yaml" in missing


@pytest.mark.slow
@pytest.mark.sim
def test_installed_wheel_cosimulates_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv (this interpreter's third-party packages reached through a .pth, never
    the checkout) installs the wheel and runs `t2c-sim run --sim verilator` from elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True).stdout
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib.strip(), "_shared_deps.pth").write_text("\n".join(sorted(shared)) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, env=env, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import t2c_sim.cosim.sim as s, t2c_sim; "
                            "print(t2c_sim.__file__); print(s.RTL_DIR); print(s.REPO_ROOT)"],
                           capture_output=True, text=True, check=True, env=env, cwd=work).stdout
    pkg, rtl, repo = where.split()
    assert pkg.startswith(str(venv)) and rtl.startswith(str(venv)) and repo == "None"

    from t2c_sim.export import save_network
    from t2c_sim.workloads.gen import random_network

    save_network(random_network(np.random.default_rng(5), h=4, w=4, channels=4, n=2, m=4),
                 work / "net")
    r = subprocess.run([str(venv / "bin" / "t2c-sim"), "run", "net", "--sim", "verilator",
                        "--out", "out", "--no-progress"], capture_output=True, text=True,
                       env=env, cwd=work, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and (work / "out" / "report.html").is_file()
    assert (work / "build" / "sim").is_dir()          # builds under the working folder
