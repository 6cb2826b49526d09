"""The front door (``rtl/t2c_axi_accel.v``) from Python: layers through the DUT contract, and
register-level commands for the register block's own tests.

Layers go through ONE path, the ``axi`` interface profile with the DUT file
``t2c_sim/cosim/duts/t2c_axi_accel.yaml`` and its adapter (:mod:`t2c_sim.cosim.axi_accel`):
:func:`frontdoor_dut` binds it for an array and an :class:`~t2c_sim.estimate.frontdoor.AxiConfig`
(a copy of the DUT file with those latencies and burst settings when they differ from the
packaged ones, as a user would write one), :func:`run_layers_frontdoor` co-simulates records on
it (:func:`t2c_sim.cosim.engine.cosimulate`): outputs, accumulators and, per GEMM, the cycles
from the first register write to the interrupt, checked against
:mod:`t2c_sim.estimate.frontdoor` by the framework.

:func:`run_commands` is the register-level bench (``hdl/t2c_axi_harness.v`` +
``tb_axi_frontdoor.py``): cocotbext-axi's ``AxiLiteMaster`` writes and reads registers from
Python (read-back of the register map, SLVERR on unmapped addresses, refused descriptors,
fault injection by the memory model's SLVERR window, direct mode through the job registers)
against a memory image; it is not a way to run layers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from t2c_sim.config import HwConfig
from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.axi_accel import MAX_BURST, QDEPTH
from t2c_sim.cosim.dut import BUILTIN_DIR, Dut, DutSpec, load_dut
from t2c_sim.cosim.engine import cosimulate
from t2c_sim.cosim.result import CosimResult
from t2c_sim.cosim.run import RTL_MODULES, default_packed, hw_parameters
from t2c_sim.errors import ConfigError, SimulationError
from t2c_sim.estimate import frontdoor as fd
from t2c_sim.estimate.frontdoor import AxiConfig
from t2c_sim.export.hexfile import write_memh
from t2c_sim.record import LayerRecord

__all__ = ["REGS", "ID_VALUE", "AXI_RTL_MODULES", "TOPLEVEL", "DUT_FILE", "ERR_BITS",
           "axi_parameters", "axi_sources", "build_frontdoor", "frontdoor_dut",
           "run_layers_frontdoor", "run_commands", "err_names"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "hdl" / "t2c_axi_harness.v"
MEM_MODEL = HERE / "hdl" / "t2c_axi_mem.v"
TB_MODULE = HERE / "tb_axi_frontdoor.py"
TOPLEVEL = "t2c_axi_harness"
AXI_RTL_MODULES = ("t2c_axi_burst", "t2c_axi_rd", "t2c_axi_wr", "t2c_axi_dma", "t2c_axil_regs",
                   "t2c_axi_accel")
ID_VALUE = 0x54324341
#: Register byte addresses (rtl/t2c_axil_regs.v; docs/rtl.md "Front door (AXI)").
REGS = {"ID": 0x00, "VERSION": 0x04, "STATUS": 0x08, "ERR": 0x0C, "IRQ_EN": 0x10,
        "IRQ_STATUS": 0x14, "JOBS_DONE": 0x18, "CYCLES": 0x1C, "CORE_CYCLES": 0x20,
        **{f"HW_{n}": 0x30 + 4 * i for i, n in enumerate(
            ("ROWS", "COLS", "N", "M", "A_BITS", "W_BITS", "ACC_BITS", "MULT_BITS", "SHIFT_MAX",
             "ACT_DEPTH", "W_DEPTH", "OUT_DEPTH", "CH_DEPTH", "Y_BITS", "DATA_W", "BURST_LEN",
             "OUTSTANDING", "DESC_BYTES"))},
        **{f"JOB_{f.upper()}": 0x80 + 4 * i for i, f in enumerate(fd.DESC_FIELDS)},
        "DESC_ADDR": 0xD0, "DESC_COUNT": 0xD4, "START": 0xD8}
REG_END = 0xDC  # first unmapped address (SLVERR)
MIN_MEM_WORDS = 1 << 12
#: The front door's DUT file (``--dut t2c_axi_accel``).
DUT_FILE = BUILTIN_DIR / "t2c_axi_accel.yaml"


@functools.lru_cache(maxsize=1)
def _spec() -> DutSpec:
    return load_dut(DUT_FILE)


#: The ``ERR`` register's bits (their names are owned by the DUT file, ``status.error.names``).
ERR_BITS: tuple[str, ...] = _spec().interface.error_names


def err_names(err: int) -> str:
    """Names of the ``ERR`` register's set bits, comma-separated."""
    return ",".join(n for i, n in enumerate(ERR_BITS) if err >> i & 1) or "none"


