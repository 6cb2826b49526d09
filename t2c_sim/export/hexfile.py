"""``$readmemh`` files: the single place that decides bit packing and lane order.

A memory word packs ``lanes`` fields of ``bits`` bits each; **lane 0 is in the least
significant bits** (``word = sum(field[i] << (i * bits))``), each field in two's complement
when signed. A hex file has one word per line, ``ceil(lanes * bits / 4)`` hex digits, no
address markers, first line = address 0. Example: lanes ``[-1, 2]`` at 4 bits -> ``0x2F``.
The RTL slices lane ``i`` as ``word[i*BITS +: BITS]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2c_sim.errors import RecordError
from t2c_sim.numerics import check_range


def pack_words(fields: np.ndarray, bits: int, signed: bool, name: str = "memory") -> list[int]:
    """Pack ``fields[words, lanes]`` (int) into Python-int words, lane 0 in the LSBs.

    Values are range-checked against ``bits``/``signed`` (an out-of-range value raises,
    naming ``name``, instead of being silently truncated).
    """
    a = check_range(np.asarray(fields), bits, signed, name)
    if a.ndim == 1:
        a = a[:, None]
    mask = (1 << bits) - 1
    if a.shape[1] * bits <= 64:  # vectorized: each word fits a uint64
        lanes = (a.astype(np.int64) & mask).astype(np.uint64)
        shifts = np.arange(a.shape[1], dtype=np.uint64) * np.uint64(bits)
        return np.bitwise_or.reduce(lanes << shifts, axis=1).tolist()
    words = []
    for row in a.tolist():
        w = 0
        for i, v in enumerate(row):
            w |= (int(v) & mask) << (i * bits)
        words.append(w)
    return words


def unpack_words(words: list[int], lanes: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_words`: ``[len(words), lanes]`` int64."""
    mask = (1 << bits) - 1
    out = np.empty((len(words), lanes), dtype=np.int64)
    for r, w in enumerate(words):
        for i in range(lanes):
            v = (int(w) >> (i * bits)) & mask
            if signed and v >> (bits - 1):
                v -= 1 << bits
            out[r, i] = v
    return out


def write_memh(path: str | Path, words: list[int], width: int) -> Path:
    """Write words of ``width`` bits as ``$readmemh`` text (one word per line)."""
    digits = max(1, -(-width // 4))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = 1 << width
    words = [int(w) for w in words]
    if words and not (0 <= min(words) and max(words) < limit):
        i = next(i for i, w in enumerate(words) if not 0 <= w < limit)
        raise RecordError(f"word {i} = {words[i]:#x} does not fit {width} bits", file=str(path))
    path.write_text((f"%0{digits}x\n" * len(words)) % tuple(words))
    return path


def read_memh(path: str | Path) -> list[int]:
    """Read a ``$readmemh`` file written by :func:`write_memh` (``//`` comments allowed)."""
    words = []
    for ln, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("//", 1)[0].strip()
        if not line:
            continue
        try:
            words.append(int(line, 16))
        except ValueError:
            raise RecordError(f"{path}:{ln}: not a hex word: {line!r}") from None
    return words
