"""Compare a layer's outputs with the golden model and localize the first mismatch; compare its
measured cycles with the DUT's model.

Outputs are compared as integers (``np.array_equal`` semantics, never a tolerance). A
:class:`Mismatch` names the layer, the tile that produced the output (when tiles are given),
the flattened GEMM row ``p`` (and ``(b, oh, ow)`` for conv), the channel, the expected and actual
values and accumulators, and how many outputs differ.

:func:`cycle_mismatch` returns the first unit (tile, frame, job) whose measured cycles differ
from the DUT's exact model (a :class:`CycleMismatch` with both numbers), or whose DUT-reported
count differs from the framework's measurement; a DUT that declares no exact model, or a run
under back-pressure, is only compared on the DUT's own count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from t2c_sim.config import OpKind
from t2c_sim.errors import MismatchError
from t2c_sim.numerics import as_int64
from t2c_sim.record import LayerRecord

__all__ = ["Mismatch", "CycleMismatch", "compare", "find_tile", "cycle_mismatch", "gemm_place"]


@dataclass(frozen=True)
class Mismatch:
    """The first differing output of a layer (row-major over ``[P, C_out]``) and a count.

    Attributes:
        layer: Layer name.
        count: Number of differing outputs.
        total: Number of outputs compared.
        row: Flattened GEMM row ``p`` of the first mismatch.
        position: ``(b, oh, ow)`` for conv, the leading index of ``x`` for linear.
        channel: Output channel.
        expected, actual: The outputs ``y``.
        tile: Index of the tile that computed the output, if tiles were given.
        acc_expected, acc_actual: Accumulators at that output, if given.
    """

    layer: str
    count: int
    total: int
    row: int
    position: tuple[int, ...]
    channel: int
    expected: int
    actual: int
    tile: int | None = None
    acc_expected: int | None = None
    acc_actual: int | None = None

    def __str__(self) -> str:
        where = f"tile {self.tile}, " if self.tile is not None else ""
        pos = ",".join(str(v) for v in self.position)
        acc = ""
        if self.acc_expected is not None or self.acc_actual is not None:
            acc = f" (acc expected {self.acc_expected}, got {self.acc_actual})"
        return (f"layer {self.layer}: {self.count}/{self.total} outputs differ; first at "
                f"{where}row {self.row} [{pos}], channel {self.channel}: expected "
                f"{self.expected}, got {self.actual}{acc}")


def find_tile(tiles: Sequence[Any] | None, row: int, channel: int) -> int | None:
    """Index of the tile (objects with ``index, p0, rows, c0, cols``) holding ``(row, channel)``."""
    for t in tiles or ():
        if t.p0 <= row < t.p0 + t.rows and t.c0 <= channel < t.c0 + t.cols:
            return int(t.index)
    return None


def gemm_place(rec: LayerRecord, shape: tuple[int, ...], row: int, channel: int
               ) -> tuple[int, int]:
    """``(GEMM row, GEMM column)`` of output ``(row, channel)`` (row-major over ``[..., C_out]``).

    The same for linear and conv layers; a matmul ``[*lead, P, C]`` runs as one GEMM of ``P``
    rows and ``lead x C`` columns (leading index ``g`` at columns ``g*C ..``), so its flattened
    row ``g*P + p`` is GEMM row ``p``, column ``g*C + channel``.
    """
    if rec.op is OpKind.MATMUL and len(shape) >= 2:
        p = int(shape[-2])
        return row % p, (row // p) * rec.c_out + channel
    return row, channel


def _rows_view(rec: LayerRecord, a: np.ndarray, name: str) -> np.ndarray:
    a = as_int64(a, name)
    if a.ndim < 1 or a.shape[-1] != rec.c_out:
        raise MismatchError(f"layer {rec.name}: {name} has shape {a.shape}, expected [..., "
                            f"{rec.c_out}]")
    return a.reshape(-1, rec.c_out)


def compare(rec: LayerRecord, expected_y: Any, actual_y: Any, *,
            tiles: Sequence[Any] | None = None, acc_expected: Any = None,
            acc_actual: Any = None) -> Mismatch | None:
    """Return ``None`` if ``actual_y`` equals ``expected_y`` exactly, else the first :class:`Mismatch`.

    Args:
        rec: The layer (name, op and shapes for localization).
        expected_y, actual_y: Integer outputs of the same shape ``[..., C_out]``.
        tiles: Tiles (``index, p0, rows, c0, cols``) to name the one that computed the output.
        acc_expected, acc_actual: Accumulators of the same shape, reported at the mismatch.

    Raises:
        MismatchError: The shapes differ (names both).
    """
    exp = as_int64(expected_y, "expected_y")
    act = as_int64(actual_y, "actual_y")
    if exp.shape != act.shape:
        raise MismatchError(f"layer {rec.name}: output shape {act.shape} != expected {exp.shape}")
    if np.array_equal(exp, act):
        return None
    e2, a2 = _rows_view(rec, exp, "expected_y"), _rows_view(rec, act, "actual_y")
    diff = e2 != a2
    p, c = (int(v) for v in np.argwhere(diff)[0])
    lead = exp.shape[:-1]
    position = tuple(int(v) for v in np.unravel_index(p, lead)) if lead else ()
    if rec.op is OpKind.CONV2D and len(lead) != 3:
        position = (p,)

    def acc_at(a: Any, name: str) -> int | None:
        if a is None:
            return None
        return int(_rows_view(rec, np.asarray(a), name)[p, c])

    return Mismatch(layer=rec.name, count=int(diff.sum()), total=int(diff.size), row=p,
                    position=position, channel=c, expected=int(e2[p, c]), actual=int(a2[p, c]),
                    tile=find_tile(tiles, *gemm_place(rec, exp.shape, p, c)),
                    acc_expected=acc_at(acc_expected, "acc_expected"),
                    acc_actual=acc_at(acc_actual, "acc_actual"))


@dataclass(frozen=True)
class CycleMismatch:
    """A unit whose cycles differ: measured vs the DUT's model, or vs the DUT's own counter.

    Attributes:
        layer: Layer name.
        tile: Index of the unit (tile of the plan, stream frame, AXI job).
        measured: Cycles the framework measured (our accelerator: its counter per run).
        predicted: Cycles the DUT's model predicts (``kind == "model"``) or the DUT's own
            count (``kind == "counter"``).
        kind: ``model`` or ``counter``.
        chunks_measured, chunks_predicted: Per K-chunk (or run) figures, when a unit has several.
    """

    layer: str
    tile: int
    measured: int
    predicted: int
    kind: str = "model"
    chunks_measured: tuple[int, ...] = ()
    chunks_predicted: tuple[int, ...] = ()

    def __str__(self) -> str:
        what = ("the DUT's cycle model predicts" if self.kind == "model"
                else "the DUT's own counter says")
        runs = ""
        if len(self.chunks_measured) > 1:
            runs = (f" (per run: {list(self.chunks_measured)} vs "
                    f"{list(self.chunks_predicted)})")
        return (f"layer {self.layer}: cycles differ at tile {self.tile}: {self.measured} "
                f"measured, {what} {self.predicted}{runs}")


def cycle_mismatch(res: Any) -> CycleMismatch | None:
    """The first unit of a co-simulated layer (``res.tiles``) whose cycles differ, else ``None``.

    ``measured != predicted`` fails when ``res.check_cycles`` (the DUT declares an exact model
    and no back-pressure was applied); ``measured != counter`` (the DUT reports its own count)
    fails always.
    """
    for t in getattr(res, "tiles", None) or ():
        counter = getattr(t, "counter", None)
        if counter is not None and int(counter) != int(t.cycles_measured):
            return CycleMismatch(res.layer, int(t.index), int(t.cycles_measured), int(counter),
                                 "counter")
        if not getattr(res, "check_cycles", True) or t.cycles_predicted is None:
            continue
        cm = tuple(int(v) for v in (t.chunks_measured or (t.cycles_measured,)))
        cp = tuple(int(v) for v in (t.chunks_predicted or (t.cycles_predicted,)))
        if cm != cp or int(t.cycles_measured) != int(t.cycles_predicted):
            return CycleMismatch(res.layer, int(t.index), int(t.cycles_measured),
                                 int(t.cycles_predicted), "model", cm, cp)
    return None