# ------------------------------------------------------------------------------------ build
def axi_parameters(hw: HwConfig, axi: AxiConfig, packed: bool, mem_words: int) -> dict[str, int]:
    """Verilog parameters of ``t2c_axi_harness``."""
    top = {k: v for k, v in hw_parameters(hw, packed).items() if k != "SH_BITS"}
    return {**top, "DATA_W": axi.data_w, "BURST_LEN": axi.burst_len,
            "OUTSTANDING": axi.outstanding, "MEM_WORDS": mem_words, "RD_LAT": axi.rd_latency,
            "WR_LAT": axi.wr_latency, "MAX_BURST": axi.max_burst, "QDEPTH": axi.qdepth}


def axi_sources(rtl_dir: str | Path | None = None) -> list[Path]:
    """RTL (the core and the front door; from ``rtl_dir`` if given), memory model, harness."""
    names = (*RTL_MODULES, *AXI_RTL_MODULES)
    if rtl_dir is None:
        srcs = simmod.rtl_sources(*names)
    else:
        srcs = [Path(rtl_dir) / f"{m}.v" for m in names]
        for p in srcs:
            if not p.is_file():
                raise SimulationError(f"{p}: RTL source not found (rtl_dir must hold "
                                      f"{', '.join(m + '.v' for m in names)})")
    return [*srcs, MEM_MODEL, HARNESS]


def build_frontdoor(hw: HwConfig, axi: AxiConfig, sim: str = "verilator",
                    build_root: str | Path = "build/sim", *, mem_words: int = MIN_MEM_WORDS,
                    packed: bool | None = None, optimize: bool = True, waves: bool = False,
                    rtl_dir: str | Path | None = None,
                    build_args: Sequence[str] = ()) -> simmod.BuildInfo:
    """Build the front-door harness once per key (as :func:`t2c_sim.cosim.run.build_accel`;
    ``build_args`` are appended, e.g. coverage flags)."""
    args = []
    if sim == "verilator":
        args = ["--timing", "--no-public-flat-rw"] + ["-CFLAGS", "-O2" if optimize else "-O0"]
    args += list(build_args)
    packed = default_packed(sim) if packed is None else packed
    return simmod.build(sim, TOPLEVEL, axi_sources(rtl_dir),
                        axi_parameters(hw, axi, packed, mem_words), build_root, waves=waves,
                        build_args=args)


# ------------------------------------------------------------------------------------ image
def _write_memh_image(run_dir: Path, img: np.ndarray, axi: AxiConfig) -> int:
    """``mem.hex`` (one beat per line, beat 0 first) and ``mem_words.hex``; return the beats."""
    beats = img.size // axi.bytes
    lines = np.frombuffer(img.reshape(beats, axi.bytes)[:, ::-1].tobytes().hex().encode(),
                          dtype=np.uint8).reshape(beats, 2 * axi.bytes)
    out = np.full((beats, 2 * axi.bytes + 1), ord("\n"), dtype=np.uint8)
    out[:, :-1] = lines
    (run_dir / "mem.hex").write_bytes(out.tobytes())
    write_memh(run_dir / "mem_words.hex", [beats], 32)
    return beats


def _simulate(info: simmod.BuildInfo, run_dir: Path, commands: list[dict],
              readback: list[dict] | None, timeout_s: float) -> dict:
    """Run the testbench on ``run_dir`` (which holds the image); return ``results.json``."""
    payload = {"regs": REGS, "irq_en": 3, "commands": commands, "readback": readback or []}
    simmod.run(info, TB_MODULE, test_dir=run_dir, payload=payload, timeout_s=timeout_s)
    return json.loads((run_dir / "results.json").read_text())


