"""cocotb testbench of ``rtl/t2c_requant.v`` against :func:`t2c_sim.numerics.requantize`.

One vector per cycle (pipelined, with random bubbles); every output is checked exactly
``LATENCY`` cycles after its input. Vectors: the four rounding modes on exact ties at every
shift the configuration can reach, ``s = 0``, saturation both ways, zero-point and clamp-bound
extremes, ``M0`` at 1 and ``2^MULT_BITS - 1``, accumulator extremes, plus random vectors.

Payload (from :func:`t2c_sim.cosim.sim.run`): ``params`` (the toplevel parameters),
``seed``, ``n_random``.
"""

from __future__ import annotations

import logging
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from t2c_sim.config import RoundMode
from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.numerics import requantize

LATENCY = 3  # documented in rtl/t2c_requant.v
MODES = list(RoundMode)
DEFAULTS = {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16}
log = logging.getLogger("cocotb.tb.requant")

Vec = tuple[int, int, int, int, int, int, int]  # acc, m0, sh, zy, lo, hi, mode code


def _directed(p: dict[str, int], rng: random.Random) -> list[Vec]:
    ab, mb, sb, yb = p["ACC_BITS"], p["MULT_BITS"], p["SHIFT_BITS"], p["Y_BITS"]
    amin, amax = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    mmax = (1 << mb) - 1
    smax = min(63, (1 << sb) - 1)
    ymin, ymax = -(1 << (yb - 1)), (1 << (yb - 1)) - 1
    full = (ymin, ymax)
    out: list[Vec] = []
    codes = [m.code for m in MODES]
    # Exact ties (r == h) and their neighbours (r == h +- 1) at every reachable shift.
    for s in range(1, smax + 1):
        t = s - 1                           # product = odd * 2^t is a tie at shift s
        ta = min(t, ab - 4)                 # part of 2^t carried by acc (odd * 2^ta fits)
        tm = t - ta                         # part carried by M0
        if ta < 0 or tm > mb - 1:
            continue
        for odd in (1, 3, 5, -1, -3, -5, 7, -7):
            for c in codes:
                out.append((odd << ta, 1 << tm, s, 0, *full, c))
            # one above and one below the tie (M0 = 1 so the product is exact acc)
            if tm == 0:
                for d in (-1, 1):
                    a = (odd << ta) + d
                    if amin <= a <= amax:
                        for c in codes:
                            out.append((a, 1, s, 0, *full, c))
    # ties made of the accumulator extremes (-2^(A-1), +-2^(A-2)) reach the largest shifts
    for s in range(1, smax + 1):
        for a, ta in ((amin, ab - 1), (1 << (ab - 2), ab - 2), (-(1 << (ab - 2)), ab - 2)):
            tm = s - 1 - ta
            if 0 <= tm <= mb - 1:
                for c in codes:
                    out.append((a, 1 << tm, s, 0, *full, c))
    # s = 0 returns v (then clamp); every mode
    for a in (0, 1, -1, 2, -2, 123, -123, amax, amin):
        for c in codes:
            out.append((a, 1, 0, 0, *full, c))
            out.append((a, mmax, 0, 0, *full, c))
    # saturation both ways, with the largest product and large shifts
    for a in (amax, amin, amax - 1, amin + 1):
        for m0 in (mmax, 1, mmax >> 1):
            for s in sorted({0, 1, smax // 2, smax}):
                for c in codes:
                    out.append((a, m0, s, 0, *full, c))
                    out.append((a, m0, s, ymax, *full, c))
                    out.append((a, m0, s, ymin, *full, c))
    # zero-point extremes and narrow / ReLU-like bounds
    for zy in (ymin, ymax, 0, -1, 1):
        for a in (0, 5, -5, 1 << min(ab - 2, 20), -(1 << min(ab - 2, 20))):
            for lo, hi in (full, (zy, ymax), (ymin, zy), (zy, zy), (max(zy, 0), min(ymax, 6))):
                if lo <= hi:
                    for c in codes:
                        out.append((a, rng.randint(1, mmax), rng.randint(0, smax), zy, lo, hi, c))
    return out


def _random(p: dict[str, int], rng: random.Random, n: int) -> list[Vec]:
    ab, mb, sb, yb = p["ACC_BITS"], p["MULT_BITS"], p["SHIFT_BITS"], p["Y_BITS"]
    smax = min(63, (1 << sb) - 1)
    ymin, ymax = -(1 << (yb - 1)), (1 << (yb - 1)) - 1
    out: list[Vec] = []
    for _ in range(n):
        k = rng.randint(1, ab)              # log-uniform magnitude: small and huge accumulators
        a = max(-(1 << (ab - 1)), min((1 << (ab - 1)) - 1, rng.randint(-(1 << (k - 1)), 1 << (k - 1))))
        m0 = rng.randint(0, (1 << mb) - 1) if rng.random() < 0.8 else rng.randint(0, 255)
        s = rng.randint(0, smax)
        if rng.random() < 0.3:
            # aim the shift at the product's magnitude so results land inside the range
            s = max(0, min(smax, (abs(a) * m0).bit_length() - rng.randint(0, yb)))
        zy = rng.randint(ymin, ymax) if rng.random() < 0.5 else rng.randint(-8, 8)
        if rng.random() < 0.5:
            lo, hi = ymin, ymax
        else:
            lo, hi = sorted((rng.randint(ymin, ymax), rng.randint(ymin, ymax)))
        out.append((a, m0, s, zy, lo, hi, rng.choice(MODES).code))
    return out


def expected(vecs: list[Vec]) -> np.ndarray:
    """Golden outputs from :func:`t2c_sim.numerics.requantize`, one call per rounding mode."""
    arr = np.array([v[:6] for v in vecs], dtype=object)
    codes = np.array([v[6] for v in vecs])
    y = np.zeros(len(vecs), dtype=np.int64)
    for mode in MODES:
        sel = np.flatnonzero(codes == mode.code)
        if sel.size:
            cols = [np.array([int(x) for x in arr[sel, i]], dtype=object) for i in range(6)]
            y[sel] = requantize(*cols, mode=mode)
    return y


@cocotb.test()
async def test_requant_vectors(dut) -> None:
    """Directed + random vectors, one per cycle with bubbles; outputs checked LATENCY later."""
    pl = load_payload()
    p = {**DEFAULTS, **{k: int(v) for k, v in pl.get("params", {}).items()}}
    seed = int(pl.get("seed", 1))
    n_random = int(pl.get("n_random", 5000))
    log.info("seed=%d params=%s n_random=%d", seed, p, n_random)
    rng = random.Random(seed)
    vecs = _directed(p, rng) + _random(p, rng, n_random)
    y_exp = expected(vecs)
    ab, mb, yb = p["ACC_BITS"], p["MULT_BITS"], p["Y_BITS"]

    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns", impl="gpi").start())
    dut.rst_ni.value = 0
    dut.valid_i.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk_i)
    await ReadOnly()
    if not dut.valid_o.value.is_resolvable or int(dut.valid_o.value) != 0:
        raise SimulationError(f"valid_o is {dut.valid_o.value} during reset (expected 0)")
    await FallingEdge(dut.clk_i)
    dut.rst_ni.value = 1

    # schedule: vector index or None (bubble) per cycle, then LATENCY idle cycles to drain
    sched: list[int | None] = []
    for i in range(len(vecs)):
        while rng.random() < 0.1:
            sched.append(None)
        sched.append(i)
    sched += [None] * LATENCY
    history: list[int | None] = []
    checked = 0
    for cyc, item in enumerate(sched):
        if item is None:
            dut.valid_i.value = 0
            # garbage data on a bubble must not matter
            dut.acc_i.value = rng.randint(0, (1 << ab) - 1)
            dut.m0_i.value = rng.randint(0, (1 << mb) - 1)
        else:
            a, m0, s, zy, lo, hi, c = vecs[item]
            dut.valid_i.value = 1
            dut.acc_i.value = a & ((1 << ab) - 1)
            dut.m0_i.value = m0
            dut.sh_i.value = s
            dut.zy_i.value = zy & ((1 << yb) - 1)
            dut.lo_i.value = lo & ((1 << yb) - 1)
            dut.hi_i.value = hi & ((1 << yb) - 1)
            dut.mode_i.value = c
        history.append(item)
        await RisingEdge(dut.clk_i)
        await ReadOnly()
        # after edge `cyc`, the output holds the input of cycle cyc - LATENCY + 1
        src = cyc - LATENCY + 1
        want = history[src] if src >= 0 else None
        vo = dut.valid_o.value
        if not vo.is_resolvable:
            raise SimulationError(f"valid_o is {vo} (X/Z) at cycle {cyc}, vector {want}")
        if (int(vo) == 1) != (want is not None):
            raise MismatchError(f"valid_o={int(vo)} at cycle {cyc}, expected "
                                f"{'vector ' + str(want) if want is not None else 'a bubble'}")
        if want is not None:
            yo = dut.y_o.value
            if not yo.is_resolvable:
                raise SimulationError(f"y_o is {yo} (X/Z) for vector {want} {vecs[want]}")
            got = yo.to_signed()
            if got != int(y_exp[want]):
                a, m0, s, zy, lo, hi, c = vecs[want]
                raise MismatchError(
                    f"y_o mismatch at vector {want} (seed {seed}): acc={a} M0={m0} sh={s} "
                    f"z_y={zy} lo={lo} hi={hi} mode={MODES[c].value}: rtl={got} "
                    f"golden={int(y_exp[want])}")
            checked += 1
        await FallingEdge(dut.clk_i)  # leave the read-only phase; drive the next cycle
    if checked != len(vecs):
        raise MismatchError(f"checked {checked} outputs, expected {len(vecs)}")
    log.info("requant: %d vectors (%d directed) match the golden model", checked,
             len(vecs) - n_random)
