"""Plain-text tables for the terminal (fixed-width columns, no colour codes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t2c_sim.regress.report.chain import chain_cell, chain_header, has_chain
from t2c_sim.regress.report.parity import has_parity, parity_cell, parity_header
from t2c_sim.regress.results import FAIL, RunResult


def _fmt_int(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def lsb_text(lsb: dict | None) -> str:
    """``max 1, 3.2%`` (largest |integer - fake-quant| in LSBs and the nonzero rate)."""
    if not lsb:
        return "-"
    mx = lsb.get("max")
    nz = lsb.get("nonzero_rate")
    parts = []
    if mx is not None:
        parts.append(f"max {mx:g}")
    if nz is not None:
        parts.append(f"{100 * nz:.3g}% nonzero")
    return ", ".join(parts) or "-"


def dut_text(run: RunResult) -> str:
    """``my_gemm (stream, hw/my_gemm/dut.yaml; ...)`` for a run's DUT."""
    d = run.dut or {}
    if not d:
        return "t2c_accel"
    params = " ".join(f"{k}={v}" for k, v in (d.get("parameters") or {}).items())
    return (f"{d.get('name')} ({d.get('profile')}, {d.get('file')}; cycle model "
            f"{d.get('cycle_model')}; {params})")


def dut_line(run: RunResult) -> str:
    """The line naming the DUT above the layer table."""
    return f"DUT: {dut_text(run)}"


def has_backpressure(run: RunResult) -> bool:
    """Whether any co-simulation of the run had stream back-pressure."""
    return any(o.backpressure for lr in run.layers for o in lr.sims)


def stall_text(lr: Any) -> str:
    """Measured minus modelled cycles under back-pressure, per simulator (``-`` without)."""
    vals = [f"+{o.stall_cycles:,}" if o.stall_cycles >= 0 else f"{o.stall_cycles:,}"
            for o in lr.sims if o.stall_cycles is not None]
    return "/".join(dict.fromkeys(vals)) or "-"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 right: Sequence[bool] | None = None) -> str:
    """Align ``rows`` under ``header``; columns flagged in ``right`` are right-aligned."""
    right = list(right or [False] * len(header))
    widths = [len(h) for h in header]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if ra else c.ljust(w)
                         for c, w, ra in zip(cells, widths, right)).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def layer_table(run: RunResult) -> str:
    """Per-layer table: MACs, verdict per simulator, LSB stats, cycles estimated vs measured."""
    sims = list(run.sims)
    par = has_parity(run)
    bp = has_backpressure(run)
    header = ["layer", "op", "shape", "N:M", "MACs", "LSB vs fake-quant", "cycles est",
              "cycles RTL", "est/RTL", "util"] + (["stall"] if bp else []) + [*sims] + \
        ([] if sims else ["verdict"]) + ([parity_header(run)] if par else [])
    chn = has_chain(run)
    header += [chain_header(run)] if chn else []
    right = [False, False, False, False, True, False, True, True, True, True] + [True] * bp + \
        [False] * ((len(sims) or 1) + par + chn)
    rows = []
    for lr in run.layers:
        meas = lr.cycles_measured
        ratio = "-"
        if meas and lr.cycles_est is not None:
            ratio = f"{lr.cycles_est / meas:.3f}"
        cells = [lr.name, lr.op, lr.shape, lr.nm, _fmt_int(lr.macs or None), lsb_text(lr.lsb),
                 _fmt_int(lr.cycles_est), _fmt_int(meas), ratio, _fmt_pct(lr.utilization)]
        if bp:
            cells.append(stall_text(lr))
        if sims:
            for s in sims:
                o = lr.outcome(s)
                cells.append(o.verdict.upper() if o else lr.verdict)
        else:
            cells.append(lr.verdict)
        if par:
            cells.append(parity_cell(run, lr))
        if chn:
            cells.append(chain_cell(run, lr))
        rows.append(cells)
    return render_table(header, rows, right)


def failures_text(run: RunResult) -> str:
    """One line per failing (layer, simulator): the localized mismatch, repro and wave paths."""
    out = []
    for lr in run.layers:
        for o in lr.sims:
            if o.verdict == "pass":
                continue
            out.append(f"{o.verdict.upper()} {lr.name} [{o.sim}]: {o.message}")
            if o.repro:
                out.append(f"    repro: t2c-sim repro {o.repro}")
            if o.wave and o.verdict == FAIL:
                out.append(f"    wave:  {o.wave}")
    return "\n".join(out)


def backpressure_text(run: RunResult) -> str:
    """One line per layer x simulator run under back-pressure: measured vs modelled cycles."""
    out = []
    for lr in run.layers:
        for o in lr.sims:
            if o.backpressure and o.cycles_measured is not None:
                model = "-" if o.cycles_model is None else f"{o.cycles_model:,}"
                stall = "-" if o.stall_cycles is None else f"{o.stall_cycles:,}"
                out.append(f"  {lr.name} [{o.sim}]: back-pressure in {o.backpressure[0]}% / out "
                           f"{o.backpressure[1]}%: {o.cycles_measured:,} cycles measured, "
                           f"{model} modelled without back-pressure, {stall} stall cycles")
    return "\n".join(out)


def summary_line(run: RunResult) -> str:
    """``PASS: 5 pass, 0 fail, 0 error, 3 golden-only (12.3 s)``."""
    c = run.counts()
    dut = f" on {run.dut.get('name')}" if run.dut else ""
    return (f"{run.verdict.upper()}{dut}: {c['pass']} pass, {c['fail']} fail, {c['error']} error, "
            f"{c['golden']} golden-only, {c['skipped']} skipped ({run.wall_s:.1f} s)")


def suite_table(runs: Sequence[tuple[str, RunResult | None, dict]]) -> str:
    """One line per job: ``(job_id, run or None, job_info)`` with info keys name/hw/sim/seed/status."""
    header = ["job", "name", "DUT", "hw", "sim", "seed", "verdict", "pass", "fail", "error",
              "time"]
    rows = []
    for jid, run, info in runs:
        c = run.counts() if run else {}
        bp = info.get("backpressure") or [0, 0]
        dut = str(info.get("dut") or "t2c_accel") + (f" bp{bp[0]}/{bp[1]}" if any(bp) else "")
        rows.append([jid[:10], str(info.get("name", "")), dut, str(info.get("hw_tag", "")),
                     str(info.get("sim") or "-"), str(info.get("seed", "")),
                     str(info.get("status", run.verdict if run else "error")).upper(),
                     str(c.get("pass", 0)), str(c.get("fail", 0)), str(c.get("error", 0)),
                     f"{info.get('wall_s', 0.0):.1f}s"])
    return render_table(header, rows, [False] * 7 + [True] * 4)
