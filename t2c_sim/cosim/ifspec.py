"""The ``interface`` section of a DUT file: how data moves, one schema per profile.

``backdoor`` (memories loaded in bulk into the DUT's RAMs by its own simulation harness; the
adapter packs them)::

    interface: {profile: backdoor, err_names: [zero-size, act-depth, ...]}

``stream`` (AXI4-Stream in and out; an HDL player and recorder, loaded in bulk, drive the ports
with seeded LFSR back-pressure)::

    interface:
      profile: stream
      in:  {prefix: s_axis, data_bits: LANES * 8}      # <prefix>_tdata/_tvalid/_tready/_tlast
      out: {prefix: m_axis, data_bits: COLS * Y_BITS}
      counter: cycles_o        # optional: the DUT's own count of the layer's cycles (checked);
                               # a port name (32 bits) or {port: cycles_o, bits: 32}
      error: {port: err_o, bits: 3}   # optional: nonzero after a layer fails it (bits default 1)
      input:                   # optional declared framing (else the adapter packs frames)
        word_bits: 32          # a word item is one beat, its value in the low word_bits bits
        lane_bits: 8           # a matrix row is split into beats of data_bits // lane_bits lanes
        items: [{words: [rows, k, c_out]}, {channels: [bias, m0, sh]}, {matrix: w}, {matrix: x}]
      output: {lane_bits: 8}   # y[P, C_out]: each row split into beats of lanes

``axi`` (control and status registers over AXI4-Lite, operands and results in a memory the DUT
reaches over AXI4: an HDL memory model loaded in bulk; an HDL AXI4-Lite master plays the
register program)::

    interface:
      profile: axi
      control: {prefix: s_axil, addr_bits: 12}   # AXI4-Lite slave of the DUT (32-bit data;
                                                 # prot: true ties its awprot/arprot to 0)
      memory: {prefix: m_axi, addr_bits: 32, data_bits: 64, id_bits: 0, size: 1048576,
               read_latency: 4, write_latency: 2, align: 64}   # id_bits 0: no ID ports
      operands:                                        # placed in memory in this order (an
                                                       # adapter's axi_layout() may replace them)
        x: {elem_bits: 8, row_align: 4}                # x[P, K] row-major, rows padded
        w: {elem_bits: 8, row_align: 4}                # w[C_out, K]
        bias: {elem_bits: 32}
        m0: {elem_bits: 32}
        sh: {elem_bits: 8}
        y: {elem_bits: 16, row_align: 4}               # y[P, C_out]: read back
      registers:                                       # written in order
        - {addr: 0x10, value: rows}
        - {addr: 0x20, value: addr.x}
        - {addr: 0x00, value: 1}
      completion: {irq: irq_o}          # or {done: done_o} or {poll: {addr: 0x04, mask: 1, value: 1}}
      status: {cycles: 0x30, error: {addr: 0x04, mask: 4}}   # optional reads after completion
                               # (cycles: reported; error: nonzero under mask fails the job;
                               # error.names: [bit 0's name, ...] for the message)
      after: [{addr: 0x04, value: 1}]                        # optional writes after completion

Register values are expressions over the GEMM's fields (``rows, k, c_out, c0, group, z_y, lo,
hi, mode, a_signed, y_signed, a_bits, w_bits, acc_bits, n, m, op``), the layer's geometry
(``layer.c_in``, ``layer.kh``, ``layer.stride_h``, ... :func:`t2c_sim.cosim.gemm.record_fields`),
``addr.<operand>`` and ``stride.<operand>`` (row pitch in bytes), ``size.<operand>`` (bytes)
and the Verilog parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from t2c_sim.cosim.dutfile import Ctx
from t2c_sim.cosim.expr import Expr

__all__ = ["PROFILES", "BackdoorIf", "StreamPort", "StreamIf", "Item", "AxiMemory", "Operand",
           "Register", "AxiIf", "parse_interface", "GEMM_FIELDS", "OPERANDS", "MAX_BEATS",
           "MAX_MEM_BYTES"]

PROFILES = ("backdoor", "stream", "axi")
#: Names a GEMM's fields have in DUT-file expressions (:meth:`t2c_sim.cosim.gemm.GemmOp.fields`).
GEMM_FIELDS = ("rows", "k", "c_out", "c0", "group", "z_y", "lo", "hi", "mode", "a_signed",
               "y_signed", "a_bits", "w_bits", "acc_bits", "n", "m", "op")
#: Operands a memory layout or a stream frame can hold.
OPERANDS = ("x", "w", "bias", "m0", "sh", "y")
MAX_BEATS = 1 << 22          # beats of one stream (in or out) in one simulator process
MAX_MEM_BYTES = 1 << 28      # bytes of the AXI memory model
MAX_DATA_BITS = 4096


@dataclass(frozen=True)
class BackdoorIf:
    profile: str = "backdoor"
    err_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamPort:
    prefix: str
    data_bits: Expr


@dataclass(frozen=True)
class Item:
    """One part of a declared input frame: ``words`` (one beat each), ``channels`` (per channel
    one beat per field) or ``matrix`` (an operand's rows split into beats of lanes)."""

    kind: str
    words: tuple[Expr, ...] = ()
    fields: tuple[str, ...] = ()
    operand: str = ""


@dataclass(frozen=True)
class StreamIf:
    profile: str
    inp: StreamPort
    out: StreamPort
    counter: str | None = None
    counter_bits: int = 32
    error: str | None = None
    error_bits: int = 1
    word_bits: int = 32
    lane_bits: int = 8
    items: tuple[Item, ...] = ()
    out_lane_bits: Expr | None = None

    @property
    def declared(self) -> bool:
        """Whether the DUT file declares the frames (else the adapter packs them)."""
        return bool(self.items)


@dataclass(frozen=True)
class AxiMemory:
    prefix: str
    addr_bits: int
    data_bits: int
    id_bits: int
    size: int
    read_latency: int
    write_latency: int
    align: int


@dataclass(frozen=True)
class Operand:
    name: str
    elem_bits: int
    row_align: int


@dataclass(frozen=True)
class Register:
    addr: Expr
    value: Expr


@dataclass(frozen=True)
class AxiIf:
    profile: str
    control_prefix: str
    control_addr_bits: int
    control_prot: bool
    memory: AxiMemory
    operands: tuple[Operand, ...]
    registers: tuple[Register, ...]
    completion: str                     # irq | done | poll
    signal: str | None = None           # irq / done port
    poll: tuple[Expr, Expr, Expr] | None = None   # addr, mask, value
    status_cycles: Expr | None = None
    status_error: tuple[Expr, Expr] | None = None  # addr, mask
    after: tuple[Register, ...] = field(default_factory=tuple)
    error_names: tuple[str, ...] = ()   # status.error.names: bit i's meaning, for messages


def _port(ctx: Ctx, d: Any, key: str, names: list[str]) -> StreamPort:
    m = ctx.mapping(d, key, ["prefix", "data_bits"], ["prefix", "data_bits"])
    return StreamPort(ctx.ident(m["prefix"], f"{key}.prefix"),
                      ctx.expr(m["data_bits"], f"{key}.data_bits", names))


def _stream(ctx: Ctx, d: dict[str, Any], names: list[str]) -> StreamIf:
    ctx.mapping(d, "interface", ["profile", "in", "out", "counter", "error", "input", "output"],
                ["in", "out"])
    kw: dict[str, Any] = {}
    for k, default in (("counter", 32), ("error", 1)):
        if k in d:
            v = d[k] if isinstance(d[k], dict) else {"port": d[k]}
            v = ctx.mapping(v, f"interface.{k}", ["port", "bits"], ["port"])
            kw[k] = ctx.ident(v["port"], f"interface.{k}.port")
            kw[f"{k}_bits"] = ctx.integer(v.get("bits", default), f"interface.{k}.bits", 1, 64)
    if "input" in d:
        inp = ctx.mapping(d["input"], "interface.input", ["word_bits", "lane_bits", "items"],
                          ["items"])
        kw["word_bits"] = ctx.integer(inp.get("word_bits", 32), "interface.input.word_bits", 1, 64)
        kw["lane_bits"] = ctx.integer(inp.get("lane_bits", 8), "interface.input.lane_bits", 1, 64)
        items = []
        for i, it in enumerate(ctx.items(inp["items"], "interface.input.items", 64, False)):
            key = f"interface.input.items[{i}]"
            it = ctx.mapping(it, key, ["words", "channels", "matrix"])
            if len(it) != 1:
                raise ctx.err(key, "needs exactly one of words, channels, matrix")
            (kind, v), = it.items()
            if kind == "words":
                ws = ctx.items(v, f"{key}.words", 256)
                items.append(Item("words", words=tuple(
                    ctx.expr(w, f"{key}.words[{j}]", [*GEMM_FIELDS, "layer", *names])
                    for j, w in enumerate(ws))))
            elif kind == "channels":
                fs = ctx.items(v, f"{key}.channels", 8)
                items.append(Item("channels", fields=tuple(
                    ctx.choice(f, f"{key}.channels[{j}]", ("bias", "m0", "sh"))
                    for j, f in enumerate(fs))))
            else:
                items.append(Item("matrix", operand=ctx.choice(v, f"{key}.matrix", ("x", "w"))))
        kw["items"] = tuple(items)
        if "output" not in d:
            raise ctx.err("interface", "a declared input frame needs an 'output' declaration")
    if "output" in d:
        out = ctx.mapping(d["output"], "interface.output", ["lane_bits"], ["lane_bits"])
        kw["out_lane_bits"] = ctx.expr(out["lane_bits"], "interface.output.lane_bits", names)
        if "input" not in d:
            raise ctx.err("interface", "a declared output needs a declared 'input' frame")
    return StreamIf("stream", _port(ctx, d["in"], "interface.in", names),
                    _port(ctx, d["out"], "interface.out", names), **kw)


def _reg(ctx: Ctx, r: Any, key: str, names: list[str]) -> Register:
    m = ctx.mapping(r, key, ["addr", "value", "name"], ["addr", "value"])
    if "name" in m:
        ctx.string(m["name"], f"{key}.name", max_len=64)
    return Register(ctx.expr(m["addr"], f"{key}.addr", names),
                    ctx.expr(m["value"], f"{key}.value", names))


def _axi(ctx: Ctx, d: dict[str, Any], names: list[str]) -> AxiIf:
    ctx.mapping(d, "interface", ["profile", "control", "memory", "operands", "registers",
                                 "completion", "status", "after"],
                ["control", "memory", "registers", "completion"])
    c = ctx.mapping(d["control"], "interface.control", ["prefix", "addr_bits", "prot"],
                    ["prefix", "addr_bits"])
    m = ctx.mapping(d["memory"], "interface.memory",
                    ["prefix", "addr_bits", "data_bits", "id_bits", "size", "read_latency",
                     "write_latency", "align"], ["prefix", "data_bits", "size"])
    mk = "interface.memory"
    data_bits = ctx.integer(m["data_bits"], f"{mk}.data_bits", 32, 1024)
    if data_bits & (data_bits - 1):
        raise ctx.err(f"{mk}.data_bits", f"must be a power of two, got {data_bits}")
    mem = AxiMemory(prefix=ctx.ident(m["prefix"], f"{mk}.prefix"),
                    addr_bits=ctx.integer(m.get("addr_bits", 32), f"{mk}.addr_bits", 12, 64),
                    data_bits=data_bits,
                    id_bits=ctx.integer(m.get("id_bits", 0), f"{mk}.id_bits", 0, 32),
                    size=ctx.integer(m["size"], f"{mk}.size", 64, MAX_MEM_BYTES),
                    read_latency=ctx.integer(m.get("read_latency", 1), f"{mk}.read_latency",
                                             1, 1000),
                    write_latency=ctx.integer(m.get("write_latency", 1), f"{mk}.write_latency",
                                              1, 1000),
                    align=ctx.integer(m.get("align", 64), f"{mk}.align", 1, 4096))
    if mem.size % (data_bits // 8):
        raise ctx.err(f"{mk}.size", f"must be a multiple of the {data_bits // 8}-byte data word")
    ops = []
    od = ctx.mapping(d.get("operands"), "interface.operands", OPERANDS,
                     ["x", "w", "y"] if "operands" in d else [])
    for name, o in od.items():
        key = f"interface.operands.{name}"
        o = ctx.mapping(o, key, ["elem_bits", "row_align"], ["elem_bits"])
        eb = ctx.integer(o["elem_bits"], f"{key}.elem_bits", 8, 32)
        if eb not in (8, 16, 32):
            raise ctx.err(f"{key}.elem_bits", f"must be 8, 16 or 32, got {eb}")
        ops.append(Operand(name, eb, ctx.integer(o.get("row_align", 1), f"{key}.row_align",
                                                 1, 4096)))
    rnames = [*GEMM_FIELDS, *names, "layer", "addr", "stride", "size"]
    regs = tuple(_reg(ctx, r, f"interface.registers[{i}]", rnames)
                 for i, r in enumerate(ctx.items(d["registers"], "interface.registers", 1024,
                                                 False)))
    comp = ctx.mapping(d["completion"], "interface.completion", ["irq", "done", "poll"])
    if len(comp) != 1:
        raise ctx.err("interface.completion", "needs exactly one of irq, done, poll")
    (kind, v), = comp.items()
    kw: dict[str, Any] = {}
    if kind == "poll":
        p = ctx.mapping(v, "interface.completion.poll", ["addr", "mask", "value"],
                        ["addr", "mask", "value"])
        kw["poll"] = tuple(ctx.expr(p[k], f"interface.completion.poll.{k}", names)
                           for k in ("addr", "mask", "value"))
    else:
        kw["signal"] = ctx.ident(v, f"interface.completion.{kind}")
    if "status" in d:
        s = ctx.mapping(d["status"], "interface.status", ["cycles", "error"])
        if "cycles" in s:
            kw["status_cycles"] = ctx.expr(s["cycles"], "interface.status.cycles", names)
        if "error" in s:
            e = ctx.mapping(s["error"], "interface.status.error", ["addr", "mask", "names"],
                            ["addr", "mask"])
            kw["status_error"] = (ctx.expr(e["addr"], "interface.status.error.addr", names),
                                  ctx.expr(e["mask"], "interface.status.error.mask", names))
            if "names" in e:
                kw["error_names"] = tuple(
                    ctx.string(n, f"interface.status.error.names[{i}]", max_len=40)
                    for i, n in enumerate(ctx.items(e["names"], "interface.status.error.names",
                                                    32, False)))
    if "after" in d:
        kw["after"] = tuple(_reg(ctx, r, f"interface.after[{i}]", rnames)
                            for i, r in enumerate(ctx.items(d["after"], "interface.after", 64,
                                                            False)))
    return AxiIf("axi", ctx.ident(c["prefix"], "interface.control.prefix"),
                 ctx.integer(c["addr_bits"], "interface.control.addr_bits", 2, 32),
                 ctx.boolean(c.get("prot", False), "interface.control.prot"), mem,
                 tuple(ops), regs, kind, **kw)


def parse_interface(ctx: Ctx, data: Any, names: list[str]) -> BackdoorIf | StreamIf | AxiIf:
    """Validate the ``interface`` mapping; ``names`` are the Verilog parameters."""
    d = ctx.mapping(data, "interface", None, ["profile"])
    prof = ctx.choice(d["profile"], "interface.profile", PROFILES)
    if prof == "backdoor":
        ctx.mapping(d, "interface", ["profile", "err_names"])
        names_ = tuple(ctx.string(n, f"interface.err_names[{i}]", max_len=40)
                       for i, n in enumerate(ctx.items(d.get("err_names", ["-"]),
                                                       "interface.err_names", 64)))
        return BackdoorIf("backdoor", () if names_ == ("-",) else names_)
    if prof == "stream":
        return _stream(ctx, d, names)
    return _axi(ctx, d, names)
