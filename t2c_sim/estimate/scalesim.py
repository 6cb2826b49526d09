"""SCALE-Sim (v2) topology CSV files -> layer-record shapes, and cycle comparison helpers.

SCALE-Sim describes a workload as a CSV with one header line and one layer per line, each
line ending in a comma. Two formats (scalesim-project/scale-sim-v2, ``topology_utils.py``):

- **conv** (default)::

      Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
      Conv1, 224, 224, 7, 7, 3, 64, 2,

  An optional 9th number is a separate column stride (``Stride height, Stride width``); the
  sparsity variant adds an ``N:M`` column (``Sparsity``). IFMAP sizes already include any
  padding: the output is ``(H - KH) // stride + 1`` (SCALE-Sim's ``ceil((H - KH + s) / s)``).
- **GEMM (M, N, K)**::

      Layer Name, M, N, K,
      fc1, 256, 128, 256,

  SCALE-Sim turns it into a conv with IFMAP ``M x K``, filter ``1 x K``, 1 channel and ``N``
  filters: ``M`` output rows, ``N`` output channels, reduction ``K``. Here it becomes a linear
  layer with ``rows = M``, ``c_in = K``, ``c_out = N``.

The format is detected from the header (a header whose fields after the name are ``M, N, K``
is GEMM). Depth-wise rows (``DP`` in the name) are expanded by SCALE-Sim into one layer per
channel; here they are refused with a clear error (use a grouped conv record instead).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from t2c_sim.config import OpKind, SparsitySpec
from t2c_sim.errors import ConfigError
from t2c_sim.files import atomic_write_text
from t2c_sim.limits import MAX_DIM, MAX_RECORD_ELEMENTS
from t2c_sim.readers import read_text
from t2c_sim.record import LayerRecord

__all__ = ["TopoLayer", "read_topology", "topo_to_record", "topology_records",
           "compare_cycles", "write_topology"]


@dataclass(frozen=True)
class TopoLayer:
    """One SCALE-Sim topology row in conv form (a GEMM row has ``gemm=True``)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filt_h: int
    filt_w: int
    channels: int
    num_filt: int
    stride_h: int = 1
    stride_w: int = 1
    sparsity: str | None = None
    gemm: bool = False

    @property
    def ofmap(self) -> tuple[int, int]:
        """Output size as SCALE-Sim computes it (no padding)."""
        return ((self.ifmap_h - self.filt_h) // self.stride_h + 1,
                (self.ifmap_w - self.filt_w) // self.stride_w + 1)

    @property
    def macs(self) -> int:
        oh, ow = self.ofmap
        return oh * ow * self.filt_h * self.filt_w * self.channels * self.num_filt


def _cells(line: list[str]) -> list[str]:
    cells = [c.strip() for c in line]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


_INT = re.compile(r"[+-]?[0-9]+")


def _int(text: str) -> int:
    """A plain decimal integer (``int()`` would also take ``1_000`` and non-ASCII digits)."""
    if not _INT.fullmatch(text.strip()):
        raise ValueError(text)
    return int(text)


def read_topology(path: str | Path) -> list[TopoLayer]:
    """Parse a SCALE-Sim topology CSV (conv or M,N,K form); errors name the file and line.

    Read at the edge: at most :data:`~t2c_sim.limits.MAX_TEXT_BYTES`, UTF-8 text, every number
    an integer in ``[1, MAX_DIM]``, a GEMM's ``M x K`` input at most
    :data:`~t2c_sim.limits.MAX_RECORD_ELEMENTS` (its shape-only record holds it).
    """
    p = Path(path)
    text = read_text(p, "topology file")
    try:
        rows = [(i, _cells(r)) for i, r in enumerate(csv.reader(text.splitlines()), 1)]
    except csv.Error as e:
        raise ConfigError(f"not a CSV file ({e})", file=str(p)) from None
    rows = [(i, r) for i, r in rows if r]
    if not rows:
        raise ConfigError("empty topology file", file=str(p))
    header = [h.lower().replace(" ", "") for h in rows[0][1]]
    gemm = header[1:4] == ["m", "n", "k"]
    out: list[TopoLayer] = []
    for ln, r in rows[1:]:
        name = r[0]
        sparsity = None
        nums = r[1:]
        if nums and ":" in nums[-1]:
            sparsity = nums.pop()
            try:
                SparsitySpec.parse(sparsity)
            except ConfigError as e:
                raise ConfigError(e.detail, file=str(p), line=ln, key="Sparsity") from None
        try:
            vals = [_int(v) for v in nums]
        except ValueError:
            raise ConfigError(f"expected integers after the layer name, got {nums}",
                              file=str(p), line=ln) from None
        for v in vals:
            if v > MAX_DIM:
                raise ConfigError(f"{v} is larger than the limit {MAX_DIM} (2^24) for a "
                                  "dimension", file=str(p), line=ln)
        if gemm:
            if len(vals) != 3:
                raise ConfigError(f"a GEMM row needs M, N, K, got {len(vals)} numbers",
                                  file=str(p), line=ln)
            m_, n_, k_ = vals
            if m_ > 0 and k_ > 0 and m_ * k_ > MAX_RECORD_ELEMENTS:
                raise ConfigError(f"M x K = {m_} x {k_} input elements is more than the limit "
                                  f"{MAX_RECORD_ELEMENTS} (2^26)", file=str(p), line=ln)
            t = TopoLayer(name, m_, k_, 1, k_, 1, n_, 1, 1, sparsity, gemm=True)
        else:
            if len(vals) not in (7, 8):
                raise ConfigError("a conv row needs IFMAP H, W, filter H, W, channels, filters, "
                                  f"stride [, stride W]; got {len(vals)} numbers",
                                  file=str(p), line=ln)
            if "DP" in name:
                raise ConfigError("depth-wise rows ('DP' in the name) are not supported",
                                  file=str(p), line=ln)
            sh = vals[6]
            sw = vals[7] if len(vals) == 8 else sh
            t = TopoLayer(name, *vals[:6], sh, sw, sparsity)
        if min(t.ifmap_h, t.ifmap_w, t.filt_h, t.filt_w, t.channels, t.num_filt,
               t.stride_h, t.stride_w) < 1:
            raise ConfigError("every dimension must be >= 1", file=str(p), line=ln)
        if t.filt_h > t.ifmap_h or t.filt_w > t.ifmap_w:
            raise ConfigError("filter larger than the IFMAP", file=str(p), line=ln)
        out.append(t)
    if not out:
        raise ConfigError("no layers after the header", file=str(p))
    return out


def topo_to_record(t: TopoLayer, *, nm: SparsitySpec | None = None, a_bits: int = 8,
                   w_bits: int = 8, acc_bits: int = 32) -> LayerRecord:
    """A shape-only :class:`LayerRecord` for ``t`` (no weights).

    A GEMM row gets a zero ``x_q[M, K]`` so that its row count ``M`` is part of the record
    (a conv's rows follow from its shape, batch 1).

    ``nm`` overrides the row's own sparsity column; dense is ``1:1``.
    """
    sp = nm or SparsitySpec.parse(t.sparsity)
    common = dict(a_bits=a_bits, w_bits=w_bits, acc_bits=acc_bits, n=sp.n, m=sp.m,
                  meta={"source": "scalesim-topology", "topology_row": t.name})
    if t.gemm:
        return LayerRecord(name=t.name, op=OpKind.LINEAR, c_in=t.filt_w, c_out=t.num_filt,
                           x_q=np.zeros((t.ifmap_h, t.filt_w), dtype=np.int64), **common)
    return LayerRecord(name=t.name, op=OpKind.CONV2D, c_in=t.channels, c_out=t.num_filt,
                       kh=t.filt_h, kw=t.filt_w, stride=(t.stride_h, t.stride_w),
                       padding=(0, 0), h=t.ifmap_h, w=t.ifmap_w, **common)


def topology_records(path: str | Path, *, nm: SparsitySpec | None = None) -> list[LayerRecord]:
    """:func:`read_topology` + :func:`topo_to_record` for every row."""
    return [topo_to_record(t, nm=nm) for t in read_topology(path)]


def write_topology(path: str | Path, layers: Sequence[TopoLayer]) -> Path:
    """Write ``layers`` in SCALE-Sim's conv format (9 columns, trailing commas)."""
    head = ("Layer name, IFMAP height, IFMAP width, Filter height, Filter width, Channels, "
            "Num filter, Stride height, Stride width,\n")
    lines = [head] + [f"{t.name}, {t.ifmap_h}, {t.ifmap_w}, {t.filt_h}, {t.filt_w}, "
                      f"{t.channels}, {t.num_filt}, {t.stride_h}, {t.stride_w},\n"
                      for t in layers]
    return atomic_write_text(path, "".join(lines))


def compare_cycles(ours: Mapping[str, int], theirs: Mapping[str, int]
                   ) -> list[dict[str, object]]:
    """Per layer (in ``ours`` order): both cycle counts and ``ratio = ours / theirs``."""
    rows: list[dict[str, object]] = []
    for name, c in ours.items():
        s = theirs.get(name)
        rows.append({"layer": name, "ours": int(c), "scalesim": None if s is None else int(s),
                     "ratio": (c / s) if s else None})
    return rows
