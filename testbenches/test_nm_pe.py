"""cocotb testbench of ``rtl/t2c_nm_pe.v`` against a Python model built on ``numerics.wrap``.

Model, per cycle: ``acc <- wrap((clear ? bias : acc) + (valid ? sum_j w[j] * a[idx[j]] : 0),
ACC_BITS)``, where ``a`` is read signed or unsigned per ``a_signed_i`` and an index >= M selects 0.
Stimulus: every strictly increasing index tuple of the configured N:M (all C(M, N)), random
index tuples (including indices >= M when M is not a power of two), random operands with a bias
toward the extremes, signed and unsigned activations, every clear/valid combination, long runs
of extreme products so a small ``ACC_BITS`` wraps. ``acc_o`` is checked after every
rising edge (X/Z fails naming the signal and cycle).

Payload: ``params`` (toplevel parameters), ``seed``, ``n_cycles``.
"""

from __future__ import annotations

import itertools
import logging
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from t2c_sim.cosim.sim import load_payload
from t2c_sim.errors import MismatchError, SimulationError
from t2c_sim.numerics import wrap

DEFAULTS = {"A_BITS": 8, "W_BITS": 8, "ACC_BITS": 32, "N": 2, "M": 4, "IDX_BITS": 2}
log = logging.getLogger("cocotb.tb.nm_pe")


