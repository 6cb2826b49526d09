"""Self-contained HTML reports (inline CSS, plots as inline base64 PNG): one file to open."""

from __future__ import annotations

import html
from collections.abc import Sequence

from t2c_sim.regress.report.chain import chain_cell, chain_header, chain_html, has_chain
from t2c_sim.regress.report.closure import coverage_html, mutation_body
from t2c_sim.regress.report.parity import has_parity, parity_cell, parity_header, parity_html
from t2c_sim.regress.report.terminal import dut_text, has_backpressure, lsb_text, stall_text
from t2c_sim.regress.results import RunResult

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}th{background:#f3f5f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{background:#e3f4e8;color:#1d6b35;font-weight:600}.fail{background:#fbe3e1;color:#a12a1d;
font-weight:600}.error{background:#fff1d6;color:#8a5a00;font-weight:600}
.golden,.skipped{color:#666}.badge{display:inline-block;padding:3px 10px;border-radius:4px}
.meta{color:#555;font-size:13px}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
img{max-width:100%;border:1px solid #eee;margin:6px 0}.mm{margin:8px 0 16px 0}
details{margin:6px 0}summary{cursor:pointer}
"""


def _e(v: object) -> str:
    return html.escape(str(v))


def _num(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _verdict(v: str) -> str:
    return f'<td class="{_e(v)}">{_e(v.upper())}</td>'


def _img(uri: str | None, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{uri}">' if uri else ""


def layer_table_html(run: RunResult) -> str:
    """The per-layer table as an HTML ``<table>``."""
    sims = list(run.sims)
    par = has_parity(run)
    bp = has_backpressure(run)
    head = ["layer", "op", "shape", "N:M", "MACs", "LSB vs fake-quant", "cycles est",
            "cycles RTL", "est/RTL", "utilization"] + (["stall (measured - model)"] if bp else []) \
        + (sims or ["verdict"]) + ([parity_header(run)] if par else [])
    chn = has_chain(run)
    head += [chain_header(run)] if chn else []
    rows = []
    for lr in run.layers:
        meas = lr.cycles_measured
        ratio = f"{lr.cycles_est / meas:.3f}" if meas and lr.cycles_est is not None else "-"
        util = "-" if lr.utilization is None else f"{100 * lr.utilization:.1f}%"
        cells = [f"<td>{_e(lr.name)}</td>", f"<td>{_e(lr.op)}</td>", f"<td>{_e(lr.shape)}</td>",
                 f"<td>{_e(lr.nm)}</td>", f'<td class="num">{_num(lr.macs or None)}</td>',
                 f"<td>{_e(lsb_text(lr.lsb))}</td>", f'<td class="num">{_num(lr.cycles_est)}</td>',
                 f'<td class="num">{_num(meas)}</td>', f'<td class="num">{ratio}</td>',
                 f'<td class="num">{util}</td>']
        if bp:
            cells.append(f'<td class="num">{_e(stall_text(lr))}</td>')
        if sims:
            for s in sims:
                o = lr.outcome(s)
                cells.append(_verdict(o.verdict if o else lr.verdict))
        else:
            cells.append(_verdict(lr.verdict))
        if par:
            cells.append(f"<td>{_e(parity_cell(run, lr))}</td>")
        if chn:
            cells.append(f"<td>{_e(chain_cell(run, lr))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f'<table class="layers"><tr>{th}</tr>{"".join(rows)}</table>'


def _failures_html(run: RunResult, with_maps: bool = True) -> str:
    parts = []
    for lr in run.layers:
        for o in lr.sims:
            if o.verdict == "pass":
                continue
            parts.append(f'<div class="mm"><b class="{_e(o.verdict)} badge">'
                         f'{_e(o.verdict.upper())}</b> <b>{_e(lr.name)}</b> [{_e(o.sim)}]: '
                         f"<code>{_e(o.message)}</code>")
            mm = o.mismatch or {}
            keys = ("layer", "tile", "row", "channel", "expected", "actual", "acc_expected",
                    "acc_actual", "count")
            if mm:
                cells = "".join(f"<tr><th>{k}</th><td>{_e(mm.get(k))}</td></tr>"
                                for k in keys if mm.get(k) is not None)
                parts.append(f"<table>{cells}</table>")
            if o.repro:
                parts.append(f"<div>repro: <code>t2c-sim repro {_e(o.repro)}</code></div>")
            if o.wave:
                parts.append(f"<div>waveform of the failing tile: <code>{_e(o.wave)}</code></div>")
            if with_maps:
                from t2c_sim.regress.report import plots  # matplotlib: only when drawing

                parts.append(_img(plots.mismatch_map_plot(lr.name, o), f"mismatch map {lr.name}"))
            parts.append("</div>")
    return "".join(parts)


def _summary_html(run: RunResult) -> str:
    if not run.summary:
        return ""
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_fmt(v))}</td></tr>" for k, v in
                   run.summary.items())
    return f"<h2>End-to-end cross-check</h2><table>{rows}</table>"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def run_body(run: RunResult, level: int = 1, plots_on: bool = True) -> str:
    """HTML body fragment for one run (header, tables, failures, plots)."""
    c = run.counts()
    hw = ", ".join(f"{k}={v}" for k, v in run.hw.items())
    h = f"h{level}"
    out = [f'<{h}>{_e(run.title)} <span class="badge {_e(run.verdict)}">'
           f"{_e(run.verdict.upper())}</span></{h}>",
           f'<div class="meta">source: <code>{_e(run.source)}</code> &middot; simulators: '
           f'{_e(", ".join(run.sims) or "none (golden + estimate)")} &middot; seed {run.seed} '
           f"&middot; {run.wall_s:.1f} s<br>DUT: <code>{_e(dut_text(run))}</code><br>"
           f"hardware: <code>{_e(hw)}</code><br>"
           f"command: <code>{_e(run.command)}</code><br>{c['pass']} pass, {c['fail']} fail, "
           f"{c['error']} error, {c['golden']} golden-only, {c['skipped']} skipped</div>",
           "<h2>Layers</h2>", layer_table_html(run)]
    fails = _failures_html(run, with_maps=plots_on)
    if fails:
        out += ["<h2>Mismatches and errors</h2>", fails]
    out.append(parity_html(run))
    out.append(chain_html(run))
    out.append(coverage_html(run.coverage, plots_on))
    out.append(_summary_html(run))
    if plots_on:
        from t2c_sim.regress.report import plots  # matplotlib (~0.5 s): only when drawing

        imgs = [_img(plots.cycles_plot(run), "cycles per layer"),
                _img(plots.utilization_plot(run), "utilization"),
                _img(plots.lsb_plot(run), "LSB difference histograms")]
        if any(imgs):
            out += ["<h2>Plots</h2>", *imgs]
    return "\n".join(out)


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n{body}\n"
            f'<p class="meta">generated by t2c-sim</p></body></html>\n')


def render_html(run: RunResult) -> str:
    """A complete, self-contained HTML page for one run."""
    return _page(f"t2c-sim: {run.title}", run_body(run))


def render_suite_html(title: str, jobs: Sequence[tuple[str, RunResult | None, dict]],
                      coverage: dict | None = None) -> str:
    """A self-contained page for a regression: job table, coverage (when measured), then each
    job's details."""
    rows = []
    details = []
    for jid, run, info in jobs:
        status = str(info.get("status", run.verdict if run else "error"))
        c = run.counts() if run else {}
        rows.append(f"<tr><td><code>{_e(jid[:10])}</code></td><td>{_e(info.get('name', ''))}</td>"
                    f"<td>{_e(info.get('dut', 't2c_accel'))}</td>"
                    f"<td>{_e(info.get('hw_tag', ''))}</td><td>{_e(info.get('sim') or '-')}</td>"
                    f"<td>{_e(info.get('seed', ''))}</td>{_verdict(status)}"
                    f'<td class="num">{c.get("pass", 0)}</td><td class="num">{c.get("fail", 0)}'
                    f'</td><td class="num">{c.get("error", 0)}</td>'
                    f'<td class="num">{float(info.get("wall_s", 0.0)):.1f} s</td></tr>')
        if run is not None:
            open_attr = " open" if run.verdict in ("fail", "error") else ""
            details.append(f"<details{open_attr}><summary>{_e(info.get('name', jid))} "
                           f"({_e(status.upper())})</summary>"
                           f"{run_body(run, level=3, plots_on=run.verdict == 'fail')}</details>")
        elif info.get("message"):
            details.append(f"<details open><summary>{_e(info.get('name', jid))} (ERROR)</summary>"
                           f"<code>{_e(info['message'])}</code></details>")
    head = "".join(f"<th>{h}</th>" for h in ("job", "name", "DUT", "hw", "sim", "seed", "verdict",
                                              "pass", "fail", "error", "time"))
    body = (f"<h1>{_e(title)}</h1><h2>Jobs</h2><table><tr>{head}</tr>{''.join(rows)}</table>"
            f"{coverage_html(coverage)}<h2>Details</h2>{''.join(details)}")
    return _page(f"t2c-sim regression: {title}", body)


def render_mutation_html(rep: dict) -> str:
    """A self-contained page for ``t2c-sim mutate`` (``mutation.json``'s content)."""
    return _page(f"t2c-sim mutation: {rep.get('suite', '')}",
                 f"<h1>Mutation testing: {_e(rep.get('suite', ''))}</h1>{mutation_body(rep)}")
