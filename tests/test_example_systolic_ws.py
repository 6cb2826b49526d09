"""The examples/systolic_ws accelerator's own tests, collected into the project's suite.

``make test`` runs ``pytest tests``; the example keeps its tests in its own folder (a third
party's accelerator brings its own), so this module re-exports them. They can also be run in
place: ``python -m pytest examples/systolic_ws``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1] / "examples" / "systolic_ws" / "tests"
sys.path.insert(0, str(_TESTS))

for _name in ("test_sws_static", "test_sws_layers"):
    _mod = importlib.import_module(_name)
    globals().update({k: v for k, v in vars(_mod).items() if k.startswith("test_")})
