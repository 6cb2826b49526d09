"""cocotb testbench of ``rtl/t2c_requant.v`` against :func:`t2c_sim.numerics.requantize` and,
for the runtime rounding profiles (mode codes 4..6), :func:`t2c_sim.rounding_profiles.requantize_profile`.

One vector per cycle (pipelined, with random bubbles); every output is checked exactly
``LATENCY`` cycles after its input, whatever its mode. Section-2 vectors: the four rounding
modes on exact ties at every shift the configuration can reach, ``s = 0``, saturation both ways,
zero-point and clamp-bound extremes, ``M0`` at 1 and ``2^MULT_BITS - 1``, accumulator extremes,
plus random vectors. Profile vectors (when the build has ``PROFILES = 1`` and ``M0`` fits:
``ort_fp32`` needs ``MULT_BITS >= 24``, the TFLite profiles ``>= 31``), each rounding step on
its ties, just above and just below them (the sticky bits), both signs:

* ``ort_fp32``: the float32 conversion of ``acc`` (``|acc| > 2^24``), the float32 product
  ``a_sig * M0`` (its low bits solved for a tie modulo ``2^(k2 + 10)``), the final
  ``rint_even``, and extremes (``-2^31``, ``2^24 +- 1``, the left-shift path ``sh < k1 + k2``);
  the conversion and product ties are placed so that the final integer shows whether they
  rounded up (``(S + c) / 2^9`` next to a tie of the final step);
* ``tflite_double``: SRDHM ties (``x * M0 = odd * 2^30``: the nudge rounds them toward +inf),
  RDBPOT ties after it (away from zero), left shifts that wrap ``acc << left`` to int32,
  ``-2^31 * (2^31 - 1)``, the flush ``M0 = 0``, ``z_y`` that wraps ``r + z_y`` past int32;
* ``tflite_single``: ties of ``(acc * M0 + 2^(sh-1)) >> sh`` (toward +inf), the int32 wraps;

plus random vectors with valid profile parameters (``rounding_profiles.check_params``).

Payload (from :func:`t2c_sim.cosim.sim.run`): ``params`` (the toplevel parameters),
``seed``, ``n_random``, ``n_profile`` (random vectors per profile).
"""

from __future__ import annotations

import logging
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from t2c_sim.config import RoundProfile
from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.numerics import requantize
from t2c_sim.rounding_profiles import check_params, requantize_profile
from t2c_sim.workloads.requant_cases import (
    BY_CODE,
    MODES,
    Vec,
    ort_directed,
    profile_random,
    profiles_fitting,
    section2_directed,
    section2_random,
    tflite_directed,
)

LATENCY = 3  # documented in rtl/t2c_requant.v
PROFILES = list(RoundProfile)
DEFAULTS = {"ACC_BITS": 32, "MULT_BITS": 32, "SHIFT_BITS": 6, "Y_BITS": 16, "PROFILES": 1}
log = logging.getLogger("cocotb.tb.requant")


def expected(vecs: list[Vec]) -> np.ndarray:
    """Golden outputs: :func:`t2c_sim.numerics.requantize` per rounding mode (codes 0..3) and
    :func:`t2c_sim.rounding_profiles.requantize_profile` per profile (codes 4..6)."""
    arr = np.array([v[:6] for v in vecs], dtype=object)
    codes = np.array([v[6] for v in vecs])
    y = np.zeros(len(vecs), dtype=np.int64)
    for mode in MODES:
        sel = np.flatnonzero(codes == mode.code)
        if sel.size:
            cols = [np.array([int(x) for x in arr[sel, i]], dtype=object) for i in range(6)]
            y[sel] = requantize(*cols, mode=mode)
    for prof in PROFILES:
        sel = np.flatnonzero(codes == prof.code)
        if sel.size:
            cols = [np.array([int(x) for x in arr[sel, i]], dtype=np.int64) for i in range(6)]
            check_params(prof, cols[1], cols[2])     # the vectors are legal for the profile
            y[sel] = requantize_profile(*cols, prof)
    return y


@cocotb.test()
async def test_requant_vectors(dut) -> None:
    """Directed + random vectors, one per cycle with bubbles; outputs checked LATENCY later."""
    pl = load_payload()
    p = {**DEFAULTS, **{k: int(v) for k, v in pl.get("params", {}).items()}}
    seed = int(pl.get("seed", 1))
    n_random = int(pl.get("n_random", 5000))
    log.info("seed=%d params=%s n_random=%d", seed, p, n_random)
    n_profile = int(pl.get("n_profile", 1000))
    rng = random.Random(seed)
    vecs = section2_directed(p, rng) + section2_random(p, rng, n_random)
    n_sec2 = len(vecs)
    for prof in profiles_fitting(p):
        d = ort_directed(p, rng) if prof is RoundProfile.ORT_FP32 else tflite_directed(p, rng, prof)
        vecs += d + profile_random(p, rng, prof, n_profile)
    rng.shuffle(vecs)   # modes interleave in the pipeline
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
                    f"z_y={zy} lo={lo} hi={hi} mode={BY_CODE[c].value}: rtl={got} "
                    f"golden={int(y_exp[want])}")
            checked += 1
        await FallingEdge(dut.clk_i)  # leave the read-only phase; drive the next cycle
    if checked != len(vecs):
        raise MismatchError(f"checked {checked} outputs, expected {len(vecs)}")
    log.info("requant: %d vectors (%d section 2, %d with profiles %s) match the golden model",
             checked, n_sec2, len(vecs) - n_sec2, [q.value for q in profiles_fitting(p)])
