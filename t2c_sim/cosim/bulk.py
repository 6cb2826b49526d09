"""Host-side packing and dump parsing of a whole layer at once (the default path).

The harness loads one set of memory files per accelerator run and dumps one pair per tile, so a
large layer means thousands of small files. Packing them run by run costs a few milliseconds of
NumPy calls per run, more than the simulator needs for a run on a small array. Here each layer's
words are packed and turned into ``$readmemh`` text ONCE (per conv group): every activation row
block, every weight column block, every channel-parameter word; a run's file is then a slice of
those lines (row blocks ``q0 .. q0+qr`` x the chunk's groups), written with one system call.
Likewise the dumps of all tiles of one width are read, joined and parsed in one call
(:func:`t2c_sim.export.hexfile.parse_memh`).

The files are byte for byte those of :func:`t2c_sim.cosim.run.prepare`'s per-run writer
(``tests/test_bulk.py``), except that a run whose weight (or channel) memory already holds its
words, because the run before it used the same column block and K-chunk, loads none (its plan
says 0 words; the harness leaves that memory as it was); a tile that does not start on a row
block or column block boundary (an array whose output scratchpad holds fewer rows than the
array has, or odd channel tiles) and any dump that does not parse cleanly (X/Z, a missing or
short file) go through the per-run code, which names the run, word, row and channel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import RecordError
from t2c_sim.estimate import Tile
from t2c_sim.export.hexfile import memh_chars, pack_limbs, parse_memh
from t2c_sim.numerics import check_range

__all__ = ["aligned", "LayerText", "layer_text", "write_run", "read_dumps"]


def aligned(gm: Any, tiles: Sequence[Tile]) -> bool:
    """Every tile starts on a row block and (within its group) a column block boundary."""
    hw, plan = gm.hw, gm.plan
    return all(t.p0 % hw.rows == 0 and (t.c0 - t.group * plan.c_per_group) % hw.cols == 0 for t in tiles)


class LayerText:
    """The ``$readmemh`` lines of one layer, per conv group: ``act[g]`` is ``[Q, G, D+1]``
    (row block, K-group), ``wgt[g]`` ``[QC, G, D+1]`` (column block, K-group), ``ch[g]``
    ``[QC, D+1]``."""

    def __init__(self) -> None:
        self.act: list[np.ndarray] = []
        self.wgt: list[np.ndarray] = []
        self.ch: list[np.ndarray] = []


def _blocks(a: np.ndarray, lanes: int) -> tuple[np.ndarray, int]:
    """``a[items, ...]`` zero-padded to whole blocks of ``lanes`` items; the block count."""
    q = -(-a.shape[0] // lanes)
    out = np.zeros((q * lanes, *a.shape[1:]), dtype=np.int64)
    out[:a.shape[0]] = a
    return out, q


def layer_text(gm: Any, ch_bits: tuple[int, int, int]) -> LayerText:
    """Pack every word of the layer of ``gm`` (a :class:`t2c_sim.cosim.run.Gemm`) once.

    Word layouts as in ``rtl/t2c_accel_top.v`` (and :func:`t2c_sim.cosim.run.prepare`): act word
    ``(q, g)`` holds activation ``(row q*ROWS + r, k = g*M + i)`` at field ``i*ROWS + r``; wgt
    word ``(q, g)`` holds channel ``q*COLS + c``'s N values then N indices at field block ``c``;
    ch word ``q`` the COLS biases, COLS ``M0``, COLS shifts (``ch_bits`` their widths).

    Raises:
        NumericsError: An operand does not fit its field (checked once for the whole layer,
            naming it as the per-run writer does).
    """
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    m, n, rows, cols = hw.m, hw.n, hw.rows, hw.cols
    check_range(gm.cols, hw.a_bits, rec.a_signed, f"layer {rec.name} activations")
    check_range(gm.values, hw.w_bits, True, f"layer {rec.name} weights")
    check_range(gm.indices, hw.idx_bits, False, f"layer {rec.name} indices")
    bias, m0, sh = rec.bias_eff, rec.M0, rec.sh
    check_range(bias, ch_bits[0], True, f"layer {rec.name} bias_eff")
    check_range(m0, ch_bits[1], False, f"layer {rec.name} M0")
    check_range(sh, ch_bits[2], False, f"layer {rec.name} sh")
    g = plan.g
    aw = np.full(m * rows, hw.a_bits)
    ww = np.tile([hw.w_bits] * n + [hw.idx_bits] * n, cols)
    cw = np.repeat(list(ch_bits), cols)
    out = LayerText()
    for grp in range(plan.groups):
        act, q = _blocks(gm.cols[grp].reshape(-1, g, m), rows)           # [Q*ROWS, G, M]
        f = act.reshape(q, rows, g, m).transpose(0, 2, 3, 1).reshape(q * g, m * rows)
        out.act.append(memh_chars(pack_limbs(f, aw), int(aw.sum()), f"layer {rec.name}")
                       .reshape(q, g, -1))
        sl = slice(grp * plan.c_per_group, (grp + 1) * plan.c_per_group)
        vi = np.concatenate([gm.values[sl].reshape(plan.c_per_group, g, n),
                             gm.indices[sl].reshape(plan.c_per_group, g, n)], axis=2)
        wb, qc = _blocks(vi, cols)                                          # [QC*COLS, G, 2N]
        f = wb.reshape(qc, cols, g, 2 * n).transpose(0, 2, 1, 3).reshape(qc * g, cols * 2 * n)
        out.wgt.append(memh_chars(pack_limbs(f, ww), int(ww.sum()), f"layer {rec.name}")
                       .reshape(qc, g, -1))
        cb, _ = _blocks(np.stack([bias[sl], m0[sl], sh[sl]], axis=1), cols)  # [QC*COLS, 3]
        f = cb.reshape(qc, cols, 3).transpose(0, 2, 1).reshape(qc, 3 * cols)
        out.ch.append(memh_chars(pack_limbs(f, cw), int(cw.sum()), f"layer {rec.name}"))
    return out


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_run(text: LayerText, gm: Any, t: Tile, ci: int, d: Path, gi: int, *,
              wgt: bool = True, ch: bool = True) -> tuple[int, int]:
    """Write run ``(t, chunk ci)``'s memory files (global run ``gi``) from the layer's text;
    returns ``(act words, wgt words)``. The channel words go with the first chunk only;
    ``wgt``/``ch`` False: that memory already holds the run's words (no file)."""
    hw, plan = gm.hw, gm.plan
    g0, gs = plan.chunks[ci]
    q0, qr = t.p0 // hw.rows, -(-t.rows // hw.rows)
    c0, qc = (t.c0 - t.group * plan.c_per_group) // hw.cols, -(-t.cols // hw.cols)
    _write(d / f"t{gi}_act.hex", text.act[t.group][q0:q0 + qr, g0:g0 + gs].tobytes())
    if wgt:
        _write(d / f"t{gi}_wgt.hex", text.wgt[t.group][c0:c0 + qc, g0:g0 + gs].tobytes())
    if ci == 0 and ch:
        _write(d / f"t{gi}_ch.hex", text.ch[t.group][c0:c0 + qc].tobytes())
    return qr * gs, qc * gs if wgt else 0


