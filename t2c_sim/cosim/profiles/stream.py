"""The stream profile: AXI4-Stream in and out, HDL player and recorder loaded in bulk.

Every GEMM of every layer becomes one input *frame* (beats with ``tlast`` on the last one) and
an expected number of output beats. The frames are written once (``stream_in.hex``), the
generated harness (:mod:`t2c_sim.cosim.profiles.harness`) plays them one after the other into
the DUT's input stream and records its output stream, and Python reads the results after the
simulator exits: no Python in the per-beat loop. Both streams can be throttled by seeded LFSR
back-pressure (``backpressure = (input %, output %)``: the player withholds ``tvalid``, the
recorder ``tready``, with those probabilities per cycle).

The adapter protocol of this profile (the DUT file's ``input``/``output`` declaration gives a
default one, :class:`~t2c_sim.cosim.profiles.frames.DeclaredStream`):

* ``frame(op) -> uint8[beats, in_bytes]``: configure the layer and load its operands (the
  descriptor, parameters and operands of one GEMM, :class:`~t2c_sim.cosim.gemm.GemmOp`);
* ``out_beats(op) -> int``: how many output beats the GEMM produces (wait for completion);
* ``unpack(op, data uint8[beats, out_bytes], tlast bool[beats]) -> y[rows, cols]``: read the
  results (raise :class:`~t2c_sim.errors.MismatchError` for a framing error the DUT made).

Cycles of a frame: from the edge accepting its first input beat to the edge accepting its last
output beat, both included (the harness counts them); the DUT's model is
``cycles(op.shape(), params)``, exact without back-pressure. A DUT ``counter`` port must agree
with that count in every run.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.cosim import sim as simmod
from t2c_sim.cosim.gemm import GemmOp, gemm_ops
from t2c_sim.cosim.ifspec import MAX_BEATS
from t2c_sim.cosim.profiles.backdoor import find_wave
from t2c_sim.cosim.profiles.frames import DeclaredStream
from t2c_sim.cosim.profiles.harness import (
    build_generated,
    depth_tier,
    release_run_dir,
    stream_harness,
    write_harness,
)
from t2c_sim.cosim.result import CosimResult, TileResult
from t2c_sim.errors import ConfigError, MismatchError, RecordError, SimulationError, UnsupportedLayerError
from t2c_sim.export.hexfile import read_memh_bytes, read_memh_fields, write_memh, write_memh_bytes
from t2c_sim.record import LayerRecord

__all__ = ["run_stream", "TB_MODULE", "read_frames", "stream_widths", "MAX_FRAMES"]

log = logging.getLogger(__name__)

TB_MODULE = Path(__file__).resolve().parents[1] / "tb_frames.py"
MODELS = ("prof_lfsr_pause.v", "prof_stream_source.v", "prof_stream_sink.v")
MAX_FRAMES = 1 << 16


@dataclass
class Frame:
    """One GEMM of one layer as a stream frame."""

    layer: int
    op: GemmOp
    beats: np.ndarray
    out_beats: int
    predicted: int | None
    first: int = 0

    @property
    def name(self) -> str:
        return f"layer {self.op.layer} frame {self.op.index}"


def stream_widths(dut: Any) -> tuple[int, int]:
    """``(input, output)`` tdata widths of a stream DUT, from its parameters."""
    cfg = dut.spec.interface
    out = []
    for port, key in ((cfg.inp, "interface.in.data_bits"), (cfg.out, "interface.out.data_bits")):
        v = port.data_bits.eval(dict(dut.params))
        if not 1 <= v <= 4096:
            raise ConfigError(f"evaluates to {v}, expected 1..4096", file=str(dut.spec.file),
                              key=key)
        out.append(v)
    return out[0], out[1]


def _packer(dut: Any, in_bits: int, out_bits: int) -> Any:
    ad = dut.adapter
    if ad is not None and all(callable(getattr(ad, m, None)) for m in ("frame", "out_beats",
                                                                         "unpack")):
        return ad
    if dut.spec.interface.declared:
        return DeclaredStream(dut, in_bits, out_bits)
    raise ConfigError("a stream DUT needs an adapter with frame/out_beats/unpack, or an "
                      "'input'/'output' declaration", file=str(dut.spec.file), key="interface")


def _call(dut: Any, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call the adapter; its own exceptions become errors naming the DUT file (not a crash)."""
    try:
        return fn(*args)
    except (MismatchError, SimulationError, UnsupportedLayerError):
        raise
    except Exception as e:  # noqa: BLE001 - the user's adapter failing is the DUT's bad input
        raise ConfigError(f"the adapter's {what} failed: {type(e).__name__}: {e}",
                          file=str(dut.spec.file), key="adapter") from None