def run_commands(hw: HwConfig, axi: AxiConfig, sim: str, commands: list[dict], *,
                 image: bytes = b"", readback: list[dict] | None = None,
                 build_root: str | Path = "build/sim", timeout_s: float = 300.0,
                 rtl_dir: str | Path | None = None, packed: bool | None = None,
                 build_args: Sequence[str] = ()) -> dict:
    """Run raw register commands against a memory image (register-level tests).

    Args:
        hw, axi, sim, build_root, rtl_dir: As :func:`run_layers_frontdoor`.
        packed, build_args: As :func:`build_frontdoor`.
        commands: Testbench commands (``name``, ``writes``, ``limit``, optional ``run_base``,
            ``err_window``, ``dump``; see ``tb_axi_frontdoor.py``).
        image: Memory contents (little-endian bytes from address 0).
        readback: Register checks run first (``tb_axi_frontdoor.readback``).

    Returns:
        The testbench's results: ``{"commands": [...], "readback": [failures], "run_dir"}``
        (the run directory keeps the dumps, ``out<id>.hex``).
    """
    img = np.frombuffer(image, dtype=np.uint8)
    pad = -img.size % axi.bytes
    img = np.concatenate([img, np.zeros(pad, dtype=np.uint8)])
    beats = img.size // axi.bytes
    info = build_frontdoor(hw, axi, sim, build_root,
                           mem_words=max(MIN_MEM_WORDS, 1 << max(0, beats - 1).bit_length()),
                           rtl_dir=rtl_dir, packed=packed, build_args=build_args)
    runs = info.build_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="cmds-", dir=runs))
    _write_memh_image(run_dir, img, axi)
    cmds = [{"run_base": 0, "err_window": None, "dump": None, **c} for c in commands]
    return {**_simulate(info, run_dir, cmds, readback, timeout_s), "run_dir": str(run_dir)}




# ------------------------------------------------------------------------------------ layers
def frontdoor_dut(hw: HwConfig, axi: AxiConfig | None = None, *,
                  build_root: str | Path = "build/sim", rtl_dir: str | Path | None = None,
                  overrides: dict[str, int] | None = None) -> Dut:
    """The front door's DUT bound to the array ``hw`` for the bus and memory timing ``axi``.

    The packaged DUT file when ``axi`` is its own and ``rtl_dir`` is ``None``; otherwise a copy
    with ``axi``'s latencies, width and burst settings (and the sources from ``rtl_dir``, a
    mutant in a test) written under ``build_root/generated/duts`` (named by its content).

    Raises:
        ConfigError: ``axi`` asks for a memory the profile's harness does not build
            (``max_burst`` other than 256, ``qdepth`` other than 16).
    """
    axi = axi or AxiConfig()
    if (axi.max_burst, axi.qdepth) != (MAX_BURST, QDEPTH):
        raise ConfigError(f"the axi profile's memory takes bursts of up to {MAX_BURST} beats "
                          f"and queues {QDEPTH}, got {axi.max_burst} and {axi.qdepth}",
                          key="max_burst")
    data = yaml.safe_load(DUT_FILE.read_text(encoding="utf-8"))
    mem = data["interface"]["memory"]
    want = {"DATA_W": axi.data_w, "BURST_LEN": axi.burst_len, "OUTSTANDING": axi.outstanding}
    same = all(data["parameters"][k] == v for k, v in want.items()) and \
        (mem["read_latency"], mem["write_latency"]) == (axi.rd_latency, axi.wr_latency)
    path = DUT_FILE
    if not same or rtl_dir is not None:
        data["parameters"].update(want)
        mem.update(data_bits=axi.data_w, read_latency=axi.rd_latency,
                   write_latency=axi.wr_latency)
        if rtl_dir is not None:
            # absolute: the copy lives under build_root, and rtl_dir may be relative
            data["sources"] = [str(Path(p).resolve()) for p in axi_sources(rtl_dir)[:-2]]
        text = yaml.safe_dump(data, sort_keys=False)
        d = Path(build_root).resolve() / "generated" / "duts"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"t2c_axi_accel-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
    return load_dut(path).bind(hw, overrides)


def run_layers_frontdoor(layers: Sequence[LayerRecord | tuple[LayerRecord, np.ndarray | None]],
                         hw: HwConfig, sim: str = "verilator", axi: AxiConfig | None = None, *,
                         build_root: str | Path = "build/sim", rtl_dir: str | Path | None = None,
                         packed: bool | None = None, **kw: Any) -> list[CosimResult]:
    """Co-simulate layers through the front door in one simulator process.

    :func:`t2c_sim.cosim.engine.cosimulate` on :func:`frontdoor_dut` (``kw``: its options,
    ``optimize``, ``timeout_s``, ``keep``, ``tiles``, ``waves``, ``mutate``...). One unit per
    GEMM (a conv group): its measured cycles from the first register write to the interrupt
    and the model's (:func:`t2c_sim.cosim.compare.cycle_mismatch` judges them); ``extra``
    holds the ``CYCLES`` register per GEMM (``dut_cycles_<i>``).
    """
    over = {"PACKED": int(packed)} if packed is not None else None
    dut = frontdoor_dut(hw, axi, build_root=build_root, rtl_dir=rtl_dir, overrides=over)
    return cosimulate(dut, layers, sim, build_root=build_root, **kw)
