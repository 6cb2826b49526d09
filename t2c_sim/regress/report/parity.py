"""The ONNX Runtime parity part of the reports (``t2c-sim run MODEL.onnx --parity ort``).

Rendered from :attr:`RunResult.parity <t2c_sim.regress.results.RunResult.parity>` and
:attr:`LayerResult.parity <t2c_sim.regress.results.LayerResult.parity>` only (see
:func:`t2c_sim.verify.ort_parity.ort_parity` for the fields): a column of the layer tables, a
terminal section, an HTML section and JUnit test cases (one per layer x optimization level; a
``fail`` verdict is a ``<failure type="parity">``).
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from typing import Any

from t2c_sim.regress.results import LayerResult, RunResult

__all__ = ["has_parity", "short_level", "stats_text", "parity_cell", "parity_header",
           "parity_lines", "parity_html", "parity_cases"]


def has_parity(run: RunResult) -> bool:
    return bool(run.parity) or any(lr.parity for lr in run.layers)


def short_level(level: str) -> str:
    """``ORT_ENABLE_ALL`` -> ``ENABLE_ALL``."""
    return level[4:] if level.startswith("ORT_") else level


def stats_text(st: dict[str, Any] | None) -> str:
    """``exact`` or ``3/512 differ (-1: 2, +1: 1)`` of a :func:`~t2c_sim.verify.ort_parity.compare`."""
    if not st:
        return "-"
    if st.get("error"):
        return f"error: {st['error']}"
    if not st.get("mismatch"):
        return "exact"
    hist = ", ".join(f"{int(k):+d}: {v}" for k, v in st.get("hist", {}).items())
    return f"{st['mismatch']}/{st['n']} differ ({hist} LSB)"


def _entry_text(e: dict[str, Any]) -> str:
    v = e.get("verdict")
    if v == "exact":
        return "exact"
    loc = e.get("local") or {}
    what = f"{loc.get('mismatch', '?')}/{loc.get('n', '?')} +-{loc.get('max', '?')}"
    return f"FAIL {what}" if v == "fail" else f"{what} (float)"


def parity_header(run: RunResult) -> str:
    levels = run.parity.get("levels") or []
    return "ORT parity (" + " | ".join(short_level(lv) for lv in levels) + ")" if levels \
        else "ORT parity"


def parity_cell(run: RunResult, lr: LayerResult) -> str:
    """One table cell: the verdict per optimization level, ``exact | exact``."""
    if not lr.parity:
        return "-"
    levels = run.parity.get("levels") or list(lr.parity)
    return " | ".join(_entry_text(lr.parity[lv]) if lv in lr.parity else "-" for lv in levels)


def parity_lines(run: RunResult) -> list[str]:
    """Terminal lines: per level, layers exact, the quantized input, the unmodified graph's
    output; then one line per layer that differs and the notes."""
    if not has_parity(run):
        return []
    p = run.parity
    out = [f"parity with {p.get('runtime', 'ONNX Runtime')} (golden vs runtime, per layer on "
           "the runtime's own inputs):"]
    for lv in p.get("levels", []):
        ents = [lr.parity[lv] for lr in run.layers if lr.parity and lv in lr.parity]
        exact = sum(e.get("verdict") == "exact" for e in ents)
        fails = sum(e.get("verdict") == "fail" for e in ents)
        out.append(f"  {lv}: {exact}/{len(ents)} layers exact, {fails} fail; quantized input "
                   f"{stats_text(p.get('input', {}).get(lv))}; network output of the unmodified "
                   f"graph {stats_text(p.get('deployed', {}).get(lv))}")
    for lr in run.layers:
        for lv, e in (lr.parity or {}).items():
            if e.get("verdict") != "exact":
                out.append(f"  {e.get('verdict', '?').upper()} {lr.name} [{lv}, {e.get('kernel')}]:"
                           f" local {stats_text(e.get('local'))}; chained "
                           f"{stats_text(e.get('chained'))}")
    out += [f"  note: {n}" for n in p.get("notes", [])]
    return out


def _e(v: object) -> str:
    return html.escape(str(v))


def parity_html(run: RunResult) -> str:
    """The HTML section: one table per optimization level, input/output rows, notes."""
    if not has_parity(run):
        return ""
    p = run.parity
    parts = [f"<h2>Parity with {_e(p.get('runtime', 'ONNX Runtime'))}</h2>",
             '<div class="meta">golden vs ONNX Runtime on every quantized tensor; <b>local</b>: '
             "the golden layer on the runtime's own inputs (its arithmetic alone), "
             "<b>chained</b>: the golden network from the host-quantized input.</div>"]
    for lv in p.get("levels", []):
        rows = [f"<tr><td>(quantized input)</td><td>QuantizeLinear</td><td>"
                f"{_e(stats_text(p.get('input', {}).get(lv)))}</td><td>-</td><td>-</td></tr>"]
        for lr in run.layers:
            e = (lr.parity or {}).get(lv)
            if not e:
                continue
            v = e.get("verdict", "")
            cls = {"exact": "pass", "fail": "fail"}.get(v, "error")
            kern = e.get("kernel", "")
            if e.get("deployed_kernel"):
                kern += f" (unmodified graph: {e['deployed_kernel']})"
            rows.append(f"<tr><td>{_e(lr.name)}</td><td>{_e(kern)}</td><td>"
                        f"{_e(stats_text(e.get('local')))}</td><td>"
                        f"{_e(stats_text(e.get('chained')))}</td><td class=\"{cls}\">"
                        f"{_e(v.upper())}</td></tr>")
        rows.append(f"<tr><td>(network output, unmodified graph)</td><td>-</td><td>-</td><td>"
                    f"{_e(stats_text(p.get('deployed', {}).get(lv)))}</td><td>-</td></tr>")
        head = "".join(f"<th>{h}</th>" for h in ("layer", "ONNX Runtime kernel", "local",
                                                 "chained", "verdict"))
        parts.append(f"<h3>{_e(lv)}</h3><table><tr>{head}</tr>{''.join(rows)}</table>")
    parts += [f'<div class="meta">note: {_e(n)}</div>' for n in p.get("notes", [])]
    return "\n".join(parts)


def parity_cases(ts: ET.Element, run: RunResult) -> tuple[int, int]:
    """Append one ``<testcase>`` per layer x level (and the quantized input) to ``ts``;
    returns ``(tests, failures)``."""
    n = fails = 0
    for lv in run.parity.get("levels", []):
        cases: list[tuple[str, str, dict[str, Any] | None, bool]] = []
        st = run.parity.get("input", {}).get(lv)
        cases.append(("input", "QuantizeLinear", {"local": st}, bool(st and st.get("mismatch"))))
        for lr in run.layers:
            e = (lr.parity or {}).get(lv)
            if e:
                cases.append((lr.name, e.get("kernel", ""), e, e.get("verdict") == "fail"))
        for name, kernel, e, failed in cases:
            tc = ET.SubElement(ts, "testcase", classname=f"{run.title}.{name}",
                               name=f"{name}[ort {short_level(lv)}]", time="0")
            n += 1
            text = (f"kernel={kernel} local={stats_text((e or {}).get('local'))} "
                    f"chained={stats_text((e or {}).get('chained'))}")
            if failed:
                fails += 1
                el = ET.SubElement(tc, "failure", type="parity",
                                   message=f"golden != ONNX Runtime ({lv}, {kernel})")
                el.text = text
            else:
                ET.SubElement(tc, "system-out").text = text
    return n, fails
