"""``$readmemh`` files: the single place that decides bit packing and lane order.

A memory word packs ``lanes`` fields of ``bits`` bits each; **lane 0 is in the least
significant bits** (``word = sum(field[i] << (i * bits))``), each field in two's complement
when signed. A hex file has one word per line, ``ceil(lanes * bits / 4)`` hex digits, no
address markers, first line = address 0. Example: lanes ``[-1, 2]`` at 4 bits -> ``0x2F``.
The RTL slices lane ``i`` as ``word[i*BITS +: BITS]``.

Wide words (the accelerator's scratchpads hold a whole PE row or column block per word, often
hundreds of bits) go through :func:`pack_limbs` / :func:`write_memh_limbs` (NumPy, 64-bit limbs,
fields of mixed widths) and are read back with :func:`read_memh_fields`; :func:`pack_words`
returns Python ints and suits small memories and testbenches.

Stream beats and memory images are byte arrays ``uint8[n, nbytes]`` (byte 0 = bits 7..0 of the
word, little-endian): :func:`pack_beats` / :func:`unpack_beats` convert fields to and from them,
:func:`write_memh_bytes` / :func:`read_memh_bytes` write and read them as ``$readmemh`` text.
Example: fields ``[[-1, 2]]`` of 4 bits in one byte -> ``[[0x2F]]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from t2c_sim.errors import RecordError
from t2c_sim.numerics import check_range

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i
_XZ = re.compile(rb"[xXzZ]")


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


def pack_limbs(fields: np.ndarray, widths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Pack ``fields[words, F]`` into 64-bit limbs ``[words, ceil(sum(widths) / 64)]`` (uint64).

    Field ``f`` has ``widths[f]`` bits (1..63) and sits above fields ``0 .. f-1`` (field 0 in the
    least significant bits, limb 0 the least significant limb). Values are taken modulo
    ``2^width`` (two's complement for negatives): range-check them first
    (:func:`t2c_sim.numerics.check_range`).
    """
    a = np.asarray(fields, dtype=np.int64)
    if a.ndim == 1:
        a = a[:, None]
    w = np.asarray(widths, dtype=np.int64).reshape(-1)
    if w.size != a.shape[1] or (w < 1).any() or (w > 63).any():
        raise RecordError(f"pack_limbs: {a.shape[1]} fields need widths in 1..63, got {w.tolist()}")
    offs = np.concatenate([[0], np.cumsum(w)[:-1]])
    total = int(w.sum())
    limbs = np.zeros((a.shape[0], -(-total // 64)), dtype=np.uint64)
    u = (a & ((np.int64(1) << w) - 1)).astype(np.uint64)
    for f in range(a.shape[1]):
        li, sh = divmod(int(offs[f]), 64)
        limbs[:, li] |= u[:, f] << np.uint64(sh)
        if sh + int(w[f]) > 64:
            limbs[:, li + 1] |= u[:, f] >> np.uint64(64 - sh)
    return limbs


def limbs_to_ints(limbs: np.ndarray) -> list[int]:
    """Python-int words of :func:`pack_limbs` limbs (limb 0 the least significant), e.g. for a
    testbench driving a wide port."""
    out = []
    for row in np.asarray(limbs, dtype=np.uint64).tolist():
        w = 0
        for i, limb in enumerate(row):
            w |= int(limb) << (64 * i)
        out.append(w)
    return out


def write_memh_limbs(path: str | Path, limbs: np.ndarray, width: int) -> Path:
    """Write :func:`pack_limbs` words of ``width`` bits as ``$readmemh`` text (one word per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(memh_chars(limbs, width, str(path)).tobytes())
    return path


def memh_chars(limbs: np.ndarray, width: int, name: str = "memory") -> np.ndarray:
    """The ``$readmemh`` text of :func:`pack_limbs` words of ``width`` bits, as characters
    ``uint8[words, digits + 1]`` (each row one line: ``ceil(width / 4)`` hex digits and a
    newline), so that slices of rows are files (:mod:`t2c_sim.cosim.bulk`).

    Raises:
        RecordError: The limbs do not hold ``width`` bits, or a word does not fit them (names
            ``name``).
    """
    n, nl = limbs.shape
    digits = max(1, -(-width // 4))
    if nl * 64 < width or (nl * 64 - width >= 64):
        raise RecordError(f"{name}: {nl} limbs do not hold {width}-bit words")
    out = np.empty((n, digits + 1), dtype=np.uint8)
    if n == 0:
        return out
    text = np.ascontiguousarray(limbs[:, ::-1]).astype(">u8").tobytes().hex().encode()
    chars = np.frombuffer(text, dtype=np.uint8).reshape(n, nl * 16)
    if (chars[:, :nl * 16 - digits] != ord("0")).any():
        raise RecordError(f"{name}: a word does not fit {width} bits")
    out[:, :digits] = chars[:, nl * 16 - digits:]
    out[:, digits] = ord("\n")
    return out


def read_memh_fields(path: str | Path, widths: Sequence[int] | np.ndarray, signed: bool,
                     words: int | None = None) -> np.ndarray:
    """Read a ``$writememh`` dump of fixed-width words into ``[words, F]`` int64 fields.

    ``widths`` are the fields' bit widths (1..63), field 0 in the least significant bits (the
    inverse of :func:`pack_limbs`); ``signed`` sign-extends every field. The file holds one word
    per line with the same number of hex digits (``//`` comments and blank lines are skipped).

    Raises:
        RecordError: The file has an X/Z or non-hex digit (the message names the word), lines
            of different lengths, or not ``words`` words.
    """
    path = Path(path)
    return parse_memh(path.read_bytes(), widths, signed, words, str(path))


def parse_memh(raw: bytes, widths: Sequence[int] | np.ndarray, signed: bool,
               words: int | None = None, name: str = "memory") -> np.ndarray:
    """:func:`read_memh_fields` of ``$writememh`` text already in memory (e.g. several dumps of
    one width joined, parsed at once); errors name ``name``."""
    path = name
    if b"/" in raw or b"\r" in raw or b"\n\n" in raw or (raw and raw[:1] == b"\n"):
        lines = [ln.split(b"//", 1)[0].strip() for ln in raw.splitlines()]
        raw = b"\n".join(ln for ln in lines if ln) + b"\n"
    if raw and not raw.endswith(b"\n"):
        raw += b"\n"
    w = np.asarray(widths, dtype=np.int64).reshape(-1)
    if not raw:
        n = 0
        if words not in (None, 0):
            raise RecordError(f"{path}: 0 words, expected {words}")
        return np.zeros((0, w.size), dtype=np.int64)
    ll = raw.index(b"\n") + 1
    n, rem = divmod(len(raw), ll)
    chars = np.frombuffer(raw, dtype=np.uint8)
    if rem or (chars[ll - 1::ll] != ord("\n")).any():
        raise RecordError(f"{path}: lines of different lengths (not a fixed-width dump)")
    if words is not None and n != words:
        raise RecordError(f"{path}: {n} words, expected {words}")
    digits = ll - 1
    nib = _HEX[chars.reshape(n, ll)[:, :digits]]
    if (nib == 255).any():
        r = int(np.argwhere(nib == 255)[0][0])
        what = "X/Z" if _XZ.search(raw[r * ll:(r + 1) * ll]) else "non-hex"
        raise RecordError(f"{path}: word {r} has an {what} digit: {raw[r * ll:r * ll + digits].decode()}")
    if int(w.sum()) > digits * 4:
        raise RecordError(f"{path}: {digits}-digit words do not hold {int(w.sum())} bits")
    if (w % 4 == 0).all() and int(w.sum()) == digits * 4 and (w <= 60).all():
        return _fields_from_nibbles(nib, w, signed)
    # bits[:, b] = bit b of the word (LSB first)
    bits = np.unpackbits(nib[:, ::-1, None], axis=2, count=4, bitorder="little").reshape(n, -1)
    offs = np.concatenate([[0], np.cumsum(w)[:-1]])
    out = np.empty((n, w.size), dtype=np.int64)
    for f in range(w.size):
        o, k = int(offs[f]), int(w[f])
        v = bits[:, o:o + k].astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))
        if signed:
            v = np.where(v >> (k - 1) & 1, v - (np.int64(1) << k), v)
        out[:, f] = v
    return out


def _fields_from_nibbles(nib: np.ndarray, w: np.ndarray, signed: bool) -> np.ndarray:
    """Fields of whole nibbles (every width a multiple of 4, together the whole word): each
    field is its nibbles weighted by powers of 16 (fast path of :func:`parse_memh`)."""
    n, digits = nib.shape
    rev = nib[:, ::-1].astype(np.int64)  # rev[:, j] = nibble j (LSB first)
    out = np.empty((n, w.size), dtype=np.int64)
    o = 0
    for f, k in enumerate(w.tolist()):
        d = k // 4
        v = rev[:, o:o + d] @ (np.int64(16) ** np.arange(d, dtype=np.int64))
        if signed:
            v = np.where(v >> (k - 1) & 1, v - (np.int64(1) << k), v)
        out[:, f] = v
        o += d
    return out


def pack_beats(fields: np.ndarray, widths: Sequence[int] | np.ndarray, nbytes: int) -> np.ndarray:
    """Fields ``[n, F]`` (field 0 in the LSBs, two's complement) -> bytes ``uint8[n, nbytes]``.

    Values are taken modulo ``2^width`` (range-check them first when that matters); bits above
    ``sum(widths)`` are 0.
    """
    a = np.asarray(fields, dtype=np.int64)
    if a.ndim == 1:
        a = a[:, None]
    total = int(np.sum(widths))
    if total > nbytes * 8:
        raise RecordError(f"pack_beats: {total} bits do not fit {nbytes} bytes")
    limbs = pack_limbs(a, widths)
    b = np.ascontiguousarray(limbs.astype("<u8")).view(np.uint8).reshape(a.shape[0], -1)
    out = np.zeros((a.shape[0], nbytes), dtype=np.uint8)
    k = min(nbytes, b.shape[1])
    out[:, :k] = b[:, :k]
    return out


def unpack_beats(beats: np.ndarray, widths: Sequence[int] | np.ndarray, signed: bool) -> np.ndarray:
    """Bytes ``uint8[n, nbytes]`` -> fields ``[n, F]`` int64 (inverse of :func:`pack_beats`)."""
    b = np.asarray(beats, dtype=np.uint8)
    w = np.asarray(widths, dtype=np.int64).reshape(-1)
    if int(w.sum()) > b.shape[1] * 8 or (w < 1).any() or (w > 63).any():
        raise RecordError(f"unpack_beats: widths {w.tolist()} do not fit {b.shape[1]} bytes")
    bits = np.unpackbits(b, axis=1, bitorder="little")
    offs = np.concatenate([[0], np.cumsum(w)[:-1]])
    out = np.empty((b.shape[0], w.size), dtype=np.int64)
    for f in range(w.size):
        o, k = int(offs[f]), int(w[f])
        v = bits[:, o:o + k].astype(np.int64) @ (np.int64(1) << np.arange(k, dtype=np.int64))
        if signed:
            v = np.where(v >> (k - 1) & 1, v - (np.int64(1) << k), v)
        out[:, f] = v
    return out


def write_memh_bytes(path: str | Path, beats: np.ndarray, width: int) -> Path:
    """Write ``uint8[n, nbytes]`` words of ``width`` bits as ``$readmemh`` text (one per line).

    Raises:
        RecordError: A word has bits set above ``width``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    b = np.asarray(beats, dtype=np.uint8)
    n, nb = b.shape
    digits = max(1, -(-width // 4))
    if nb * 8 < width:
        raise RecordError(f"{path}: {nb} bytes do not hold {width}-bit words")
    if n == 0:
        path.write_text("")
        return path
    text = np.ascontiguousarray(b[:, ::-1]).tobytes().hex().encode()
    chars = np.frombuffer(text, dtype=np.uint8).reshape(n, nb * 2)
    if (chars[:, :nb * 2 - digits] != ord("0")).any() or (
            width % 4 and (_HEX[chars[:, nb * 2 - digits]] >> (width % 4)).any()):
        raise RecordError(f"{path}: a word has bits above bit {width - 1}")
    out = np.empty((n, digits + 1), dtype=np.uint8)
    out[:, :digits] = chars[:, nb * 2 - digits:]
    out[:, digits] = ord("\n")
    path.write_bytes(out.tobytes())
    return path


def read_memh_bytes(path: str | Path, width: int, words: int | None = None) -> np.ndarray:
    """Read a ``$writememh`` dump of ``width``-bit words into ``uint8[n, ceil(width/8)]``.

    Raises:
        RecordError: X/Z or non-hex digits (the message names the word), or not ``words`` words.
    """
    nb = -(-width // 8)
    widths = [8] * (width // 8) + ([width % 8] if width % 8 else [])
    f = read_memh_fields(path, widths, False, words)
    return f.astype(np.uint8).reshape(-1, nb)
