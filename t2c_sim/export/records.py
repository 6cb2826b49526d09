"""Save and load layer records: ``<stem>.npz`` (integer arrays) + ``<stem>.json`` (manifest).

The manifest holds every scalar field of :class:`~t2c_sim.record.LayerRecord`, the format
version, and for each array its shape, dtype and SHA-256, so a truncated or edited ``.npz`` is
caught on load. Writes go to a temporary name and are renamed into place: an interrupted save
leaves no half-written record.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import RecordError
from t2c_sim.record import ARRAY_FIELDS, LayerRecord

FORMAT = "t2c-sim-layer-record"
VERSION = 1


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_record(rec: LayerRecord, stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.npz`` and ``stem.json``; returns both paths."""
    stem = Path(stem)
    npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
    arrays = rec.arrays()
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "record": rec.scalars(),
        "arrays": {k: {"shape": list(v.shape), "dtype": "int64", "sha256": _sha(v)}
                   for k, v in arrays.items()},
    }

    def write_npz(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()})

    def write_json(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(manifest, indent=1, default=_json_default) + "\n")

    _atomic_write(npz, write_npz)
    _atomic_write(js, write_json)
    return npz, js


def _json_default(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")


def load_record(stem: str | Path) -> LayerRecord:
    """Load a record written by :func:`save_record` (``stem`` may end in .json or .npz)."""
    stem = Path(stem)
    if stem.suffix in (".json", ".npz"):
        stem = stem.with_suffix("")
    js, npz = stem.with_suffix(".json"), stem.with_suffix(".npz")
    for p in (js, npz):
        if not p.is_file():
            raise RecordError(f"{p}: record file not found")
    try:
        manifest = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{js}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordError(f"{js}: not a {FORMAT} manifest (key 'format')")
    if manifest.get("version") != VERSION:
        raise RecordError(f"{js}: unsupported version {manifest.get('version')!r} (key 'version')")
    scal = manifest.get("record")
    if not isinstance(scal, dict):
        raise RecordError(f"{js}: key 'record' must be a mapping")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any unreadable archive is the same user error
        raise RecordError(f"{npz}: cannot read ({e})") from None
    spec = manifest.get("arrays", {})
    for k, meta in spec.items():
        if k not in ARRAY_FIELDS:
            raise RecordError(f"{js}: unknown array {k!r} (key 'arrays')")
        if k not in arrays:
            raise RecordError(f"{npz}: array {k!r} listed in the manifest is missing")
        if list(arrays[k].shape) != meta.get("shape") or _sha(arrays[k]) != meta.get("sha256"):
            raise RecordError(f"{npz}: array {k!r} does not match its manifest (shape or checksum)")
    extra = set(arrays) - set(spec)
    if extra:
        raise RecordError(f"{npz}: arrays {sorted(extra)} are not in the manifest")
    try:
        rec = LayerRecord(**scal, **arrays)
    except TypeError as e:
        raise RecordError(f"{js}: bad record fields ({e})") from None
    return rec


def save_network(records: list[LayerRecord], folder: str | Path) -> Path:
    """Save a list of records in execution order: ``folder/NN_name.{npz,json}`` + ``network.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for i, rec in enumerate(records):
        stem = f"{i:03d}_{rec.name.replace('/', '_').replace('.', '_')}"
        save_record(rec, folder / stem)
        stems.append(stem)
    index = folder / "network.json"
    _atomic_write(index, lambda tmp: Path(tmp).write_text(
        json.dumps({"format": "t2c-sim-network", "version": VERSION, "layers": stems}, indent=1)))
    return index


def load_network(folder: str | Path) -> list[LayerRecord]:
    """Load records saved by :func:`save_network`, in order."""
    index = Path(folder) / "network.json"
    if not index.is_file():
        raise RecordError(f"{index}: network index not found")
    try:
        stems = json.loads(index.read_text())["layers"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RecordError(f"{index}: malformed network index ({e})") from None
    return [load_record(Path(folder) / s) for s in stems]
