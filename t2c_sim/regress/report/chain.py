"""The chained-mode part of the reports (``t2c-sim run --chain``, :mod:`t2c_sim.regress.chain`).

Rendered from :attr:`RunResult.chain <t2c_sim.regress.results.RunResult.chain>` (per simulator:
``first_divergence``, ``layers``, ``diverged``, ``broken``, ``output``) and
:attr:`LayerResult.chain <t2c_sim.regress.results.LayerResult.chain>` (per simulator, the
:func:`~t2c_sim.regress.chain.diff_stats` of the layer's chained output vs the golden network)
only: a column of the layer tables (``exact`` or ``12/3136 differ, max 5``), a terminal section
naming the first divergence per simulator, an HTML section and JUnit test cases (one per layer x
simulator, ``<failure type="chain">`` where the chained output differs).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from typing import Any

from t2c_sim.regress.results import LayerResult, RunResult

__all__ = ["has_chain", "chain_header", "chain_cell", "chain_lines", "chain_html", "chain_cases"]


def has_chain(run: RunResult) -> bool:
    return bool(run.chain)


def stats_text(st: dict[str, Any] | None) -> str:
    """``exact``, ``12/3136 differ, max 5`` or ``-`` (not reached)."""
    if not st:
        return "-"
    if not st.get("mismatch"):
        return "exact"
    if st.get("shape"):
        return f"shape {st['shape']}"
    return f"{st['mismatch']}/{st['n']} differ, max {st.get('max')}"


def chain_header(run: RunResult) -> str:
    return "chained vs golden" + (f" ({', '.join(run.chain)})" if len(run.chain) > 1 else "")


def chain_cell(run: RunResult, lr: LayerResult) -> str:
    """One table cell: the chained output vs golden per simulator (``exact | 3/64 differ...``)."""
    ent = lr.chain or {}
    return " | ".join(stats_text(ent.get(s)) for s in run.chain)


def _where(run: RunResult, sim: str, name: str) -> str:
    lr = next((x for x in run.layers if x.name == name), None)
    o = lr.outcome(sim) if lr is not None else None
    if o is not None and o.verdict != "pass":
        return f"; the RTL of {name} differs from golden on its own input ({o.message})"
    if lr is not None and lr.golden_only:
        return f"; {name} runs on the host: its input diverged earlier"
    return ""


def chain_lines(run: RunResult) -> list[str]:
    """Terminal lines: per simulator the first divergence (or that the chain matches), the
    network output, where the chain broke."""
    out = []
    for sim, s in run.chain.items():
        first = s.get("first_divergence")
        head = (f"chained [{sim}]: {s.get('layers', 0)} layers computed from the RTL's own "
                f"outputs, ")
        if first is None:
            head += "identical to the golden network at every layer"
        else:
            head += (f"{s.get('diverged', 0)} differ from golden; first divergence at layer "
                     f"{first}{_where(run, sim, first)}")
        out.append(head)
        if s.get("output_layer"):
            out.append(f"  network output ({s['output_layer']}): {stats_text(s.get('output'))}")
        if s.get("broken"):
            out.append(f"  the chain stopped at layer {s['broken']}: its RTL produced no output")
    return out


def _e(v: object) -> str:
    return html.escape(str(v))


def chain_html(run: RunResult) -> str:
    """The HTML section: the first divergence per simulator and one row per layer."""
    if not has_chain(run):
        return ""
    sims = list(run.chain)
    parts = ["<h2>Chained run</h2>",
             '<div class="meta">each co-simulated layer fed by the RTL outputs of the layers '
             "before it (host-side layers computed from them by the golden model), compared "
             "with the golden network.</div>"]
    parts += [f'<div class="meta">{_e(line)}</div>' for line in chain_lines(run)]
    rows = []
    for lr in run.layers:
        cells = [f"<td>{_e(lr.name)}</td>"]
        for s in sims:
            st = (lr.chain or {}).get(s)
            cls = "pass" if st and not st.get("mismatch") else ("fail" if st else "skipped")
            cells.append(f'<td class="{cls}">{_e(stats_text(st))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{_e(h)}</th>" for h in ["layer", *sims])
    parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    return "\n".join(parts)


def chain_cases(ts: ET.Element, run: RunResult) -> tuple[int, int]:
    """Append one ``<testcase>`` per layer x simulator of the chain; returns ``(tests,
    failures)``."""
    n = fails = 0
    for sim, s in run.chain.items():
        for lr in run.layers:
            st = (lr.chain or {}).get(sim)
            if st is None:
                continue
            tc = ET.SubElement(ts, "testcase", classname=f"{run.title}.{lr.name}",
                               name=f"{lr.name}[chain {sim}]", time="0")
            n += 1
            if st.get("mismatch"):
                fails += 1
                first = s.get("first_divergence")
                el = ET.SubElement(tc, "failure", type="chain",
                                   message=f"chained output differs from golden: {stats_text(st)}"
                                           f" (first divergence at layer {first})")
                el.text = f"first divergence at layer {first}{_where(run, sim, str(first))}"
            else:
                ET.SubElement(tc, "system-out").text = "chained output identical to golden"
    return n, fails
