"""Matplotlib (Agg) figures of a run, returned as ``data:image/png;base64,...`` URIs.

Each function returns ``None`` when there is nothing to draw (e.g. no simulator ran).
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from t2c_sim.regress.results import RunResult, SimOutcome  # noqa: E402

_BLUE, _ORANGE, _RED, _GREEN = "#3b6ea8", "#e08a2c", "#c0392b", "#2e8b57"


def _uri(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _mac_layers(run: RunResult) -> list:
    return [lr for lr in run.layers if lr.cycles_est is not None or lr.cycles_measured is not None]


def cycles_plot(run: RunResult) -> str | None:
    """Grouped bars: estimated vs RTL-measured cycles per MAC layer (log scale)."""
    layers = _mac_layers(run)
    if not layers:
        return None
    x = np.arange(len(layers))
    est = [lr.cycles_est or 0 for lr in layers]
    meas = [lr.cycles_measured or 0 for lr in layers]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(layers) + 2), 3.2))
    ax.bar(x - 0.2, est, 0.4, label="estimated", color=_BLUE)
    if any(meas):
        ax.bar(x + 0.2, meas, 0.4, label="RTL measured", color=_ORANGE)
    ax.set_xticks(x, [lr.name for lr in layers], rotation=30, ha="right")
    ax.set_ylabel("cycles")
    nonzero = [v for v in est + meas if v]
    if nonzero and max(nonzero) > 20 * min(nonzero):
        ax.set_yscale("log")
    ax.set_title("Cycles per layer: estimate vs RTL")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _uri(fig)


def utilization_plot(run: RunResult) -> str | None:
    """Bars of estimated PE-array utilization per MAC layer."""
    layers = [lr for lr in run.layers if lr.utilization is not None]
    if not layers:
        return None
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(layers) + 2), 3.0))
    u = [100 * lr.utilization for lr in layers]
    ax.bar(range(len(layers)), u, color=_GREEN)
    for i, v in enumerate(u):
        ax.text(i, v + 1, f"{v:.0f}%", ha="center", fontsize=8)
    ax.set_xticks(range(len(layers)), [lr.name for lr in layers], rotation=30, ha="right")
    ax.set_ylim(0, 110)
    ax.set_ylabel("utilization (%)")
    ax.set_title("PE-array utilization (useful MACs / MAC slots)")
    ax.grid(axis="y", alpha=0.3)
    return _uri(fig)


#: At most this many small multiples in the LSB figure (matplotlib's layout time grows with it).
LSB_PLOT_MAX = 16


def lsb_plot(run: RunResult) -> str | None:
    """Small multiples: histogram of (integer - fake-quant) output differences in LSBs, of the
    layers where some output differs (at most :data:`LSB_PLOT_MAX`, in execution order; the
    title counts the exact layers and those left out)."""
    checked = [lr for lr in run.layers if lr.lsb and lr.lsb.get("hist")]
    differ = [lr for lr in checked if any(int(float(k)) != 0 for k in lr.lsb["hist"])]
    if not differ:
        return None
    layers = differ[:LSB_PLOT_MAX]
    n = len(layers)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    for ax, lr in zip(axes.ravel(), layers):
        hist = {int(float(k)): int(v) for k, v in lr.lsb["hist"].items()}
        keys = sorted(hist)
        total = max(1, sum(hist.values()))
        ax.bar(keys, [hist[k] / total for k in keys], color=_BLUE, width=0.8)
        ax.set_yscale("log")
        lo, hi = min(keys) - 1, max(keys) + 1
        ax.set_xlim(lo - 0.5, hi + 0.5)
        if hi - lo <= 12:
            ax.set_xticks(range(lo, hi + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(lr.name, fontsize=9)
        ax.set_xlabel("LSB difference", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    note = [f"{len(checked) - len(differ)} more layers: every output equal"] \
        if len(checked) > len(differ) else []
    if len(differ) > n:
        note.append(f"{len(differ) - n} more layers with differences: see the table")
    fig.suptitle("Integer vs fake-quant outputs (fraction of elements)"
                 + (f"\n({'; '.join(note)})" if note else ""), fontsize=10)
    fig.tight_layout()
    return _uri(fig)


def mismatch_map_plot(layer: str, o: SimOutcome) -> str | None:
    """Heatmap of mismatching outputs (rows x channels, binned) of a failing layer."""
    mm = o.mismatch or {}
    grid = mm.get("map")
    if not grid:
        return None
    a = np.asarray(grid, dtype=float)
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    im = ax.imshow(a, aspect="auto", cmap="Reds", interpolation="nearest",
                   extent=(0, mm.get("map_cols", a.shape[1]), mm.get("map_rows", a.shape[0]), 0))
    fig.colorbar(im, ax=ax, label="mismatching outputs")
    if mm.get("row") is not None and mm.get("channel") is not None:
        ax.plot([mm["channel"] + 0.5], [mm["row"] + 0.5], marker="x", color="black", ms=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("output channel")
    ax.set_ylabel("output row (P)")
    ax.set_title(f"{layer} [{o.sim}]: {mm.get('count', '?')} mismatching outputs", fontsize=9)
    return _uri(fig)