def _sx(v: int, bits: int) -> int:
    """Two's-complement value of a ``bits``-bit pattern."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _operand(rng: random.Random, bits: int) -> int:
    """A raw ``bits``-bit pattern, often an extreme (0, 1, all ones, min and max signed)."""
    if rng.random() < 0.35:
        return rng.choice([0, 1, (1 << bits) - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1])
    return rng.getrandbits(bits)


def model_step(p: dict[str, int], acc: int, op: dict) -> int:
    """One cycle of the PE (Python ints, wrapped with :func:`t2c_sim.numerics.wrap`)."""
    base = op["bias"] if op["clear"] else acc
    s = 0
    if op["valid"]:
        for w, i in zip(op["w"], op["idx"]):
            a_raw = op["act"][i] if i < p["M"] else 0
            a = _sx(a_raw, p["A_BITS"]) if op["a_signed"] else a_raw
            s += _sx(w, p["W_BITS"]) * a
    return int(wrap(base + s, p["ACC_BITS"]))


def make_ops(p: dict[str, int], rng: random.Random, n_cycles: int) -> list[dict]:
    """Stimulus: every increasing index tuple, then random cycles; starts with a clear."""
    n, m, ab, wb, accb = p["N"], p["M"], p["A_BITS"], p["W_BITS"], p["ACC_BITS"]
    patterns = list(itertools.combinations(range(m), n))
    ops: list[dict] = []

    def op(idx: tuple[int, ...], clear: bool, valid: bool, a_signed: bool,
           extreme: str | None = None) -> dict:
        if extreme == "max":      # largest positive products (wrap provocation)
            act = [(1 << (ab - 1)) - 1 if a_signed else (1 << ab) - 1] * m
            w = [(1 << (wb - 1)) - 1] * n
        elif extreme == "min":    # most negative activations times most negative weights
            act = [1 << (ab - 1)] * m
            w = [1 << (wb - 1)] * n
        else:
            act = [_operand(rng, ab) for _ in range(m)]
            w = [_operand(rng, wb) for _ in range(n)]
        bias = rng.choice([0, 1, -1, (1 << (accb - 1)) - 1, -(1 << (accb - 1)),
                           rng.randint(-(1 << (accb - 1)), (1 << (accb - 1)) - 1)])
        return {"idx": list(idx), "clear": clear, "valid": valid, "a_signed": a_signed,
                "act": act, "w": w, "bias": bias}

    # every pattern, signed and unsigned, each starting a fresh dot product
    for pat in patterns:
        for a_signed in (False, True):
            ops.append(op(pat, True, True, a_signed))
            for _ in range(3):
                ops.append(op(pat, False, True, a_signed))
    # every clear/valid combination after a known state
    for clear, valid in itertools.product((False, True), repeat=2):
        ops.append(op(rng.choice(patterns), True, True, True))
        ops.append(op(rng.choice(patterns), clear, valid, rng.random() < 0.5))
        ops.append(op(rng.choice(patterns), False, False, True))
    # long extreme runs: wrap when ACC_BITS is small
    for ext, a_signed in (("max", False), ("max", True), ("min", True)):
        ops.append(op(patterns[0], True, True, a_signed, ext))
        for _ in range(40):
            ops.append(op(rng.choice(patterns), False, True, a_signed, ext))
    # random traffic, incl. index tuples that are not increasing (the mux does not care) and,
    # when M is not a power of two, indices >= M (they select 0)
    for _ in range(n_cycles):
        if rng.random() < 0.8:
            idx = rng.choice(patterns)
        else:
            idx = tuple(rng.randrange(1 << p["IDX_BITS"]) for _ in range(n))
        ops.append(op(idx, rng.random() < 0.15, rng.random() < 0.8, rng.random() < 0.5))
    return ops


@cocotb.test()
async def test_nm_pe_vs_model(dut) -> None:
    """Drive one op per cycle and compare acc_o with the model after every edge."""
    pl = load_payload()
    p = {**DEFAULTS, **{k: int(v) for k, v in pl.get("params", {}).items()}}
    seed = int(pl.get("seed", 1))
    n_cycles = int(pl.get("n_cycles", 3000))
    log.info("seed=%d params=%s n_cycles=%d", seed, p, n_cycles)
    rng = random.Random(seed)
    ops = make_ops(p, rng, n_cycles)
    ab, wb, ib, accb = p["A_BITS"], p["W_BITS"], p["IDX_BITS"], p["ACC_BITS"]

    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns", impl="gpi").start())
    dut.rst_ni.value = 0
    dut.clear_i.value = 0
    dut.valid_i.value = 0
    await RisingEdge(dut.clk_i)
    await FallingEdge(dut.clk_i)
    dut.rst_ni.value = 1

    acc = 0
    wraps = 0
    for cyc, o in enumerate(ops):
        dut.clear_i.value = int(o["clear"])
        dut.valid_i.value = int(o["valid"])
        dut.a_signed_i.value = int(o["a_signed"])
        dut.act_i.value = sum((a & ((1 << ab) - 1)) << (j * ab) for j, a in enumerate(o["act"]))
        dut.val_i.value = sum((w & ((1 << wb) - 1)) << (j * wb) for j, w in enumerate(o["w"]))
        dut.idx_i.value = sum(i << (j * ib) for j, i in enumerate(o["idx"]))
        dut.bias_i.value = o["bias"] & ((1 << accb) - 1)
        new = model_step(p, acc, o)
        base = o["bias"] if o["clear"] else acc
        unwrapped = base + sum(
            _sx(w, wb) * ((_sx(o["act"][i], ab) if o["a_signed"] else o["act"][i])
                          if i < p["M"] else 0)
            for w, i in zip(o["w"], o["idx"])) * int(o["valid"])
        wraps += int(unwrapped != new)
        acc = new
        await RisingEdge(dut.clk_i)
        await ReadOnly()
        v = dut.acc_o.value
        if not v.is_resolvable:
            raise SimulationError(f"acc_o is {v} (X/Z) at cycle {cyc} (seed {seed})")
        if v.to_signed() != acc:
            raise MismatchError(
                f"acc_o mismatch at cycle {cyc} (seed {seed}): rtl={v.to_signed()} model={acc}; "
                f"op clear={o['clear']} valid={o['valid']} a_signed={o['a_signed']} "
                f"idx={o['idx']} act={o['act']} w={o['w']} bias={o['bias']}")
        await FallingEdge(dut.clk_i)
    log.info("nm_pe: %d cycles match the model (%d wrapped)", len(ops), wraps)
    if accb == ab + wb + 1 and wraps == 0:
        raise MismatchError("the minimal-ACC_BITS run never wrapped: the wrap test is vacuous")
