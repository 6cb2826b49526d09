"""HTML of verification closure: the coverage section of run and regression reports, and the
mutation report of ``t2c-sim mutate`` (a page of its own). Inline CSS and PNG plots, like
:mod:`t2c_sim.regress.report.html`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

MUTATION_TARGET = 95.0


def _e(v: object) -> str:
    return html.escape(str(v))


def _img(uri: str | None, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="{uri}">' if uri else ""


def _pct(hit: int, total: int) -> str:
    return f"{100.0 * hit / total:.1f}%" if total else "-"


def _cls(value: float, target: float) -> str:
    return "pass" if value >= target else "fail"


def code_html(code: Mapping[str, Any] | None, plots_on: bool = True) -> str:
    """Code coverage: totals against the targets, the per-file table, a plot, the holes."""
    if not code:
        return ("<h3>Code coverage of the RTL</h3><p>No passing Verilator co-simulation to "
                "measure.</p>")
    t, g = code["total"], code["targets"]
    head = "".join(f"<th>{h}</th>" for h in ("file", "lines", "", "toggles", "", "user points",
                                              "waived points"))
    rows = []
    for f in code["files"]:
        rows.append(f"<tr><td>{_e(f['file'])}</td>"
                    f'<td class="num">{f["lines_hit"]}/{f["lines_total"]}</td>'
                    f'<td class="num">{_pct(f["lines_hit"], f["lines_total"])}</td>'
                    f'<td class="num">{f["toggles_hit"]}/{f["toggles_total"]}</td>'
                    f'<td class="num">{_pct(f["toggles_hit"], f["toggles_total"])}</td>'
                    f'<td class="num">{f["user_hit"]}/{f["user_total"]}</td>'
                    f'<td class="num">{f["waived"]}</td></tr>')
    link = (f'<a href="{_e(code["html"])}">line-by-line view (genhtml)</a> &middot; '
            if code.get("html") else "")
    out = ["<h3>Code coverage of the RTL (Verilator line, toggle and user coverage)</h3>",
           f'<p>lines <b class="badge {_cls(t["lines"], g["lines"])}">{t["lines"]:.1f}%</b> '
           f'(target {g["lines"]:.0f}%), toggles <b class="badge '
           f'{_cls(t["toggles"], g["toggles"])}">{t["toggles"]:.1f}%</b> (target '
           f'{g["toggles"]:.0f}%); merged from {code["inputs"]} coverage file(s). {link}'
           f'data <code>{_e(code["dat"])}</code>, lcov <code>{_e(code["info"])}</code>. '
           "Waived points (unreachable code, <code>rtl/coverage_waivers.yaml</code>) are left "
           "out of both counts.</p>",
           f"<table><tr>{head}</tr>{''.join(rows)}</table>"]
    if plots_on:
        from t2c_sim.regress.report import closure_plots as cp  # matplotlib: only when drawing

        out.append(_img(cp.code_coverage_plot(code["files"], g), "code coverage per file"))
    if code.get("holes"):
        items = "".join(f"<li><b>{_e(f)}</b>: {_e('; '.join(v))}</li>"
                        for f, v in code["holes"].items())
        out.append(f"<details><summary>{code['holes_total']} point(s) never reached"
                   f"</summary><ul>{items}</ul></details>")
    return "".join(out)


def functional_html(entries: list[Mapping[str, Any]], plots_on: bool = True) -> str:
    """Functional coverage per array: totals, the per-coverpoint table and plot, the holes."""
    out = ["<h3>Functional coverage</h3>"]
    if not entries:
        return out[0] + "<p>No passing co-simulated layer to sample.</p>"
    for e in entries:
        s = e["summary"]
        cls = "pass" if not s["holes_total"] else "fail"
        out.append(f'<p><b>{_e(e.get("hw_tag"))}</b>: <b class="badge {cls}">{s["percent"]:.1f}%'
                   f'</b> of {s["reachable"]} reachable bins hit ({e.get("layers", 0)} layers'
                   + (f', {e["jobs"]} jobs' if "jobs" in e else "")
                   + f'; {s["unreachable"]} bins unreachable on this array, with the reason in '
                   "the data).</p>")
        rows = "".join(f'<tr><td>{_e(p)}</td><td class="num">{h}/{n}</td>'
                       f'<td class="num">{_pct(h, n)}</td></tr>'
                       for p, (h, n) in s["points"].items() if n)
        out.append(f"<details><summary>per coverpoint</summary><table><tr><th>coverpoint</th>"
                   f"<th>bins</th><th></th></tr>{rows}</table></details>")
        if plots_on:
            from t2c_sim.regress.report import closure_plots as cp  # matplotlib: when drawing

            out.append(_img(cp.functional_plot(s, f"Functional coverage on {e.get('hw_tag')}"),
                            "functional coverage"))
        if s["holes"]:
            out.append(f"<p>Holes ({s['holes_total']}): <code>"
                       f"{_e(', '.join(s['holes']))}</code></p>")
    return "".join(out)


def coverage_html(cov: Mapping[str, Any] | None, plots_on: bool = True) -> str:
    """The coverage section of a run or regression report ('' without coverage)."""
    if not cov:
        return ""
    parts = ["<h2>Coverage</h2>"]
    if "code" in cov:
        parts.append(code_html(cov["code"], plots_on))
        if cov.get("code_missing"):
            parts.append(f"<p>Coverage files not found (jobs on remote workers keep theirs): "
                         f"<code>{_e(', '.join(cov['code_missing']))}</code></p>")
    parts.append(functional_html(list(cov.get("functional", [])), plots_on))
    if cov.get("until_covered") is not None:
        left = cov["until_covered"]
        txt = "every bin hit" if not any(left.values()) else "; ".join(
            f"{k}: {', '.join(v)}" for k, v in left.items() if v)
        parts.append(f"<p>--until-covered: {_e(txt)}</p>")
    return "\n".join(parts)


def mutation_body(rep: Mapping[str, Any]) -> str:
    """The mutation section: score against the target, the split, plots, survivors' diffs."""
    c = rep["counts"]
    score = 100.0 * rep["score"]
    non_eq = c["killed"] + c["timeout"] + c["survived"]
    res = rep["results"]
    by_op: dict[str, dict[str, int]] = {}
    by_file: dict[str, dict[str, int]] = {}
    for r in res:
        m = r["mutant"]
        for d, k in ((by_op, m["operator"]), (by_file, m["file"])):
            d.setdefault(k, {}).setdefault(r["status"], 0)
            d[k][r["status"]] += 1
    from t2c_sim.regress.report import closure_plots as cp  # matplotlib: only when drawing

    meta = rep.get("meta", {})
    split = ", ".join(f"{v} {k}" for k, v in c.items())
    out = [f'<h2>Mutation score <b class="badge {_cls(score, MUTATION_TARGET)}">{score:.1f}%'
           f"</b></h2>",
           f"<p>{len(res)} mutants of <code>{_e(meta.get('rtl', 'rtl/'))}</code> against suite "
           f"<code>{_e(rep['suite'])}</code> on {_e(meta.get('sim', '?'))}: {split}. Score = "
           f"(killed + timeout) / (killed + timeout + survived) = {c['killed'] + c['timeout']}"
           f"/{non_eq} (target {MUTATION_TARGET:.0f}% of non-equivalent mutants over at least "
           "200 mutants). Equivalent: the optimized netlist equals the original for every "
           "simulated design; waived: explained in <code>rtl/mutation_waivers.yaml</code>. "
           f"{rep.get('wall_s', 0):.0f} s wall.</p>",
           _img(cp.mutation_plot(by_op, "Mutants per operator"), "mutants per operator"),
           _img(cp.mutation_plot(by_file, "Mutants per file"), "mutants per file")]
    surv = [r for r in res if r["status"] == "survived"]
    if surv:
        out.append(f"<h3>Survivors ({len(surv)}): killed by no test, explained by no waiver</h3>")
        for r in surv:
            d = rep.get("survivor_diffs", {}).get(r["mutant"]["id"], "")
            out.append(f"<p><code>{_e(r['mutant']['id'])}</code></p><pre>{_e(d)}</pre>")
    for st in ("waived", "equivalent"):
        items = [r for r in res if r["status"] == st]
        if items:
            lis = "".join(f"<li><code>{_e(r['mutant']['id'])}</code> "
                          f"<code>{_e(r['mutant']['original'])} -&gt; "
                          f"{_e(r['mutant']['replacement'])}</code>: {_e(r['detail'])}</li>"
                          for r in items)
            out.append(f"<details><summary>{len(items)} {st}</summary><ul>{lis}</ul></details>")
    return "\n".join(out)