def read_frames(run_dir: Path) -> tuple[dict[int, list[int]], int | None]:
    """``frames.txt``: ``{frame: [first, last, counter, error, in, out]}`` and the beats recorded."""
    p = run_dir / "frames.txt"
    if not p.is_file():
        raise SimulationError(f"the harness wrote no frames.txt in {run_dir}")
    frames: dict[int, list[int]] = {}
    end = None
    for line in p.read_text().splitlines():
        f = line.split()
        if len(f) == 2 and f[0] == "end":
            end = int(f[1])
        elif len(f) == 7 and all(re.fullmatch(r"-?\d+", v) for v in f):
            frames[int(f[0])] = [int(v) for v in f[1:]]
        elif f:
            raise SimulationError(f"frames.txt: unreadable line {line!r} (X/Z in the DUT's "
                                  "counter or error port?)", file=str(p))
    return frames, end


def _frames(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]],
            tiles: list[list[int] | None] | None, packer: Any, in_bytes: int,
            ) -> tuple[list[list[GemmOp]], list[tuple[int, ...]], list[Frame]]:
    layer_ops, shapes, frames = [], [], []
    for li, (rec, x) in enumerate(pairs):
        ops, out_shape = gemm_ops(rec, x)
        layer_ops.append(ops)
        shapes.append(out_shape)
        want = None if tiles is None or tiles[li] is None else set(tiles[li])
        for i in want or ():
            if not 0 <= i < len(ops):
                raise SimulationError(f"frame {i} is not one of the {len(ops)} frames",
                                      layer=rec.name)
        for op in ops:
            if want is not None and op.index not in want:
                continue
            beats = np.asarray(_call(dut, "frame()", packer.frame, op))
            if beats.dtype != np.uint8 or beats.ndim != 2 or beats.shape[1] != in_bytes \
                    or beats.shape[0] < 1:
                raise ConfigError(f"the adapter's frame() returned {beats.dtype} "
                                  f"{list(beats.shape)}, expected uint8 [beats >= 1, {in_bytes}]",
                                  file=str(dut.spec.file), key="adapter")
            n_out = int(_call(dut, "out_beats()", packer.out_beats, op))
            if n_out < 1:
                raise ConfigError(f"out_beats() returned {n_out} for layer {rec.name}",
                                  file=str(dut.spec.file), key="adapter")
            pred = dut.op_cycles(op) if dut.model is not None else None
            frames.append(Frame(li, op, beats, n_out, pred))
    return layer_ops, shapes, frames


def _limit(fr: Frame, bp: tuple[int, int], margin: int) -> int:
    """Watchdog cycles of a frame: twice the model (stretched by the back-pressure)."""
    base = fr.predicted if fr.predicted is not None else 100 * (len(fr.beats) + fr.out_beats)
    stretch = 1.0 / ((1 - bp[0] / 100) * (1 - bp[1] / 100))
    return int(2 * base * stretch) + margin + 4 * (len(fr.beats) + fr.out_beats)


