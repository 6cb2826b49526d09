"""Save and load layer records: ``<stem>.npz`` (integer arrays) + ``<stem>.json`` (manifest).

The manifest holds every scalar field of :class:`~t2c_sim.record.LayerRecord`, the format
version, and for each array its shape, dtype and SHA-256, so a truncated or edited ``.npz`` is
caught on load. Writes go to a temporary name and are renamed into place: an interrupted save
leaves no half-written record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import RecordError
from t2c_sim.files import atomic_write
from t2c_sim.record import ARRAY_FIELDS, LayerRecord

FORMAT = "t2c-sim-layer-record"
VERSION = 1


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()


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

    atomic_write(npz, write_npz)
    atomic_write(js, write_json)
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
            raise RecordError("record file not found", file=str(p))
    try:
        manifest = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"not valid JSON ({e})", file=str(js)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordError(f"not a {FORMAT} manifest", file=str(js), key="format")
    if manifest.get("version") != VERSION:
        raise RecordError(f"unsupported version {manifest.get('version')!r}", file=str(js),
                          key="version")
    scal = manifest.get("record")
    if not isinstance(scal, dict):
        raise RecordError("must be a mapping", file=str(js), key="record")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any unreadable archive is the same user error
        raise RecordError(f"cannot read ({e})", file=str(npz)) from None
    spec = manifest.get("arrays", {})
    for k, meta in spec.items():
        if k not in ARRAY_FIELDS:
            raise RecordError(f"unknown array {k!r}", file=str(js), key="arrays")
        if k not in arrays:
            raise RecordError(f"array {k!r} listed in the manifest is missing", file=str(npz))
        if list(arrays[k].shape) != meta.get("shape") or _sha(arrays[k]) != meta.get("sha256"):
            raise RecordError(f"array {k!r} does not match its manifest (shape or checksum)",
                              file=str(npz))
    extra = set(arrays) - set(spec)
    if extra:
        raise RecordError(f"arrays {sorted(extra)} are not in the manifest", file=str(npz))
    try:
        rec = LayerRecord(**scal, **arrays)
    except TypeError as e:
        raise RecordError(f"bad record fields ({e})", file=str(js)) from None
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
    atomic_write(index, lambda tmp: Path(tmp).write_text(
        json.dumps({"format": "t2c-sim-network", "version": VERSION, "layers": stems}, indent=1)))
    return index


def load_network(folder: str | Path) -> list[LayerRecord]:
    """Load records saved by :func:`save_network`, in order."""
    index = Path(folder) / "network.json"
    if not index.is_file():
        raise RecordError("network index not found", file=str(index))
    try:
        stems = json.loads(index.read_text())["layers"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RecordError(f"malformed network index ({e})", file=str(index)) from None
    return [load_record(Path(folder) / s) for s in stems]
