"""Repro bundles: everything needed to re-run one failing layer (or tile) on its own.

A bundle is a folder::

    bundle.json   layer, sim, seed, tile, the localized mismatch, the original command,
                  the command that reproduces it (``t2c-sim repro <folder>``)
    record.npz/.json   the layer record, golden results attached (t2c_sim.export.save_record)
    hw.yaml       the hardware configuration
    wave.*        waveform of just the failing tile (when the rerun could record it)

The folder is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.config import HwConfig
from t2c_sim.errors import RecordError, SimulationError
from t2c_sim.export import load_record, save_record
from t2c_sim.files import atomic_write_json, atomic_write_text, jsonable, replace_dir
from t2c_sim.record import LayerRecord
from t2c_sim.regress.hwfile import dump_hw, load_hw
from t2c_sim.regress.results import FAIL, PASS, SimOutcome

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


def _tile_of(mismatch: dict[str, Any]) -> int | None:
    t = mismatch.get("tile")
    if isinstance(t, (int,)) and not isinstance(t, bool):
        return int(t)
    return None


def _rerun_with_waves(rec: LayerRecord, hw: HwConfig, sim: str, tile: int | None,
                      build_root: str, timeout_s: float | None) -> tuple[Any, Path | None]:
    from t2c_sim.cosim.run import run_layer
    from t2c_sim.regress.pipeline import wave_path

    res = run_layer(rec, hw, sim, build_root=build_root, waves=True, wave_tile=tile,
                    timeout_s=timeout_s)
    wave = wave_path(res)
    return res, (Path(wave) if wave else None)


def write_bundle(folder: str | Path, rec: LayerRecord, hw: HwConfig, *, sim: str, seed: int,
                 command: str, mismatch: dict[str, Any], build_root: str = "build/sim",
                 timeout_s: float | None = None, waves: bool = True) -> Bundle:
    """Write a bundle for ``rec`` failing on ``sim``; re-run the failing tile with waves.

    A failure of the wave rerun is logged and recorded in ``bundle.json`` (the bundle is
    still written: the record and config are what matter).
    """
    final = Path(folder)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    tile = _tile_of(mismatch)
    try:
        save_record(rec, tmp / "record")
        atomic_write_text(tmp / "hw.yaml", dump_hw(hw))
        wave_name = None
        wave_note = ""
        if waves:
            try:
                _, wave = _rerun_with_waves(rec, hw, sim, tile, build_root, timeout_s)
                if wave is not None and wave.exists():
                    wave_name = "wave" + "".join(wave.suffixes[-1:])
                    shutil.copy2(wave, tmp / wave_name)
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
                  str(final / wave_name) if wave_name else None)


def load_bundle(folder: str | Path) -> Bundle:
    """Read a bundle written by :func:`write_bundle` (errors name the file)."""
    folder = Path(folder)
    meta_p = folder / "bundle.json"
    if not meta_p.is_file():
        raise RecordError(f"{meta_p}: repro bundle not found")
    try:
        meta = json.loads(meta_p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RecordError(f"{meta_p}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise RecordError(f"{meta_p}: not a repro bundle (key 'format')")
    rec = load_record(folder / "record")
    hw = load_hw(folder / "hw.yaml")
    wave = meta.get("wave")
    return Bundle(folder, rec, hw, str(meta.get("sim")), int(meta.get("seed", 0)),
                  meta.get("tile"), str(meta.get("command", "")), meta.get("mismatch") or {},
                  str(folder / wave) if wave else None)


def rerun_bundle(bundle: Bundle, *, build_root: str = "build/sim", timeout_s: float | None = None,
                 waves: bool = True, sim: str | None = None) -> SimOutcome:
    """Re-run the bundle's layer on its simulator (waves of the failing tile) and compare.

    Returns a :class:`SimOutcome`: ``fail`` with the localized mismatch if it still
    mismatches, ``pass`` otherwise. Raises :class:`SimulationError` for simulator trouble.
    """
    from t2c_sim.cosim.compare import compare
    from t2c_sim.cosim.run import run_layer
    from t2c_sim.regress.pipeline import mismatch_dict, wave_path

    rec, sim = bundle.record, sim or bundle.sim
    if rec.y is None:
        raise RecordError(f"{bundle.folder / 'record.json'}: the record has no golden y")
    t0 = time.perf_counter()
    tile = bundle.tile if waves else None
    res = run_layer(rec, bundle.hw, sim, build_root=build_root, waves=waves, wave_tile=tile,
                    timeout_s=timeout_s)
    wall = time.perf_counter() - t0
    actual_y, actual_acc = res.y, getattr(res, "acc", None)
    if tile is not None:
        # Only the failing tile ran: take the other outputs from the golden model.
        actual_y = _only_tile(rec, rec.y, res.y, res.tiles, tile)
        if actual_acc is not None and rec.acc is not None:
            actual_acc = _only_tile(rec, rec.acc, actual_acc, res.tiles, tile)
    out = SimOutcome(sim, PASS, cycles_measured=int(res.cycles), wall_s=wall,
                     wave=wave_path(res))
    mm = compare(rec, rec.y, actual_y, tiles=getattr(res, "tiles", None), acc_expected=rec.acc,
                 acc_actual=actual_acc)
    if mm is not None:
        out.verdict, out.message = FAIL, str(mm)
        out.mismatch = jsonable(mismatch_dict(mm, rec, rec.y, actual_y))
    return out


def _only_tile(rec: LayerRecord, golden: np.ndarray, actual: np.ndarray, tiles: Any,
               index: int) -> np.ndarray:
    """``golden`` with the region of tile ``index`` replaced by ``actual``'s."""
    t = next((t for t in tiles or () if int(t.index) == index), None)
    if t is None:
        raise SimulationError(f"layer {rec.name}: tile {index} was not run")
    out = np.array(golden, dtype=np.int64).reshape(-1, rec.c_out)
    act = np.asarray(actual, dtype=np.int64).reshape(-1, rec.c_out)
    out[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols] = act[t.p0:t.p0 + t.rows, t.c0:t.c0 + t.cols]
    return out.reshape(np.shape(golden))