def run_stream(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]], sim: str, *,
               build_root: str | Path, waves: bool = False,
               tiles: list[list[int] | None] | None = None, timeout_s: float | None = None,
               keep: bool = False, mutate: Callable[[Path], None] | None = None,
               optimize: bool = True, watchdog_margin: int = 1000,
               backpressure: tuple[int, int] = (0, 0), seed: int = 1,
               build_args: Sequence[str] = ()) -> list[CosimResult]:
    """Co-simulate ``pairs`` on a stream DUT in one simulator process (see the module docstring)."""
    t0 = time.monotonic()
    in_bits, out_bits = stream_widths(dut)
    in_bytes, out_bytes = -(-in_bits // 8), -(-out_bits // 8)
    packer = _packer(dut, in_bits, out_bits)
    layer_ops, shapes, frames = _frames(dut, pairs, tiles, packer, in_bytes)
    n_in = sum(len(f.beats) for f in frames)
    n_out = sum(f.out_beats for f in frames)
    if n_in > MAX_BEATS or n_out > MAX_BEATS or len(frames) > MAX_FRAMES:
        raise UnsupportedLayerError(
            f"layer {', '.join(r.name for r, _ in pairs)}: {len(frames)} frames of {n_in} input "
            f"and {n_out} output beats exceed the limits of one simulator process ({MAX_FRAMES} "
            f"frames, {MAX_BEATS} beats each way); co-simulate fewer layers at once")
    text = stream_harness(dut, in_bits, out_bits)
    harness = write_harness(text, build_root, dut.name)
    params = {"IN_DEPTH": depth_tier(n_in), "OUT_DEPTH": depth_tier(n_out),
              "MAX_FRAMES": depth_tier(len(frames), 64), **dut.params}
    info, run_dir = build_generated(dut, sim, harness, MODELS, params, build_root,
                                    name=pairs[0][0].name, waves=waves, optimize=optimize,
                                    build_args=build_args)
    t1 = time.monotonic()
    plan = [len(frames)]
    first = 0
    for fr in frames:
        fr.first = first
        plan += [first, len(fr.beats), fr.out_beats]
        first += len(fr.beats)
    write_memh_bytes(run_dir / "stream_in.hex", np.concatenate([f.beats for f in frames]), in_bits)
    write_memh(run_dir / "plan.hex", plan, 32)
    prep_s = time.monotonic() - t1
    if mutate is not None:
        mutate(run_dir)
    bp = tuple(int(v) for v in backpressure)
    th = [min(65536, (v * 65536 + 50) // 100) for v in bp]
    limits = [_limit(f, bp, watchdog_margin) for f in frames]
    if timeout_s is None:
        timeout_s = 120.0 + sum(limits) * (2e-4 if sim == "icarus" else 2e-5)
    payload = {"names": [f.name for f in frames], "limits": limits,
               "period_ns": dut.spec.clock.period_ns,
               "expect_in": [len(f.beats) for f in frames],
               "expect_out": [f.out_beats for f in frames]}
    t2 = time.monotonic()
    simmod.run(info, TB_MODULE, test_dir=run_dir, payload=payload, timeout_s=timeout_s,
               waves=waves, plusargs=["+STREAM_IN=stream_in.hex", f"+SEED={int(seed)}",
                                      f"+TH_IN={th[0]}", f"+TH_OUT={th[1]}"])
    wall = time.monotonic() - t2
    out = _collect(dut, pairs, layer_ops, shapes, frames, packer, run_dir, out_bits, out_bytes,
                   bp)
    wave = find_wave(run_dir, info.build_dir) if waves else None
    for r in out:
        r.build_dir, r.run_dir, r.wave_file = info.build_dir, run_dir, wave
        r.wall_s, r.build_s, r.prep_s, r.sim = wall, info.build_s, prep_s, sim
        r.extra = {"layers_in_run": float(len(pairs))}
    release_run_dir(out, run_dir, keep or waves)
    log.info("%d layer(s) on %s (%s, stream, back-pressure %s): %d frames, run %.2f s (total "
             "%.2f s)", len(pairs), sim, dut.name, bp, len(frames), wall, time.monotonic() - t0)
    return out


def _collect(dut: Any, pairs: Sequence[tuple[LayerRecord, np.ndarray | None]],
             layer_ops: list[list[GemmOp]], shapes: list[tuple[int, ...]], frames: list[Frame],
             packer: Any, run_dir: Path, out_bits: int, out_bytes: int, bp: tuple[int, ...],
             ) -> list[CosimResult]:
    stats, end = read_frames(run_dir)
    n_out = sum(f.out_beats for f in frames)
    if end is None:
        raise SimulationError(f"the harness did not finish ({len(stats)} of {len(frames)} frames)")
    if end != n_out:
        raise SimulationError(f"the DUT produced {end} output beats, expected {n_out} (a frame "
                              f"with {'extra' if end > n_out else 'missing'} beats)")
    try:
        data = read_memh_bytes(run_dir / "stream_out.hex", out_bits, n_out)
        last = read_memh_fields(run_dir / "stream_last.hex", [1], False, n_out)[:, 0].astype(bool)
    except RecordError as e:
        raise SimulationError(f"output stream: {e.detail}", file=e.file) from None
    outs: list[CosimResult] = []
    ys = [np.zeros((ops[0].rows if ops else 0, rec.c_out), dtype=np.int64)
          for ops, (rec, _) in zip(layer_ops, pairs)]
    tiles: list[list[TileResult]] = [[] for _ in pairs]
    pos = 0
    for fi, fr in enumerate(frames):
        if fi not in stats:
            raise SimulationError(f"{fr.name}: never completed")
        first, lastc, counter, err, _sent, _exp = stats[fi]
        rec, op = pairs[fr.layer][0], fr.op
        if err:
            raise SimulationError(f"{fr.name}: the DUT's error port reads {err:#x}", layer=rec.name)
        seg = slice(pos, pos + fr.out_beats)
        pos += fr.out_beats
        y = np.asarray(_call(dut, "unpack()", packer.unpack, op, data[seg], last[seg]),
                       dtype=np.int64)
        if y.shape != (op.rows, op.cols):
            raise ConfigError(f"unpack() returned {list(y.shape)}, expected [{op.rows}, "
                              f"{op.cols}]", file=str(dut.spec.file), key="adapter")
        ys[fr.layer][:, op.c0:op.c0 + op.cols] = y
        measured = lastc - first + 1
        tiles[fr.layer].append(TileResult(
            op.index, op.group, 0, op.rows, op.c0, op.cols, measured, fr.predicted, (measured,),
            None if fr.predicted is None else (fr.predicted,),
            counter=counter if dut.spec.interface.counter else None))
    for li, (rec, _) in enumerate(pairs):
        res = tiles[li]
        outs.append(CosimResult(layer=rec.name, y=ys[li].reshape(shapes[li]), acc=None,
                                cycles=sum(t.cycles_measured for t in res), tiles=res, sim="",
                                build_dir=run_dir, dut=dut.name,
                                check_cycles=dut.exact and not any(bp),
                                backpressure=(int(bp[0]), int(bp[1]))))
    return outs
