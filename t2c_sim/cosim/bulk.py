"""Host-side packing and dump parsing of a whole layer at once (the default path).

The harness loads one set of memory files per accelerator run and dumps one pair per tile, so a
large layer means thousands of small files. Packing them run by run costs a few milliseconds of
NumPy calls per run, more than the simulator needs for a run on a small array. Here each layer's
words are packed and turned into ``$readmemh`` text ONCE (per conv group): every activation row
block, every weight column block, every channel-parameter word; a run's file is then a slice of
those lines (row blocks ``q0 .. q0+qr`` x the chunk's groups), written with one system call.
Likewise the dumps of all tiles of one width are read, joined and parsed in one call
(:func:`t2c_sim.export.hexfile.parse_memh`).

The files are byte for byte those of :func:`t2c_sim.cosim.accel.prepare`'s per-run writer
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
from t2c_sim.export import iface
from t2c_sim.export.hexfile import memh_chars, pack_limbs, parse_memh
from t2c_sim.numerics import check_range

__all__ = ["aligned", "LayerText", "layer_text", "write_run", "read_dumps"]


def aligned(gm: Any, tiles: Sequence[Tile]) -> bool:
    """Every tile starts on a row block and (within its group) a column block boundary."""
    hw, plan = gm.hw, gm.plan
    return all(t.p0 % hw.rows == 0 and (t.c0 - t.group * plan.c_per_group) % hw.cols == 0 for t in tiles)


class LayerText:
    """The ``$readmemh`` lines of one layer, per conv group (a matmul: per leading index):
    ``act[g]`` is ``[Q, G, D+1]`` (row block, K-group), ``wgt[g]`` ``[QC, G, D+1]`` (column
    block, K-group), ``ch[g]`` ``[QC, D+1]``, or with per-row parameters ``[P, QC, D+1]`` (the rp
    words: row, column block)."""

    def __init__(self) -> None:
        self.act: list[np.ndarray] = []
        self.wgt: list[np.ndarray] = []
        self.ch: list[np.ndarray] = []


def layer_text(gm: Any) -> LayerText:
    """Pack every word of the layer of ``gm`` (a :class:`t2c_sim.cosim.accel.Gemm`) once, with
    the word layouts of :mod:`t2c_sim.export.iface` (its field functions applied to a whole
    conv group: all row blocks, all column blocks, every K-group).

    Raises:
        NumericsError: An operand does not fit its field (checked once for the whole layer,
            naming it as the per-run packer does).
    """
    rec, hw, plan = gm.rec, gm.hw, gm.plan
    m, n, g, cpg = hw.m, hw.n, plan.g, plan.c_per_group
    check_range(gm.cols, hw.a_bits, rec.a_signed, f"layer {rec.name} activations")
    check_range(gm.values, hw.w_bits, gm.w_signed, f"layer {rec.name} weights")
    check_range(gm.indices, hw.idx_bits, False, f"layer {rec.name} indices")
    ww = iface.widths(hw)
    out = LayerText()
    for grp in range(plan.groups):
        f, w = iface.act_fields(gm.cols[grp].reshape(-1, g, m), hw)        # [Q*G, M*ROWS]
        out.act.append(memh_chars(pack_limbs(f, w), ww.act, f"layer {rec.name}")
                       .reshape(-1, g, _line(ww.act)))
        sl = slice(grp * cpg, (grp + 1) * cpg)
        f, w = iface.wgt_fields(gm.values[sl].reshape(cpg, g, n), gm.indices[sl].reshape(cpg, g, n),
                                hw)                                          # [QC*G, COLS*2N]
        out.wgt.append(memh_chars(pack_limbs(f, w), ww.wgt, f"layer {rec.name}")
                       .reshape(-1, g, _line(ww.wgt)))
        bias, m0, sh = (a[..., sl] for a in gm.params)      # [cpg] or per row [P, cpg]
        if bias.ndim == 2:
            f, w = iface.rp_fields(bias, m0, sh, hw, f"layer {rec.name}")   # [P*QC, ...]
            out.ch.append(memh_chars(pack_limbs(f, w), ww.ch, f"layer {rec.name}")
                          .reshape(bias.shape[0], -1, _line(ww.ch)))
        else:
            f, w = iface.ch_fields(bias, m0, sh, hw, f"layer {rec.name}")
            out.ch.append(memh_chars(pack_limbs(f, w), ww.ch, f"layer {rec.name}"))  # [QC, ...]
    return out


def _line(width: int) -> int:
    """Characters of one ``$readmemh`` line of ``width``-bit words (digits and newline)."""
    return max(1, -(-width // 4)) + 1


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
        chs = text.ch[t.group]
        _write(d / f"t{gi}_ch.hex", (chs[c0:c0 + qc] if chs.ndim == 2
                                     else chs[t.p0:t.p0 + t.rows, c0:c0 + qc]).tobytes())
    return qr * gs, qc * gs if wgt else 0


def read_dumps(gm: Any, run_dir: Path, tiles: Sequence[Tile], last_runs: Sequence[int],
               name: str, bits: int) -> np.ndarray | None:
    """The ``t<run>_<name>.hex`` dumps of ``tiles`` (their last runs) parsed at once into the
    layer's ``[P, C_out]`` (zeros outside the tiles); ``None`` when a dump is missing, short or
    not clean hex (the caller's per-tile reader names the problem)."""
    hw = gm.hw
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
    out = np.zeros((gm.plan.p, gm.plan.groups * gm.plan.c_per_group), dtype=np.int64)
    o = 0
    for t, k in zip(tiles, counts):
        cb = k // t.rows
        out[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = \
            words[o:o + k].reshape(t.rows, cb * lanes)[:, :t.cols]
        o += k
    return out
