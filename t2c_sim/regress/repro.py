"""Repro bundles: everything needed to re-run one failing layer (or tile) on its own.

A bundle is a folder::

    bundle.json   layer, sim, seed, tile, the localized mismatch, the original command,
                  the command that reproduces it (``t2c-sim repro <folder>``)
    record.npz/.json   the layer record, golden results attached (t2c_sim.export.save_record)
    hw.yaml       the hardware configuration
    dut.json      the DUT: its file (absolute path; none for our accelerator), name, parameter
                  overrides, back-pressure of the run
    wave.*        waveform of just the failing tile (when the rerun could record it)

The folder is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2c_sim.config import HwConfig
from t2c_sim.cosim.dut import Dut, default_dut, load_dut
from t2c_sim.cosim.sim.tools import SIMULATORS
from t2c_sim.errors import RecordError, SimulationError
from t2c_sim.export import load_record, save_record
from t2c_sim.files import (
    atomic_write_json,
    atomic_write_text,
    make_dirs,
    output_error,
    replace_dir,
)
from t2c_sim.readers import read_json
from t2c_sim.record import LayerRecord
from t2c_sim.regress.hwfile import dump_hw, load_hw
from t2c_sim.regress.outcome import simulate
from t2c_sim.regress.results import SimOutcome

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "t2c-sim-repro"


@dataclass
class Bundle:
    """A loaded repro bundle."""

    folder: Path
    record: LayerRecord
    hw: HwConfig
    sim: str
    seed: int
    tile: int | None
    command: str
    mismatch: dict[str, Any]
    wave: str | None = None
    dut_file: str | None = None
    dut_params: dict[str, int] | None = None
    backpressure: tuple[int, int] = (0, 0)

    def dut(self, dut_file: str | None = None) -> Dut:
        """The bundle's DUT bound to its configuration (``dut_file`` replaces the file)."""
        f = dut_file or self.dut_file
        if f is None:
            return default_dut(self.hw).spec.bind(self.hw, self.dut_params or {})
        return load_dut(f).bind(self.hw, self.dut_params or {})


def _tile_of(mismatch: dict[str, Any]) -> int | None:
    t = mismatch.get("tile")
    if isinstance(t, (int,)) and not isinstance(t, bool):
        return int(t)
    return None


def write_bundle(folder: str | Path, rec: LayerRecord, hw: HwConfig, *, sim: str, seed: int,
                 command: str, mismatch: dict[str, Any], build_root: str = "build/sim",
                 timeout_s: float | None = None, waves: bool = True, dut: Dut | None = None,
                 dut_file: str | None = None, dut_params: dict[str, int] | None = None,
                 backpressure: tuple[int, int] = (0, 0)) -> Bundle:
    """Write a bundle for ``rec`` failing on ``sim``; re-run the failing tile with waves.

    A failure of the wave rerun is logged and recorded in ``bundle.json`` (the bundle is
    still written: the record and config are what matter).
    """
    final = Path(folder)
    make_dirs(final.parent)
    try:
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    except OSError as e:
        raise output_error(e, final) from None
    tile = _tile_of(mismatch)
    try:
        save_record(rec, tmp / "record")
        atomic_write_text(tmp / "hw.yaml", dump_hw(hw))
        dfile = (str(dut.spec.file) if dut is not None else str(Path(dut_file).resolve())) \
            if dut_file else None
        atomic_write_json(tmp / "dut.json", {"file": dfile, "name": dut.name if dut else
                                             "t2c_accel", "params": dict(dut_params or {}),
                                             "backpressure": list(backpressure)})
        wave_name = None
        wave_note = ""
        if waves:
            try:
                rerun = simulate(rec, hw, sim, build_root=build_root, timeout_s=timeout_s,
                                 waves=True, wave_tile=tile, dut=dut, backpressure=backpressure,
                                 seed=seed + 1)
                wave = Path(rerun.wave) if rerun.wave else None
                if wave is not None and wave.exists():
                    wave_name = "wave" + "".join(wave.suffixes[-1:])
                    try:
                        shutil.copy2(wave, tmp / wave_name)
                    except OSError as e:
                        raise output_error(e, final / wave_name) from None
            except SimulationError as e:
                wave_note = f"wave rerun failed: {e}"
                log.warning("%s [%s]: %s", rec.name, sim, wave_note)
        meta = {"format": BUNDLE_FORMAT, "version": 1, "layer": rec.name, "sim": sim,
                "seed": seed, "tile": tile, "mismatch": {k: v for k, v in mismatch.items()
                                                         if k != "map"},
                "command": command, "repro_command": f"t2c-sim repro {final}",
                "wave": wave_name, "wave_note": wave_note,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_json(tmp / "bundle.json", meta)
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Bundle(final, rec, hw, sim, seed, tile, command, mismatch,
                  str(final / wave_name) if wave_name else None, dfile, dict(dut_params or {}),
                  tuple(backpressure))


def load_bundle(folder: str | Path) -> Bundle:
    """Read a bundle written by :func:`write_bundle`; every problem is one :class:`RecordError`
    naming the file and key (size, UTF-8, JSON, format, field types, a simulator name, a wave
    file that must be a plain name inside the bundle)."""
    folder = Path(folder)
    meta_p = folder / "bundle.json"
    meta = read_json(meta_p, "repro bundle", error=RecordError)
    f = str(meta_p)
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise RecordError("not a repro bundle", file=f, key="format")
    sim = meta.get("sim")
    if sim not in SIMULATORS:
        raise RecordError(f"unknown simulator {sim!r} (expected one of {', '.join(SIMULATORS)})",
                          file=f, key="sim")
    seed, tile = meta.get("seed", 0), meta.get("tile")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RecordError(f"must be an integer, got {seed!r}", file=f, key="seed")
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 0):
        raise RecordError(f"must be a tile number or null, got {tile!r}", file=f, key="tile")
    mismatch = meta.get("mismatch") or {}
    if not isinstance(mismatch, dict):
        raise RecordError("must be a mapping", file=f, key="mismatch")
    wave = meta.get("wave")
    if wave is not None and (not isinstance(wave, str) or not wave or "/" in wave
                             or "\\" in wave or wave in (".", "..")):
        raise RecordError(f"must be a file name inside the bundle, got {wave!r}", file=f,
                          key="wave")
    rec = load_record(folder / "record")
    hw = load_hw(folder / "hw.yaml")
    dfile, params, bp = _load_dut_meta(folder / "dut.json")
    return Bundle(folder, rec, hw, sim, seed, tile, str(meta.get("command", "")), mismatch,
                  str(folder / wave) if wave else None, dfile, params, bp)


