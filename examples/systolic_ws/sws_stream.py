"""Stream formats of the sws_top accelerator: pack one GEMM layer into input beats, read outputs.

Self-contained (NumPy only): the accelerator vendor's host code. The formats are specified beat
by beat in README.md ("Input stream", "Output stream"); in short, with ``LANES``-byte input beats
(lane ``i`` = bits ``[8i+7:8i]``, little-endian bytes) and 32-bit words in lanes 0..3::

    7 descriptor words     P, K, C_out, z_y, lo, hi, flags = mode | a_signed << 2
    for each row tile (ACC_DEPTH rows), for each channel tile (COLS channels):
        3 words per channel    bias_eff, M0, sh
        for each K block (ROWS positions):
            one beat per K position j   lane c = W[c0 + c, k0 + j]   (int8, two's complement)
            one beat per row p          lane j = x[p0 + p, k0 + j]   (int8 / uint8)

The output has one beat per (row tile, channel tile, row): ``COLS`` lanes of ``Y_BITS`` bits,
lane ``c`` = ``y[p, c0 + c]`` (lanes beyond ``C_out`` are 0), ``tlast`` on a tile's last row.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["MODES", "pack_layer", "unpack_output", "tiles"]

# Rounding-mode codes of the descriptor's flags[1:0].
MODES = {"half_even": 0, "half_up": 1, "half_away": 2, "floor": 3}


def tiles(rows: int, c_out: int, params: dict) -> list[tuple[int, int, int, int]]:
    """Output tiles in stream order: ``(p0, pr, c0, cc)`` (row tile outer, channel tile inner)."""
    depth, cols = int(params["ACC_DEPTH"]), int(params["COLS"])
    return [(p0, min(depth, rows - p0), c0, min(cols, c_out - c0))
            for p0 in range(0, rows, depth) for c0 in range(0, c_out, cols)]


def _blank(n: int, lanes: int, junk: np.random.Generator | None) -> np.ndarray:
    if junk is None:
        return np.zeros((n, lanes), dtype=np.uint8)
    return junk.integers(0, 256, size=(n, lanes), dtype=np.uint8)


def _words(values: Iterable[int], lanes: int, junk: np.random.Generator | None = None,
           ) -> np.ndarray:
    w = np.asarray([int(v) & 0xFFFFFFFF for v in values], dtype="<u4")
    out = _blank(len(w), lanes, junk)
    out[:, :4] = w.view(np.uint8).reshape(-1, 4)
    return out


def pack_layer(x: np.ndarray, w: np.ndarray, bias: np.ndarray, m0: np.ndarray, sh: np.ndarray, *,
               z_y: int, lo: int, hi: int, mode: str | int, a_signed: bool, params: dict,
               junk: np.random.Generator | None = None) -> np.ndarray:
    """The input frame of one layer as a ``[beats, LANES]`` uint8 array.

    Args:
        x: Activations ``[P, K]`` (integers that fit ``A_BITS``; the low byte is sent).
        w: Weights ``[C_out, K]`` (signed integers that fit ``W_BITS``).
        bias: ``bias_eff[C_out]`` (its low 32 bits are sent; the RTL keeps ``ACC_BITS``).
        m0: ``M0[C_out]`` (unsigned, < 2^MULT_BITS).
        sh: ``sh[C_out]`` (0..63).
        z_y: Output zero point (int32).
        lo: Lower clamp bound (int32).
        hi: Upper clamp bound (int32).
        mode: Rounding mode name (``MODES``) or code.
        a_signed: Activations are signed.
        params: ``sws_top`` parameters (``ROWS``, ``COLS``, ``LANES``, ``ACC_DEPTH``).
        junk: Fill the lanes the accelerator ignores (beyond a word, a short K block or a
            short channel tile) with random bytes from this generator instead of 0 (a test
            that the RTL really ignores them).

    Returns:
        The beats; ``frame.tobytes()`` is the AXI4-Stream frame (tlast on its last beat).
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    rows, k = x.shape
    c_out = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"x is [{rows}, {k}] but w is {list(w.shape)}: K differs")
    lanes, r_ = int(params["LANES"]), int(params["ROWS"])
    code = MODES[mode] if isinstance(mode, str) else int(mode)
    parts = [_words([rows, k, c_out, z_y, lo, hi, code | (int(bool(a_signed)) << 2)], lanes, junk)]
    xb = (x & 0xFF).astype(np.uint8)
    wb = (w & 0xFF).astype(np.uint8)
    bias, m0, sh = (np.asarray(a, dtype=np.int64) for a in (bias, m0, sh))
    for p0, pr, c0, cc in tiles(rows, c_out, params):
        chans = range(c0, c0 + cc)
        parts.append(_words([v for c in chans for v in (bias[c], m0[c], sh[c])], lanes, junk))
        for k0 in range(0, k, r_):
            kr = min(r_, k - k0)
            wbeats = _blank(kr, lanes, junk)
            wbeats[:, :cc] = wb[c0:c0 + cc, k0:k0 + kr].T
            abeats = _blank(pr, lanes, junk)
            abeats[:, :kr] = xb[p0:p0 + pr, k0:k0 + kr]
            parts += [wbeats, abeats]
    return np.concatenate(parts)


def unpack_output(data: bytes | np.ndarray, rows: int, c_out: int, params: dict,
                  y_signed: bool) -> np.ndarray:
    """``y[P, C_out]`` (int64) from the concatenated output beats of one layer.

    Raises:
        ValueError: ``data`` is not exactly the layer's ``P * ceil(C_out / COLS)`` beats.
    """
    cols, ybits = int(params["COLS"]), int(params["Y_BITS"])
    nb = ybits // 8
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    beats = rows * (-(-c_out // cols))
    if raw.size != beats * cols * nb:
        raise ValueError(f"output has {raw.size} bytes, expected {beats} beats of {cols * nb}")
    lanes = raw.reshape(beats, cols, nb).astype(np.int64)
    val = np.zeros((beats, cols), dtype=np.int64)
    for i in range(nb):
        val |= lanes[:, :, i] << (8 * i)
    if y_signed:
        val = np.where(val >= (1 << (ybits - 1)), val - (1 << ybits), val)
    y = np.zeros((rows, c_out), dtype=np.int64)
    b = 0
    for p0, pr, c0, cc in tiles(rows, c_out, params):
        y[p0:p0 + pr, c0:c0 + cc] = val[b:b + pr, :cc]
        b += pr
    return y
