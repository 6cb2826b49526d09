"""Chained mode (``t2c-sim run --chain``): the network runs on the hardware model, layer after layer.

Without ``--chain`` every MAC layer is co-simulated on the golden model's input, so an error
stays in its layer. With it, each co-simulated layer's RTL output is what the next layers
receive (a pool, an add or a flatten is computed on the host by the golden model from the
chained values), as on a chip: an error propagates, and the report shows the first layer where
the chained values and the golden network differ.

:class:`Chain` is one simulator's chain. :meth:`Chain.advance` evaluates on the host every
layer whose inputs are known and returns the co-simulated layers that are now ready (a *wave*:
independent branches such as a residual block's shortcut convolution become ready together and
can run in parallel), each as a record whose ``x_q`` is its chained input and whose ``y``/``acc``
are the golden model's for THAT input (so the layer's own check, its localization and its repro
bundle are about the RTL alone). :meth:`Chain.feed` stores the RTL output. The comparison of
each layer's chained output with the golden network (:func:`diff_stats`) is kept per layer.

With a correct RTL the chained values equal the golden network at every layer (the golden model
is the RTL's exact specification); a fault shows first in its layer's own check and in the
chain from its layer on, unless later layers mask it (a clamp, a max pool).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from t2c_sim.config import OpKind
from t2c_sim.errors import RecordError
from t2c_sim.golden import run_layer
from t2c_sim.golden.network import NETWORK_INPUT
from t2c_sim.record import LayerRecord

__all__ = ["Chain", "diff_stats", "chain_summary"]

log = logging.getLogger(__name__)


def diff_stats(chained: np.ndarray, golden: np.ndarray) -> dict[str, Any]:
    """``{"n", "mismatch", "max", "first"}``: how a chained output differs from the golden one
    (``first``: flat index of the first differing value, ``None`` when equal)."""
    a = np.asarray(chained, dtype=np.int64)
    b = np.asarray(golden, dtype=np.int64)
    if a.shape != b.shape:
        return {"n": int(b.size), "mismatch": int(b.size), "max": None, "first": 0,
                "shape": f"{a.shape} != {b.shape}"}
    bad = a != b
    k = int(bad.sum())
    return {"n": int(b.size), "mismatch": k,
            "max": int(np.abs(a - b).max()) if k else 0,
            "first": int(np.flatnonzero(bad.reshape(-1))[0]) if k else None}


@dataclass
class Chain:
    """One simulator's chained run over ``records`` (execution order, golden results attached).

    Attributes:
        sim: the simulator whose outputs feed the chain.
        records: the network's records with the golden network's ``x_q``/``y``/``acc``.
        cosim: names of the layers co-simulated (linear, conv, matmul; the others run on the
            host).
        values: chained outputs so far (``"input"``: the network input).
        stats: per layer evaluated, :func:`diff_stats` of its chained output vs golden.
        broken: the layer whose RTL produced no output (the chain ends there), else ``None``.
    """

    sim: str
    records: Sequence[LayerRecord]
    cosim: set[str]
    values: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    broken: str | None = None
    _pending: set[str] = field(default_factory=set)
    _todo: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._todo = list(range(len(self.records)))
        first = next((r for r in self.records if NETWORK_INPUT in r.inputs), None)
        if first is not None and first.x_q is not None:
            self.values[NETWORK_INPUT] = np.asarray(first.x_q, dtype=np.int64)

    @property
    def done(self) -> bool:
        """Every layer evaluated, or the chain broke."""
        return self.broken is not None or (not self._todo and not self._pending)

    def _inputs(self, rec: LayerRecord) -> list[np.ndarray] | None:
        if any(src not in self.values for src in rec.inputs):
            return None
        return [self.values[src] for src in rec.inputs]

    def _store(self, rec: LayerRecord, y: np.ndarray) -> None:
        self.values[rec.name] = np.asarray(y, dtype=np.int64)
        self.stats[rec.name] = diff_stats(self.values[rec.name], rec.y)

    def advance(self) -> list[LayerRecord]:
        """Evaluate every host-side layer whose inputs are known; return the co-simulated layers
        now ready, in order, as records carrying their chained input and the golden result of
        that input (they become pending until :meth:`feed`)."""
        if self.broken is not None:
            return []
        ready = []
        left = []
        for i in self._todo:
            rec = self.records[i]
            args = self._inputs(rec)
            if args is None:
                left.append(i)
                continue
            if rec.name in self.cosim:
                ready.append(self._item(rec, args))
                self._pending.add(rec.name)
                continue
            self._store(rec, run_layer(rec, *args).y)
        self._todo = left
        if not ready and self._todo and not self._pending:  # golden checked the names first
            raise RecordError(f"chain: no input for layers "
                              f"{', '.join(self.records[i].name for i in left)}")
        return ready

    def _item(self, rec: LayerRecord, args: list[np.ndarray]) -> LayerRecord:
        """``rec`` on the chained inputs ``args`` (a matmul's ``(a, b)``, else ``x``): the golden
        network's results when they are the golden inputs, else the golden model's on them."""
        x = args[0]
        b = args[1] if rec.op is OpKind.MATMUL else None
        same_b = b is None or (rec.b_q is not None and np.array_equal(b, rec.b_q))
        if rec.x_q is not None and np.array_equal(x, rec.x_q) and same_b:
            return rec
        out = run_layer(rec, *(args[:2] if b is not None else args[:1]))
        return rec.replace(x_q=x.copy(), b_q=None if b is None else b.copy(), y=out.y,
                           acc=None if out.acc is None else out.acc)

    def feed(self, name: str, y: np.ndarray | None) -> None:
        """The RTL output of pending layer ``name`` (``None``: it produced none; the chain
        ends there)."""
        self._pending.discard(name)
        rec = next(r for r in self.records if r.name == name)
        if y is None:
            self.broken = name
            return
        self._store(rec, y)

    def first_divergence(self) -> str | None:
        """The first layer (execution order) whose chained output differs from golden."""
        return next((r.name for r in self.records
                     if self.stats.get(r.name, {}).get("mismatch")), None)


def chain_summary(chains: Sequence[Chain]) -> dict[str, Any]:
    """The run-level chain part of the results: per simulator the first divergence, the layers
    compared and diverged, where the chain broke, and the network output's difference."""
    out: dict[str, Any] = {}
    for ch in chains:
        last = ch.records[-1].name if ch.records else None
        out[ch.sim] = {
            "first_divergence": ch.first_divergence(),
            "layers": len(ch.stats),
            "diverged": sum(1 for s in ch.stats.values() if s.get("mismatch")),
            "broken": ch.broken,
            "output": ch.stats.get(last) if last else None,
            "output_layer": last,
        }
    return out
