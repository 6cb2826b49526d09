"""cocotb testbench of ``rtl/t2c_pe_array.v`` (either implementation) against a Python model.

Model, per cycle and PE ``(r, c)``: ``acc <- wrap((clear ? bias[c] : acc) + (valid ?
sum_j (w[c][j] - zw) * (a[r][idx[c][j]] - za) : 0), ACC_BITS)`` (``a`` and ``za`` signed or
unsigned per ``a_signed_i``, ``w`` and ``zw`` signed, or unsigned per ``w_unsigned_i``; an
index >= M selects a zero operand: no product); the zero points are those of a ``ZP = 1``
build and 0 otherwise (a ``ZP = 0`` build must ignore the zero-point inputs, which the bench
drives anyway); ``capture_i`` copies the accumulators (before that edge's update) into the
drain buffer, and ``drow_acc_o`` shows row ``drow_i`` of it. Stimulus: random operands with a
bias toward the extremes, every index tuple including indices >= M when M is not a power of
two, runs of extreme products and zero points (a minimal ``ACC_BITS`` wraps), random clear /
valid / capture, zero points and signedness changing every 50 cycles. Every cycle one drain
row is checked (X/Z fails naming the cycle).

Payload: ``params`` (toplevel parameters, including ``PACKED``), ``seed``, ``n_cycles``.
"""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.numerics import wrap

log = logging.getLogger("cocotb.tb.pe_array")


def _sx(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _operand(rng: random.Random, bits: int, extreme: str | None) -> int:
    if extreme == "max":
        return (1 << (bits - 1)) - 1
    if extreme == "min":
        return 1 << (bits - 1)
    if rng.random() < 0.35:
        return rng.choice([0, 1, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1])
    return rng.getrandbits(bits)


@cocotb.test()
async def test_pe_array_vs_model(dut) -> None:
    pl = load_payload()
    p = {k: int(v) for k, v in pl["params"].items()}
    seed, n_cycles = int(pl.get("seed", 1)), int(pl.get("n_cycles", 400))
    rows, cols, n, m = p["ROWS"], p["COLS"], p["N"], p["M"]
    ab, wb, accb, ib = p["A_BITS"], p["W_BITS"], p["ACC_BITS"], p["IDX_BITS"]
    log.info("seed=%d params=%s", seed, p)
    rng = random.Random(seed)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns", impl="gpi").start())
    dut.rst_ni.value = 1
    zp = int(p.get("ZP", 0))
    for s in ("clear_i", "valid_i", "capture_i", "drow_i", "a_signed_i", "act_i", "wgt_i",
              "bias_i", "za_i", "zw_i", "w_unsigned_i"):
        getattr(dut, s).value = 0
    await RisingEdge(dut.clk_i)
    await FallingEdge(dut.clk_i)

    acc = [[0] * cols for _ in range(rows)]
    dbuf = None
    wraps = 0
    extreme = None
    for cyc in range(n_cycles):
        if cyc % 97 == 0:  # a run of extreme products
            extreme = rng.choice(["max", "min", None, None])
        act = [[_operand(rng, ab, extreme) for _ in range(m)] for _ in range(rows)]
        w = [[_operand(rng, wb, extreme) for _ in range(n)] for _ in range(cols)]
        if rng.random() < 0.8:
            idx = [sorted(rng.sample(range(m), n)) for _ in range(cols)]
        else:
            idx = [[rng.randrange(1 << ib) for _ in range(n)] for _ in range(cols)]
        bias = [rng.choice([0, -1, (1 << (accb - 1)) - 1, -(1 << (accb - 1)),
                            rng.randint(-(1 << (accb - 1)), (1 << (accb - 1)) - 1)])
                for _ in range(cols)]
        clear = cyc == 0 or rng.random() < 0.1
        valid = rng.random() < 0.85
        capture = cyc > 0 and rng.random() < 0.3
        a_signed = (cyc // 50) % 2 == 0
        if cyc % 50 == 0:   # zero points (driven in every build; only ZP = 1 uses them)
            w_unsigned = rng.random() < 0.5
            za = _operand(rng, ab, extreme if rng.random() < 0.5 else None)
            zw = _operand(rng, wb, extreme if rng.random() < 0.5 else None)
            dut.za_i.value = za
            dut.zw_i.value = zw
            dut.w_unsigned_i.value = int(w_unsigned)
        za_v = (_sx(za, ab) if a_signed else za) if zp else 0
        zw_v = (zw if w_unsigned else _sx(zw, wb)) if zp else 0
        drow = rng.randrange(rows)
        dut.clear_i.value = int(clear)
        dut.valid_i.value = int(valid)
        dut.capture_i.value = int(capture)
        dut.a_signed_i.value = int(a_signed)
        dut.act_i.value = sum((act[r][i] & ((1 << ab) - 1)) << ((i * rows + r) * ab)
                              for r in range(rows) for i in range(m))
        wgt_w = n * wb + n * ib
        dut.wgt_i.value = sum(((w[c][j] & ((1 << wb) - 1)) << (c * wgt_w + j * wb))
                              | (idx[c][j] << (c * wgt_w + n * wb + j * ib))
                              for c in range(cols) for j in range(n))
        dut.bias_i.value = sum((b & ((1 << accb) - 1)) << (c * accb) for c, b in enumerate(bias))
        # model
        if capture:
            dbuf = [row[:] for row in acc]
        for r in range(rows):
            for c in range(cols):
                base = bias[c] if clear else acc[r][c]
                s = 0
                if valid:
                    for j in range(n):
                        i = idx[c][j]
                        if i >= m:
                            continue
                        a = act[r][i]
                        wv = w[c][j] if (zp and w_unsigned) else _sx(w[c][j], wb)
                        s += (wv - zw_v) * ((_sx(a, ab) if a_signed else a) - za_v)
                acc[r][c] = int(wrap(base + s, accb))
                wraps += int(base + s != acc[r][c])
        await RisingEdge(dut.clk_i)
        dut.drow_i.value = drow
        await ReadOnly()
        if dbuf is not None:
            v = dut.drow_acc_o.value
            if not v.is_resolvable:
                raise SimulationError(f"drow_acc_o is {v} (X/Z) at cycle {cyc} (seed {seed})")
            got = [_sx(int(v) >> (c * accb), accb) for c in range(cols)]
            if got != dbuf[drow]:
                raise MismatchError(f"drain row {drow} mismatch at cycle {cyc} (seed {seed}, "
                                    f"PACKED={p.get('PACKED', 0)}): rtl={got} model={dbuf[drow]}")
        await FallingEdge(dut.clk_i)
    log.info("pe_array PACKED=%d: %d cycles match the model (%d wraps)", p.get("PACKED", 0),
             n_cycles, wraps)
    if accb == ab + wb + 1 + 2 * zp and wraps == 0:
        raise MismatchError("the minimal-ACC_BITS run never wrapped: the wrap test is vacuous")