def _load_dut_meta(path: Path) -> tuple[str | None, dict[str, int], tuple[int, int]]:
    """A bundle's ``dut.json`` (absent in bundles older than DUT files: our accelerator): the
    DUT file (``None``: ours), parameter overrides and back-pressure, each checked (file, key)."""
    if not path.exists():
        return None, {}, (0, 0)
    f = str(path)
    d = read_json(path, "DUT description", error=RecordError)
    if not isinstance(d, dict):
        raise RecordError("must be a JSON object", file=f)
    dfile = d.get("file")
    if dfile is not None and (not isinstance(dfile, str) or not dfile or "\0" in dfile):
        raise RecordError(f"must be the path of a DUT file or null, got {dfile!r}", file=f,
                          key="file")
    params = d.get("params") or {}
    if not isinstance(params, dict):
        raise RecordError(f"must map parameter names to integers, got {params!r}", file=f,
                          key="params")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, int) or abs(v) >= 1 << 64:
            raise RecordError(f"must be an integer below 2^64, got {v!r}", file=f,
                              key=f"params.{k}")
    bp = d.get("backpressure") or [0, 0]
    if not (isinstance(bp, list) and len(bp) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 90 for v in bp)):
        raise RecordError(f"must be two stall percentages in 0..90, got {bp!r}", file=f,
                          key="backpressure")
    return dfile, dict(params), (int(bp[0]), int(bp[1]))


def rerun_bundle(bundle: Bundle, *, build_root: str = "build/sim", timeout_s: float | None = None,
                 waves: bool = True, sim: str | None = None, dut_file: str | None = None,
                 ) -> SimOutcome:
    """Re-run the bundle's layer on its simulator and DUT (waves of the failing tile) and compare.

    ``dut_file`` replaces the bundle's DUT file (e.g. a fixed copy of the RTL).

    The same :func:`~t2c_sim.regress.outcome.simulate` a regression run uses: ``fail`` with the
    localized mismatch if it still mismatches, ``pass`` otherwise. Raises
    :class:`SimulationError` for simulator trouble.
    """
    if bundle.record.y is None:
        raise RecordError("the record has no golden y", file=str(bundle.folder / "record.json"))
    return simulate(bundle.record, bundle.hw, sim or bundle.sim, build_root=build_root,
                    timeout_s=timeout_s, waves=waves, wave_tile=bundle.tile if waves else None,
                    dut=bundle.dut(dut_file), backpressure=bundle.backpressure,
                    seed=bundle.seed + 1)
