"""Our accelerator's front door (``rtl/t2c_axi_accel.v``) as a DUT of the ``axi`` profile.

The DUT file ``t2c_sim/cosim/duts/t2c_axi_accel.yaml`` (``--dut t2c_axi_accel``) declares the
ports, the register program and the memory timing; this adapter does what YAML cannot: place a
GEMM in memory the way the DMA reads it, read the results back, and predict the cycles. Per
GEMM (a linear layer, or one group of a conv):

1. :func:`op_gemm`: the GEMM as a linear record on the array (the DUT's parameters,
   :func:`t2c_sim.cosim.accel.dut_hw`) and its tile plan, exactly as the back door plans it.
2. :meth:`T2cAxiAccelAdapter.axi_layout`: :func:`t2c_sim.estimate.frontdoor.layout` places the
   descriptors, the operand segments and the result segments; the image holds every run's
   scratchpad words (the back door's packers, :func:`t2c_sim.cosim.accel.run_words`; a word of
   ``W`` bits as ``ceil(W / DATA_W)`` beats, low bits first), one descriptor per run (its plan
   words and segment addresses) and a seeded canary over the results (a result the DMA never
   writes cannot pass).
3. The profile loads the image into the memory model in bulk and plays the DUT file's register
   program over AXI4-Lite (``IRQ_EN``, ``DESC_ADDR``, ``DESC_COUNT``, ``START``; the interrupt;
   ``CYCLES`` and ``ERR`` read; ``IRQ_STATUS`` cleared): the DMA fetches the descriptors and
   operands over AXI4, runs the core per run and writes outputs and accumulators back.
4. :meth:`T2cAxiAccelAdapter.axi_unpack`: the out and acc words of the result region back into
   ``y`` and ``acc``.
5. :meth:`T2cAxiAccelAdapter.cycles`: :func:`t2c_sim.estimate.frontdoor.command_cycles` of the
   same layout plus the register program (:func:`t2c_sim.estimate.frontdoor.program_cycles`),
   for the memory latencies the DUT file declares and the burst length of its parameters:
   the profile fails a job whose measured cycles differ.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from t2c_sim import estimate
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim import features
from t2c_sim.cosim.accel import Gemm, default_packed, dut_hw, run_words, to_gemm
from t2c_sim.cosim.gemm import GemmOp
from t2c_sim.errors import ConfigError, SimulationError
from t2c_sim.estimate import frontdoor as fd
from t2c_sim.estimate.frontdoor import AxiConfig, Layout
from t2c_sim.export import iface
from t2c_sim.export.hexfile import unpack_beats
from t2c_sim.record import MAC_OPS, LayerRecord

__all__ = ["T2cAxiAccelAdapter", "op_gemm", "axi_config", "MAX_BURST", "QDEPTH"]

#: The memory model's longest burst and queue depth in the axi profile's harness.
MAX_BURST, QDEPTH = 256, 16
#: DUT parameters behind each :class:`AxiConfig` field (for error messages).
_AXI_PARAMS = {"data_w": "DATA_W", "burst_len": "BURST_LEN", "outstanding": "OUTSTANDING"}


def axi_config(dut: Any) -> AxiConfig:
    """The front door's bus and memory timing: ``DATA_W``, ``BURST_LEN``, ``OUTSTANDING`` from
    the DUT's parameters, the latencies from the DUT file's ``interface.memory``.

    Raises:
        ConfigError: A value the front door cannot build, or a memory width other than
            ``DATA_W`` (naming the parameter or key).
    """
    mem = dut.spec.interface.memory
    p = dut.params
    if p.get("DATA_W") != mem.data_bits:
        where = dut.param_key("DATA_W") if "DATA_W" in dut.overrides else \
            {"file": str(dut.spec.file), "key": "interface.memory.data_bits"}
        raise ConfigError(f"the DMA's DATA_W={p.get('DATA_W')} must equal the memory's data_bits "
                          f"{mem.data_bits} (a copy of the DUT file with both changed runs "
                          "another width)", **where)
    try:
        return AxiConfig(data_w=p["DATA_W"], burst_len=p["BURST_LEN"],
                         outstanding=p["OUTSTANDING"], rd_latency=mem.read_latency,
                         wr_latency=mem.write_latency, max_burst=MAX_BURST, qdepth=QDEPTH)
    except ConfigError as e:
        name = _AXI_PARAMS.get(e.key or "")
        if name is None:
            raise ConfigError(e.detail, file=str(dut.spec.file),
                              key=f"interface.memory.{e.key}") from None
        raise ConfigError(e.detail, **dut.param_key(name)) from None


def _linear(op: GemmOp | dict[str, Any], name: str) -> LayerRecord:
    """A GEMM as a linear record (``P`` rows of ``K``): what plan and packers take."""
    if isinstance(op, GemmOp):
        return LayerRecord(name=name, op=OpKind.LINEAR, a_bits=op.a_bits, a_signed=op.a_signed,
                           w_bits=op.w_bits, y_signed=op.y_signed, acc_bits=op.acc_bits,
                           n=op.n, m=op.m, c_in=op.k, c_out=op.cols, z_y=op.z_y, lo=op.lo,
                           hi=op.hi, mode=op.mode, w_q=op.w, bias_eff=op.bias, M0=op.m0,
                           sh=op.sh)
    return LayerRecord(name=name, op=OpKind.LINEAR, n=int(op["N"]), m=int(op["M"]),
                       c_in=int(op["K"]), c_out=int(op["C_out"]))


def op_gemm(op: GemmOp, hw: HwConfig) -> Gemm:
    """The GEMM ``op`` on the array ``hw``: operands (weights re-compressed to ``hw.n:hw.m``)
    and the back door's tile plan (:func:`t2c_sim.cosim.accel.to_gemm`)."""
    return to_gemm(_linear(op, f"{op.layer}#{op.index}"), hw, op.x, checked=True)