def read_dumps(gm: Any, run_dir: Path, tiles: Sequence[Tile], last_runs: Sequence[int],
               name: str, bits: int) -> np.ndarray | None:
    """The ``t<run>_<name>.hex`` dumps of ``tiles`` (their last runs) parsed at once into the
    layer's ``[P, C_out]`` (zeros outside the tiles); ``None`` when a dump is missing, short or
    not clean hex (the caller's per-tile reader names the problem)."""
    hw, rec = gm.hw, gm.rec
    lanes = hw.cols
    digits = -(-lanes * bits // 4)
    parts, counts = [], []
    for t, gi in zip(tiles, last_runs):
        want = t.rows * -(-t.cols // lanes)
        try:
            with open(run_dir / f"t{gi}_{name}.hex", "rb") as f:
                raw = f.read()
        except OSError:
            return None
        if len(raw) != want * (digits + 1):
            return None
        parts.append(raw)
        counts.append(want)
    try:
        words = parse_memh(b"".join(parts), [bits] * lanes, True, sum(counts), name)
    except RecordError:
        return None
    out = np.zeros((gm.plan.p, rec.c_out), dtype=np.int64)
    o = 0
    for t, k in zip(tiles, counts):
        cb = k // t.rows
        out[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = \
            words[o:o + k].reshape(t.rows, cb * lanes)[:, :t.cols]
        o += k
    return out
