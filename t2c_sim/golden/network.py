"""Run a list of integer layer records as a network, keeping every intermediate.

Records execute in list order. Each record's ``inputs`` names its producers: ``"input"`` is
the network input, any other name must be an earlier record's ``name``. The trace keeps, per
layer, the input arrays it saw and its :class:`~t2c_sim.golden.layers.LayerOutput`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from t2c_sim.errors import RecordError
from t2c_sim.golden.layers import LayerOutput, run_layer
from t2c_sim.record import LayerRecord

__all__ = ["NetworkTrace", "run_network", "attach_results", "NETWORK_INPUT"]

log = logging.getLogger(__name__)

NETWORK_INPUT = "input"


@dataclass
class NetworkTrace:
    """Everything a golden network run produced.

    Attributes:
        x: the network input.
        order: layer names in execution order.
        inputs: per layer, the tuple of input arrays it received.
        outputs: per layer, its :class:`LayerOutput` (``acc`` may be ``None``).
    """

    x: np.ndarray
    order: list[str] = field(default_factory=list)
    inputs: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)
    outputs: dict[str, LayerOutput] = field(default_factory=dict)

    def y(self, name: str) -> np.ndarray:
        """Output of layer ``name`` (``"input"`` gives the network input)."""
        if name == NETWORK_INPUT:
            return self.x
        if name not in self.outputs:
            raise RecordError(f"trace: no layer named {name!r}")
        return self.outputs[name].y

    def acc(self, name: str) -> np.ndarray | None:
        """Wrapped accumulators of layer ``name`` (``None`` for ops without an accumulator)."""
        if name not in self.outputs:
            raise RecordError(f"trace: no layer named {name!r}")
        return self.outputs[name].acc

    @property
    def output(self) -> np.ndarray:
        """Output of the last layer (the network input when there are no layers)."""
        return self.outputs[self.order[-1]].y if self.order else self.x


def run_network(records: Sequence[LayerRecord], x: np.ndarray, nm_mode: str = "fast",
                workers: int | None = None) -> NetworkTrace:
    """Execute ``records`` in order on the network input ``x``; return the full trace.

    Raises :class:`RecordError` naming the layer when an input name is unknown (or refers to a
    later layer), a name is used twice, or a shape does not match what the layer expects.
    ``nm_mode`` and ``workers`` are passed to :func:`~t2c_sim.golden.layers.run_layer`.
    """
    trace = NetworkTrace(x=np.asarray(x, dtype=np.int64))
    for rec in records:
        if rec.name == NETWORK_INPUT or rec.name in trace.outputs:
            raise RecordError(f"layer {rec.name}: duplicate layer name")
        args = []
        for src in rec.inputs:
            if src != NETWORK_INPUT and src not in trace.outputs:
                raise RecordError(f"layer {rec.name}: unknown input {src!r} (not 'input' and not "
                                  f"an earlier layer)")
            args.append(trace.y(src))
        try:
            out = run_layer(rec, *args, nm_mode=nm_mode, workers=workers)
        except RecordError as e:
            msg = str(e)
            if f"layer {rec.name}" not in msg:
                msg = f"layer {rec.name}: {msg}"
            raise RecordError(f"{msg} (inputs {', '.join(rec.inputs)}: shapes "
                              f"{', '.join(str(a.shape) for a in args)})") from None
        log.debug("golden %s %s -> %s", rec.name, rec.op.value, out.y.shape)
        trace.order.append(rec.name)
        trace.inputs[rec.name] = tuple(args)
        trace.outputs[rec.name] = out
    return trace


def attach_results(records: Sequence[LayerRecord], trace: NetworkTrace) -> list[LayerRecord]:
    """Copies of ``records`` with ``x_q`` (first input seen), ``b_q`` (second input, for two-input
    ops; a concat of more inputs keeps only ``x_q``), ``acc`` and ``y`` from ``trace``.

    The originals are not modified. Raises :class:`RecordError` for a record the trace lacks.
    """
    out = []
    for rec in records:
        if rec.name not in trace.outputs:
            raise RecordError(f"layer {rec.name}: not in the trace")
        res = trace.outputs[rec.name]
        ins = trace.inputs[rec.name]
        out.append(rec.replace(x_q=ins[0].copy(), b_q=ins[1].copy() if len(ins) == 2 else None,
                               acc=None if res.acc is None else res.acc.copy(),
                               y=res.y.copy()))
    return out
