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

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2c_sim.config import HwConfig
from t2c_sim.cosim.dut import Dut, default_dut, load_dut
from t2c_sim.errors import RecordError, SimulationError
from t2c_sim.export import load_record, save_record
from t2c_sim.files import atomic_write_json, atomic_write_text, replace_dir
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
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    tile = _tile_of(mismatch)
    try:
        save_record(rec, tmp / "record")
        atomic_write_text(tmp / "hw.yaml", dump_hw(hw))
        dfile = str(Path(dut_file).resolve()) if dut_file else None
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
                  str(final / wave_name) if wave_name else None, dfile, dict(dut_params or {}),
                  tuple(backpressure))


def load_bundle(folder: str | Path) -> Bundle:
    """Read a bundle written by :func:`write_bundle` (errors name the file)."""
    folder = Path(folder)
    meta_p = folder / "bundle.json"
    if not meta_p.is_file():
        raise RecordError("repro bundle not found", file=str(meta_p))
    try:
        meta = json.loads(meta_p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RecordError(f"not valid JSON ({e})", file=str(meta_p)) from None
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise RecordError("not a repro bundle", file=str(meta_p), key="format")
    rec = load_record(folder / "record")
    hw = load_hw(folder / "hw.yaml")
    wave = meta.get("wave")
    dmeta: dict[str, Any] = {}
    if (folder / "dut.json").is_file():
        try:
            dmeta = json.loads((folder / "dut.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise RecordError(f"not valid JSON ({e})", file=str(folder / "dut.json")) from None
        if not isinstance(dmeta, dict):
            raise RecordError("must be a JSON object", file=str(folder / "dut.json"))
    params = dmeta.get("params") or {}
    bp = dmeta.get("backpressure") or [0, 0]
    if not (isinstance(params, dict) and all(isinstance(v, int) for v in params.values())
            and isinstance(bp, list) and len(bp) == 2 and all(isinstance(v, int) for v in bp)):
        raise RecordError("params must map names to integers and backpressure be two integers",
                          file=str(folder / "dut.json"))
    return Bundle(folder, rec, hw, str(meta.get("sim")), int(meta.get("seed", 0)),
                  meta.get("tile"), str(meta.get("command", "")), meta.get("mismatch") or {},
                  str(folder / wave) if wave else None, dmeta.get("file"), dict(params),
                  (int(bp[0]), int(bp[1])))


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