class T2cAxiAccelAdapter:
    """The adapter of ``t2c_axi_accel`` (module docstring). ``dut`` is the bound DUT."""

    def __init__(self, dut: Any) -> None:
        self.dut = dut
        self.hw: HwConfig = dut_hw(dut)
        self.axi: AxiConfig = axi_config(dut)
        self.writes = len(dut.spec.interface.registers)

    # -- build
    def build_params(self, sim: str) -> dict[str, int]:
        """The PE array implementation each simulator runs fastest (unless ``--dut-param``)."""
        if "PACKED" in self.dut.overrides:
            return {}
        return {"PACKED": int(default_packed(sim))}

    # -- what the build runs beyond the DUT file's accepts (its features)
    def check(self, rec: LayerRecord) -> None:
        """Refuse what the core's build features do not cover (:func:`features.check_features`)."""
        features.check_features(rec, self.hw, self.dut.name)

    # -- the cycle model
    def _plan_layout(self, rec: LayerRecord, rows: int, token_wise: bool | None = None,
                     ) -> tuple[estimate.TilePlan, Layout]:
        plan = estimate.tile_plan(rec, self.hw, rows=rows)
        tw = estimate.per_row_params(rec) if token_wise is None else token_wise
        return plan, fd.layout(plan, self.hw, self.axi, acc=True, rowpar=tw)

    def shape_cycles(self, rows: int, k: int, cols: int, n: int, m: int,
                     token_wise: bool = False) -> int:
        """Front-door cycles of one GEMM command (first register write to the interrupt);
        ``token_wise``: per-row parameters (the ch segments hold one word per row)."""
        rec = _linear({"K": k, "C_out": cols, "N": n, "M": m}, "gemm")
        _, lay = self._plan_layout(rec, rows, token_wise)
        cmd = fd.command_cycles(lay.jobs, self.hw, self.axi, desc_addr=lay.desc_addr)
        return fd.program_cycles(cmd, self.writes)

    def cycles(self, layer: dict[str, Any], params: dict[str, int]) -> int:
        """The DUT's cycle model per GEMM (``cycles: {model: adapter}``)."""
        return self.shape_cycles(int(layer["rows"]), int(layer["K"]), int(layer["C_out"]),
                                 int(layer["N"]), int(layer["M"]),
                                 bool(layer.get("token_wise", 0)))

    def layer_cycles(self, rec: LayerRecord) -> int:
        """A layer's front-door cycles: one command per GEMM (per conv group)."""
        if rec.op not in MAC_OPS:
            raise ConfigError(f"{rec.op.value} is not a MAC layer", layer=rec.name)
        groups = rec.groups if rec.op is OpKind.CONV2D else 1
        return groups * self.shape_cycles(estimate.gemm_rows(rec), rec.k, rec.c_out // groups,
                                          rec.n, rec.m, estimate.per_row_params(rec))

    def utilization(self, rec: LayerRecord) -> float:
        """Useful MACs per PE and front-door cycle (the core's utilization scaled by the part
        of the time the core computes)."""
        core = estimate.cycles(rec, self.hw)
        return float(estimate.utilization(rec, self.hw)) * core / max(1, self.layer_cycles(rec))

    # -- operands in, results out
    def axi_layout(self, op: GemmOp) -> tuple[np.ndarray, dict[str, tuple[int, int, int]]]:
        """The memory image of ``op`` and its regions ``desc`` and ``y`` (module docstring)."""
        gm = op_gemm(op, self.hw)
        lay = fd.layout(gm.plan, self.hw, self.axi, acc=True, rowpar=op.token_wise)
        axi = self.axi
        nbytes = {k: axi.beats(b) * axi.bytes for k, b in fd.word_bits(self.hw).items()}
        img = np.zeros(lay.end, dtype=np.uint8)
        seed = zlib.crc32(f"{op.layer}/{op.index}".encode())
        img[lay.out_base:] = np.random.default_rng(seed).integers(0, 256, lay.end - lay.out_base,
                                                                  dtype=np.uint8)
        off = iface.plan_offsets()
        placed: set[int] = set()
        for j, job in enumerate(lay.jobs):
            words, pw = run_words(gm, gm.plan.tiles[job.tile], job.chunk)
            segs = {"act": job.act, "wgt": job.wgt, "ch": job.ch}
            got = (pw[off["n_act"]], pw[off["n_wgt"]], pw[off["n_ch"]], pw[off["n_out"]])
            if got != (job.act.words, job.wgt.words, job.ch.words, job.out.words):
                raise SimulationError(f"layer {op.layer} run {job.run}: plan words {got} "
                                      "disagree with the front-door layout")
            for kind, limbs in words.items():
                seg = segs[kind]
                if seg.addr in placed:
                    continue
                raw = np.ascontiguousarray(limbs.astype("<u8")).view(np.uint8)
                raw = raw.reshape(seg.words, -1)
                w = min(raw.shape[1], nbytes[kind])
                block = np.zeros((seg.words, nbytes[kind]), dtype=np.uint8)
                block[:, :w] = raw[:, :w]
                img[seg.addr:seg.addr + block.size] = block.reshape(-1)
                placed.add(seg.addr)
            flags = pw[off["flags"]]
            f = {n: pw[off[n]] for n in fd.DESC_FIELDS[:8]}
            f.update(first=int(bool(flags & iface.FLAG_FIRST)),
                     last=int(bool(flags & iface.FLAG_LAST)))
            for name, seg in (("act", job.act), ("wgt", job.wgt), ("ch", job.ch),
                              ("out", job.out), ("acc", job.acc)):
                f[f"{name}_addr"], f[f"{name}_words"] = seg.addr, seg.words
            desc = np.asarray([f[n] & 0xFFFFFFFF for n in fd.DESC_FIELDS], dtype="<u4")
            a = lay.desc_addr + fd.DESC_BYTES * j
            img[a:a + desc.nbytes] = desc.view(np.uint8)
        runs = len(lay.jobs)
        return img, {"desc": (lay.desc_addr, fd.DESC_BYTES, runs * fd.DESC_BYTES),
                     "y": (lay.out_base, 0, lay.end - lay.out_base)}

    def axi_unpack(self, op: GemmOp, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(y, acc)`` of ``op`` from the result region's bytes (from ``out_base``)."""
        hw, axi = self.hw, self.axi
        plan, lay = self._plan_layout(_linear(op, op.layer), op.rows)
        y = np.zeros((op.rows, op.cols), dtype=np.int64)
        acc = np.zeros_like(y)
        for job in lay.jobs:
            if not job.out.words:
                continue
            t = plan.tiles[job.tile]
            cb = -(-t.cols // hw.cols)
            for arr, seg, kind, bits in ((y, job.out, "out", iface.Y_BITS),
                                         (acc, job.acc, "acc", hw.acc_bits)):
                nb = axi.beats(fd.word_bits(hw)[kind]) * axi.bytes
                a = seg.addr - lay.out_base
                raw = np.asarray(region[a:a + seg.words * nb], dtype=np.uint8)
                lanes = unpack_beats(raw.reshape(seg.words, nb), [bits] * hw.cols, True)
                arr[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = \
                    lanes.reshape(t.rows, cb * hw.cols)[:, :t.cols]
        return y, acc
