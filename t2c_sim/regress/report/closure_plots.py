"""Matplotlib (Agg) figures of coverage and mutation results, as ``data:`` PNG URIs.

Like :mod:`t2c_sim.regress.report.plots`: each function returns ``None`` when there is nothing
to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from t2c_sim.regress.report.plots import _uri  # noqa: E402

_STATUS_COLORS = {"killed": "#2e8b57", "timeout": "#7fbf7f", "survived": "#c0392b",
                  "equivalent": "#9aa5b1", "waived": "#e08a2c", "build-error": "#5d6d7e"}
_BLUE, _ORANGE, _RED = "#3b6ea8", "#e08a2c", "#c0392b"


def _pct(hit: int, total: int) -> float:
    return 100.0 * hit / total if total else 100.0


def code_coverage_plot(files: Sequence[Mapping[str, Any]],
                       targets: Mapping[str, float]) -> str | None:
    """Horizontal bars per RTL file (and TOTAL): line and toggle coverage, the targets dashed."""
    if not files:
        return None
    names = [f["file"] for f in files]
    lines = [_pct(f["lines_hit"], f["lines_total"]) for f in files]
    togs = [_pct(f["toggles_hit"], f["toggles_total"]) for f in files]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.2))
    ax.barh(y - 0.2, lines, 0.4, label="lines", color=_BLUE)
    ax.barh(y + 0.2, togs, 0.4, label="toggles", color=_ORANGE)
    for k, c in (("lines", _BLUE), ("toggles", _ORANGE)):
        if k in targets:
            ax.axvline(targets[k], color=c, ls="--", lw=1)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("covered (%)  (dashed: targets)")
    ax.set_title("Code coverage of the RTL (after waivers)")
    ax.legend(frameon=False, loc="lower left")
    ax.grid(axis="x", alpha=0.3)
    return _uri(fig)


def functional_plot(summary: Mapping[str, Any], title: str) -> str | None:
    """Horizontal bars per coverpoint: the share of its reachable bins hit."""
    pts = {p: v for p, v in summary.get("points", {}).items() if v[1]}
    if not pts:
        return None
    names = list(pts)
    pct = [_pct(h, t) for h, t in pts.values()]
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(names) + 1.2))
    ax.barh(y, pct, color=[_BLUE if v >= 100 else _RED for v in pct])
    for i, (h, t) in enumerate(pts.values()):
        ax.text(min(pct[i], 100) + 1, i, f"{h}/{t}", va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 115)
    ax.set_xlabel("reachable bins hit (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _uri(fig)


def mutation_plot(by: Mapping[str, Mapping[str, int]], title: str) -> str | None:
    """Stacked bars: mutant statuses per group (operator or file)."""
    if not by:
        return None
    groups = list(by)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(4.8, 0.6 * len(groups) + 2.5), 3.2))
    bottom = np.zeros(len(groups))
    for st, color in _STATUS_COLORS.items():
        v = np.array([by[g].get(st, 0) for g in groups], dtype=float)
        if v.any():
            ax.bar(x, v, bottom=bottom, color=color, label=st)
            bottom += v
    ax.set_xticks(x, groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mutants")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _uri(fig)
