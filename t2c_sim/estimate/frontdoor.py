"""Exact cycle model of the front door (``rtl/t2c_axi_accel.v``) and the memory layout it reads.

The front door runs a layer as one **command**: the host writes ``DESC_ADDR``, ``DESC_COUNT``
and ``START`` (one AXI4-Lite write of three words), the DMA walks one descriptor per run of the
tile plan (:func:`t2c_sim.estimate.tile_plan`), reads each run's operands from memory into the
scratchpads, runs the core, writes the outputs (and accumulators) back, and raises the
interrupt. :func:`layout` places a layer in memory (the host writes exactly that image);
:func:`command_cycles` replays the DMA burst by burst against the memory model
``t2c_sim/cosim/hdl/t2c_axi_mem.v`` and returns the cycles from the START write to the
interrupt, exactly; :func:`frontdoor_cycles` adds the register writes.

Timing of the parts (clock edges; ``L``, ``WL``: memory read / write latency; ``O``: the DMA's
bursts in flight; every handshake on the memory side is immediate: the memory's queues are at
least ``O`` deep and the DMA's RREADY / BREADY are always high):

* A read task accepted at edge ``A`` presents burst ``k`` (cut by :func:`bursts`) at edge
  ``c_k = max(c_{k-1} + 1, e_{k-O})`` (``c_0 = A + 1``), its AR is taken at ``a_k = c_k + 1``,
  and its beats are taken at edges ``v_k + 1 .. e_k = v_k + len_k`` with
  ``v_k = max(a_k + L, e_{k-1})``.
* A write task accepted at edge ``D`` presents AW ``k`` at ``c_k = max(c_{k-1} + 1, b_{k-O})``
  (``c_0 = D + 1``), taken at ``a_k = c_k + 1``; W beats (one priming cycle, then one per
  cycle) are taken from ``f_k = max(e_{k-1} + 1, a_k + 1)`` (``f_0 = max(D + 2, a_0 + 1)``) to
  ``e_k = f_k + len_k - 1``; B is taken at ``b_k = e_k + WL + 1``.
* The sequencer, with ``S`` the edge that takes the START write: descriptor ``0`` is fetched
  from ``S + 2`` (direct mode: the load starts at ``S + 3``); a descriptor fetched by edge
  ``E`` is checked and its load starts at ``max(E + 3, D_{j-1})``; job ``j`` starts the core at
  ``C_j = max(E_load + 2, e_store(j-1) + 1)`` (its loads done, the previous job's results read
  out); the next descriptor is fetched from ``C_j + 1``; the core is done and the store and the
  next load start at ``D_j = C_j + W_j + 1`` (``W_j``: the core's cycle counter,
  :func:`t2c_sim.estimate.tile_cycles`); the interrupt is high after edge ``b_last + 2``.

So ``command_cycles = b_last + 2 - S``; the ``CYCLES`` register reads 2 less.

The register program (:func:`program_cycles`) is what the ``axi`` interface profile plays
(``t2c_sim/cosim/duts/t2c_axi_accel.yaml``: ``IRQ_EN``, ``DESC_ADDR``, ``DESC_COUNT``,
``START``, then wait for the interrupt). Its AXI4-Lite master issues one write every
:data:`WRITE_EDGES` edges against ``t2c_axil_regs`` (a fetch edge, AW and W taken together
on the next, B on the one after), and the profile counts the edges from the first write's AW
handshake to the edge that samples the interrupt high, both included: ``WRITE_EDGES *
(writes - 1) + command_cycles + 2`` (:func:`frontdoor_cycles`).

Memory layout (:func:`layout`; docs/rtl.md "Front door"): descriptors first (128 bytes each,
20 little-endian 32-bit fields), then the operands: every act segment (one row tile and chunk,
shared by the channel tiles), wgt segment (one channel tile and chunk, shared by the row tiles)
and ch segment (one channel tile) once, then per tile the out and acc words. A scratchpad word
of ``W`` bits takes ``ceil(W / DATA_W)`` beats, low bits first; every segment starts at a
multiple of ``BURST_LEN * DATA_W / 8`` bytes, so the cycles depend on the plan only.
No simulator; the word widths come from :mod:`t2c_sim.export.iface` (their one owner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from t2c_sim.config import HwConfig
from t2c_sim.errors import ConfigError
from t2c_sim.estimate.model import Tile, TilePlan, per_row_params, tile_cycles, tile_plan
from t2c_sim.export import iface
from t2c_sim.record import LayerRecord

__all__ = ["AxiConfig", "Segment", "Job", "Layout", "DESC_FIELDS", "DESC_BYTES", "Y_BITS",
           "SH_BITS", "WRITE_EDGES", "PROGRAM_WRITES", "IRQ_AFTER_LAST_B", "word_bits",
           "bursts", "layout", "command_cycles", "program_cycles", "frontdoor_cycles",
           "FrontDoorCycles"]

#: Output / clamp width and shift width of the accelerator build (owned by t2c_sim.export.iface).
Y_BITS = iface.Y_BITS
SH_BITS = iface.SH_BITS
#: The 20 fields of a job (job registers 0x80.. and a descriptor's words), in order.
DESC_FIELDS = ("rows", "groups", "cols", "a_signed", "z_y", "lo", "hi", "mode", "first", "last",
               "act_addr", "act_words", "wgt_addr", "wgt_words", "ch_addr", "ch_words",
               "out_addr", "out_words", "acc_addr", "acc_words")
DESC_BYTES = 128          # descriptor stride in memory
WRITE_EDGES = 3           # edges per register write of the axi profile's AXI4-Lite master
PROGRAM_WRITES = 4        # IRQ_EN, DESC_ADDR, DESC_COUNT, START (the DUT file's program)
IRQ_AFTER_LAST_B = 2      # edges from the last B handshake to irq_o high (fin_o, IRQ_STATUS)


@dataclass(frozen=True)
class AxiConfig:
    """A front-door build: the DMA's bus and the memory model's timing.

    Attributes:
        data_w: AXI4 data width in bits (power of two, 32..1024).
        burst_len: The DMA's longest INCR burst in beats (power of two, 1..256,
            ``burst_len * data_w / 8 <= 4096``).
        outstanding: Bursts the DMA keeps in flight per direction (1..15).
        rd_latency: Memory cycles from the AR handshake to the first RVALID (>= 1).
        wr_latency: Memory cycles from the last W handshake to BVALID (>= 1).
        max_burst: Longest burst the memory accepts (longer ones answer SLVERR).
        qdepth: Bursts the memory queues per direction (power of two, >= outstanding).
    """

    data_w: int = 64
    burst_len: int = 16
    outstanding: int = 4
    rd_latency: int = 4
    wr_latency: int = 4
    max_burst: int = 256
    qdepth: int = 16

    def __post_init__(self) -> None:
        def pow2(v: int) -> bool:
            return v > 0 and v & (v - 1) == 0

        checks = (
            ("data_w", pow2(self.data_w) and 32 <= self.data_w <= 1024,
             "a power of two in 32..1024"),
            ("burst_len", pow2(self.burst_len) and self.burst_len <= 256
             and self.burst_len * self.data_w // 8 <= 4096,
             "a power of two in 1..256 with burst_len * data_w / 8 <= 4096"),
            ("outstanding", 1 <= self.outstanding <= 15, "in 1..15"),
            ("rd_latency", self.rd_latency >= 1, ">= 1"),
            ("wr_latency", self.wr_latency >= 1, ">= 1"),
            ("max_burst", 1 <= self.max_burst <= 256, "in 1..256"),
            ("qdepth", pow2(self.qdepth) and self.outstanding <= self.qdepth <= 64,
             "a power of two in outstanding..64"),
        )
        for key, ok, want in checks:
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or not ok:
                raise ConfigError(f"must be {want}, got {v!r}", key=key)

    @property
    def bytes(self) -> int:
        """Bytes per beat."""
        return self.data_w // 8

    def beats(self, bits: int) -> int:
        """Beats one memory word of ``bits`` bits occupies."""
        return -(-bits // self.data_w)

    @property
    def align(self) -> int:
        """Segment alignment of :func:`layout`: one burst window, ``burst_len * bytes``."""
        return self.burst_len * self.bytes


@dataclass(frozen=True)
class Segment:
    """``words`` scratchpad words at byte address ``addr`` (0 words: nothing moves)."""

    addr: int = 0
    words: int = 0


@dataclass(frozen=True)
class Job:
    """One accelerator run as the DMA executes it (a descriptor).

    ``run`` is the run's number within the layer (:func:`t2c_sim.cosim.run.run_index`),
    ``core_cycles`` the core's cycle counter for it.
    """

    run: int
    tile: int
    chunk: int
    core_cycles: int
    act: Segment
    wgt: Segment
    ch: Segment
    out: Segment
    acc: Segment


@dataclass(frozen=True)
class Layout:
    """A layer placed in memory: descriptors at ``desc_addr``, then operands, then results.

    Attributes:
        desc_addr: Byte address of descriptor 0 (descriptor ``j`` at ``+ 128 * j``).
        jobs: One per run, in execution order.
        out_base: First byte of the results (out and acc words of every tile).
        end: One past the last byte used.
    """

    desc_addr: int
    jobs: tuple[Job, ...]
    out_base: int
    end: int


def word_bits(hw: HwConfig) -> dict[str, int]:
    """Bits of one memory word of each segment kind (the scratchpad words of ``t2c_accel_top``,
    :func:`t2c_sim.export.iface.widths`) and of a descriptor."""
    w = iface.widths(hw)
    return {"act": w.act, "wgt": w.wgt, "ch": w.ch, "out": w.out, "acc": w.acc,
            "desc": 32 * len(DESC_FIELDS)}


def bursts(addr: int, beats: int, axi: AxiConfig) -> list[int]:
    """Burst lengths of a transfer of ``beats`` beats at byte ``addr`` (``rtl/t2c_axi_burst.v``).

    Bursts end at multiples of ``burst_len * bytes``: ``bursts(0x10, 7, AxiConfig(burst_len=4))
    == [2, 4, 1]`` (8-byte beats).
    """
    out = []
    while beats > 0:
        n = min(beats, axi.burst_len - (addr // axi.bytes) % axi.burst_len)
        out.append(n)
        addr += n * axi.bytes
        beats -= n
    return out


def _ch_key(t: Tile, rowpar: bool) -> tuple[int, ...]:
    """Tiles sharing one ch segment: the same channels (per-row parameters: and rows)."""
    return (t.group, t.p0, t.rows, t.c0, t.cols) if rowpar else (t.c0, t.cols)


def layout(plan: TilePlan, hw: HwConfig, axi: AxiConfig, *, base: int = 0, acc: bool = True,
           rowpar: bool = False) -> Layout:
    """Place a layer's descriptors, operands and results in memory (see module docstring).

    Args:
        plan: The layer's tile plan.
        hw: The array.
        axi: The front-door build (beat width, burst window for the alignment).
        base: First byte to use (rounded up to the alignment).
        acc: Also write every tile's accumulators back (``acc_words`` = ``out_words``).
        rowpar: Per-row requantizer parameters (run-mode bit ROWPAR): each tile's ch segment is
            its rows' parameters, ``rows * ceil(cols / COLS)`` words for the rp memory (not
            shared between row tiles).

    Returns:
        The :class:`Layout`; runs in the plan's order (tile-major, chunks inner).
    """
    wb = word_bits(hw)
    k = {s: axi.beats(b) for s, b in wb.items()}
    al = axi.align
    pos = -(-base // al) * al
    desc_addr = pos
    nk = len(plan.chunks)
    pos += -(-plan.runs * DESC_BYTES // al) * al

    def alloc(kind: str, words: int) -> int:
        nonlocal pos
        addr = pos
        pos += -(-words * k[kind] * axi.bytes // al) * al
        return addr

    acts: dict[tuple[int, ...], int] = {}
    wgts: dict[tuple[int, ...], int] = {}
    chs: dict[tuple[int, ...], int] = {}
    rows_w = []
    for t in plan.tiles:
        qr, qc = -(-t.rows // hw.rows), -(-t.cols // hw.cols)
        for ci, (_, gs) in enumerate(plan.chunks):
            ka, kw = (t.group, t.p0, t.rows, ci), (t.c0, t.cols, ci)
            if ka not in acts:
                acts[ka] = alloc("act", qr * gs)
            if kw not in wgts:
                wgts[kw] = alloc("wgt", qc * gs)
            if ci == 0 and _ch_key(t, rowpar) not in chs:
                chs[_ch_key(t, rowpar)] = alloc("ch", t.rows * qc if rowpar else qc)
            rows_w.append((t, ci, gs, qr, qc))
    out_base = pos
    outs: dict[int, tuple[int, int]] = {}
    for t in plan.tiles:
        n = t.rows * -(-t.cols // hw.cols)
        outs[t.index] = (alloc("out", n), alloc("acc", n) if acc else 0)
    jobs = []
    for t, ci, gs, qr, qc in rows_w:
        first, last = ci == 0, ci == nk - 1
        n_out = t.rows * qc if last else 0
        oa, aa = outs[t.index]
        jobs.append(Job(
            run=t.index * nk + ci, tile=t.index, chunk=ci,
            core_cycles=tile_cycles(t, gs, hw, last=last),
            act=Segment(acts[(t.group, t.p0, t.rows, ci)], qr * gs),
            wgt=Segment(wgts[(t.c0, t.cols, ci)], qc * gs),
            ch=Segment(chs[_ch_key(t, rowpar)], t.rows * qc if rowpar else qc) if first
            else Segment(),
            out=Segment(oa, n_out) if n_out else Segment(),
            acc=Segment(aa, n_out) if (n_out and acc) else Segment()))
    return Layout(desc_addr, tuple(jobs), out_base, pos)


# ------------------------------------------------------------------------------ the replay
def _read(start: int, segs: Sequence[tuple[int, int]], axi: AxiConfig) -> int:
    """Edge taking the last beat of a read task accepted at edge ``start`` (segs: addr, beats)."""
    lens = [n for a, b in segs if b for n in bursts(a, b, axi)]
    o, lat = axi.outstanding, axi.rd_latency
    ends: list[int] = []
    c = start
    e_prev = -1
    for i, n in enumerate(lens):
        c = c + 1 if i < o else max(c + 1, ends[i - o])
        v = max(c + 1 + lat, e_prev)
        e_prev = v + n
        ends.append(e_prev)
    return e_prev


def _write(start: int, segs: Sequence[tuple[int, int]], axi: AxiConfig) -> tuple[int, int]:
    """``(last W edge, last B edge)`` of a write task accepted at edge ``start``."""
    lens = [n for a, b in segs if b for n in bursts(a, b, axi)]
    o, wl = axi.outstanding, axi.wr_latency
    bs: list[int] = []
    c, e = start, start   # the first beat can be taken at edge start + 2 at the earliest
    for i, n in enumerate(lens):
        c = c + 1 if i < o else max(c + 1, bs[i - o])
        f = max(e + 1, c + 2)
        e = f + n - 1
        bs.append(e + wl + 1)
    return e, bs[-1]


def command_cycles(jobs: Sequence[Job], hw: HwConfig, axi: AxiConfig, *, desc_addr: int = 0,
                   list_mode: bool = True) -> int:
    """Edges from the one that takes the START write to the one after which ``irq_o`` is high.

    Args:
        jobs: The command's jobs in order (list mode: the descriptors at ``desc_addr``; direct
            mode: exactly one, from the job registers).
        hw: The array (word widths).
        axi: The front-door build and memory timing.
        desc_addr: Byte address of descriptor 0 (list mode).
        list_mode: ``DESC_COUNT != 0``.

    The ``CYCLES`` register reads this minus 2. Exact for ``t2c_axi_mem`` (module docstring).
    """
    if not jobs:
        raise ConfigError("a command needs at least one job", key="jobs")
    if not list_mode and len(jobs) != 1:
        raise ConfigError(f"direct mode runs one job, got {len(jobs)}", key="jobs")
    k = {s: axi.beats(b) for s, b in word_bits(hw).items()}
    inf = -(1 << 62)
    s0 = 0
    if list_mode:
        e_f = _read(s0 + 2, [(desc_addr, k["desc"])], axi)
        ready = e_f + 3                      # descriptor 0 checked: its load may start
    else:
        ready = s0 + 3
    d_prev = inf                             # the core is free (done with the previous job)
    store_end = inf                          # the previous job's results are read out
    b_last = inf
    for j, job in enumerate(jobs):
        a_load = max(ready, d_prev)
        e_load = _read(a_load, [(job.act.addr, job.act.words * k["act"]),
                                (job.wgt.addr, job.wgt.words * k["wgt"]),
                                (job.ch.addr, job.ch.words * k["ch"])], axi)
        c0 = max(e_load + 2, store_end + 1)
        if list_mode and j + 1 < len(jobs):
            e_f = _read(c0 + 1, [(desc_addr + DESC_BYTES * (j + 1), k["desc"])], axi)
            ready = e_f + 3
        d = c0 + job.core_cycles + 1
        if job.out.words or job.acc.words:
            store_end, b = _write(d, [(job.out.addr, job.out.words * k["out"]),
                                      (job.acc.addr, job.acc.words * k["acc"])], axi)
            b_last = max(b_last, b)
        else:
            store_end = inf
            b_last = max(b_last, d)
        d_prev = d
    return b_last + IRQ_AFTER_LAST_B - s0


def program_cycles(command: int, writes: int = PROGRAM_WRITES) -> int:
    """Cycles the ``axi`` profile measures for a command started by the last of ``writes``
    register writes: from the first write's AW handshake edge to the edge that samples the
    interrupt, both included (module docstring)."""
    if writes < 1:
        raise ConfigError(f"a command needs at least one register write (START), got {writes}",
                          key="writes")
    return WRITE_EDGES * (writes - 1) + command + 2


@dataclass(frozen=True)
class FrontDoorCycles:
    """Predicted front-door cycles of one layer (one list-mode command).

    Attributes:
        total: From the edge taking the first register write to the edge sampling ``irq_o``
            high, both included (:func:`program_cycles`).
        lite: The register program's part (``total - command``).
        command: From the START write to ``irq_o`` (``CYCLES`` register + 2).
        core: Sum of the core's cycle counters (:func:`t2c_sim.estimate.cycles`).
        beats_read / beats_written: Memory beats moved.
    """

    total: int
    lite: int
    command: int
    core: int
    beats_read: int
    beats_written: int
    jobs: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def register(self) -> int:
        """What the ``CYCLES`` register reads."""
        return self.command - IRQ_AFTER_LAST_B


def frontdoor_cycles(rec: LayerRecord, hw: HwConfig, axi: AxiConfig | None = None, *,
                     rows: int | None = None, acc: bool = True,
                     writes: int = PROGRAM_WRITES) -> FrontDoorCycles:
    """Cycles of one layer through the front door, exactly (see the module docstring).

    Example: ``frontdoor_cycles(rec, hw, AxiConfig(rd_latency=8, burst_len=32)).total``.

    Args:
        rec: A linear or conv record.
        hw: The array.
        axi: Bus and memory timing (default :class:`AxiConfig`).
        rows: GEMM rows (default from the record, as :func:`t2c_sim.estimate.tile_plan`).
        acc: The layer also writes its accumulators back (as the co-simulation does).
        writes: Register writes of the program, the last one ``START``.
    """
    axi = axi or AxiConfig()
    plan = tile_plan(rec, hw, rows)
    lay = layout(plan, hw, axi, acc=acc, rowpar=per_row_params(rec))
    cmd = command_cycles(lay.jobs, hw, axi, desc_addr=lay.desc_addr)
    k = {s: axi.beats(b) for s, b in word_bits(hw).items()}
    rd = sum(j.act.words * k["act"] + j.wgt.words * k["wgt"] + j.ch.words * k["ch"] + k["desc"]
             for j in lay.jobs)
    wr = sum(j.out.words * k["out"] + j.acc.words * k["acc"] for j in lay.jobs)
    total = program_cycles(cmd, writes)
    return FrontDoorCycles(total=total, lite=total - cmd, command=cmd,
                           core=sum(j.core_cycles for j in lay.jobs), beats_read=rd,
                           beats_written=wr, jobs=len(lay.jobs))

