"""Save and load layer records: ``<stem>.npz`` (integer arrays) + ``<stem>.json`` (manifest).

The manifest holds every scalar field of :class:`~t2c_sim.record.LayerRecord`, the format
version, and for each array its shape, dtype and SHA-256, so a truncated or edited ``.npz`` is
caught on load. Writes go to a temporary name and are renamed into place: an interrupted save
leaves no half-written record.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import ConfigError, RecordError, T2CError, one_line
from t2c_sim.files import atomic_write
from t2c_sim.limits import MAX_RECORD_ELEMENTS, SHAPE_FIELDS, check_dim
from t2c_sim.readers import read_json
from t2c_sim.record import ARRAY_FIELDS, LayerRecord

FORMAT = "t2c-sim-layer-record"
NETWORK_FORMAT = "t2c-sim-network"
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


def _check_scalars(scal: dict[str, Any], js: str) -> None:
    """The manifest's scalar fields: known names, shape numbers as bounded integers (a
    ``c_out: 1e12`` or a NaN is refused here, before any shape drives an allocation or a loop)."""
    known = set(LayerRecord.__dataclass_fields__) - set(ARRAY_FIELDS)
    for k in scal:
        if k not in known:
            raise RecordError(f"unknown record field (known: {', '.join(sorted(known))})",
                              file=js, key=f"record.{k}")
    name = scal.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RecordError(f"the layer name must be a non-empty string, got {name!r}", file=js,
                          key="record.name")
    try:
        for f in SHAPE_FIELDS:
            if f in scal:
                check_dim(scal[f], f"record.{f}",
                          minimum=1 if f in ("kh", "kw", "groups") else 0)
        for f in ("stride", "padding", "dilation"):
            if f in scal:
                v = scal[f]
                items = v if isinstance(v, list) else [v]
                if len(items) not in (1, 2):
                    raise ConfigError(f"must be an integer or a pair, got {v!r}",
                                      key=f"record.{f}")
                for x in items:
                    check_dim(x, f"record.{f}", minimum=0 if f == "padding" else 1)
        for f in ("a_bits", "w_bits", "y_bits", "acc_bits", "mult_bits", "b_bits", "n", "m"):
            if f in scal:
                check_dim(scal[f], f"record.{f}", maximum=256)
    except ConfigError as e:
        raise e.recast(RecordError, file=js, layer=name) from None


def _npz_shapes(npz: Path) -> dict[str, tuple[int, ...]]:
    """``{array: shape}`` from the ``.npy`` headers inside the zip, without decompressing the
    data; refuses more than :data:`~t2c_sim.limits.MAX_RECORD_ELEMENTS` integers in all."""
    out: dict[str, tuple[int, ...]] = {}
    total = 0
    try:
        with zipfile.ZipFile(npz) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise RecordError(f"unexpected member {info.filename!r} (not an array)",
                                      file=str(npz))
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(fh)
                if dtype.kind not in "iu":
                    raise RecordError(f"array {info.filename[:-4]!r} holds {dtype}, not integers",
                                      file=str(npz))
                total += int(np.prod(shape, dtype=object))
                if total > MAX_RECORD_ELEMENTS:
                    raise RecordError(f"the arrays hold more than {MAX_RECORD_ELEMENTS} integers "
                                      f"(the limit per record, {MAX_RECORD_ELEMENTS * 8 >> 20} MiB "
                                      "as int64)", file=str(npz))
                out[info.filename[:-4]] = tuple(shape)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise RecordError(f"cannot read the arrays ({one_line(e)})", file=str(npz)) from None
    return out


def load_record(stem: str | Path) -> LayerRecord:
    """Load a record written by :func:`save_record` (``stem`` may end in .json or .npz).

    Everything is checked at the edge, each problem one :class:`RecordError` naming the file
    (and the key or layer): the manifest (size, UTF-8, JSON, format, version, field names, shape
    numbers as bounded integers), the arrays (sizes from the ``.npy`` headers before anything
    is decompressed, shapes and checksums against the manifest) and the record itself
    (:meth:`LayerRecord.validate`: e.g. weights that break the record's own N:M).
    """
    stem = Path(stem)
    if stem.suffix in (".json", ".npz"):
        stem = stem.with_suffix("")
    js, npz = stem.with_suffix(".json"), stem.with_suffix(".npz")
    manifest = read_json(js, "record manifest", error=RecordError)
    read_bytes_check(npz)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RecordError(f"not a {FORMAT} manifest", file=str(js), key="format")
    if manifest.get("version") != VERSION:
        raise RecordError(f"unsupported version {manifest.get('version')!r}", file=str(js),
                          key="version")
    scal = manifest.get("record")
    if not isinstance(scal, dict):
        raise RecordError("must be a mapping", file=str(js), key="record")
    _check_scalars(scal, str(js))
    spec = manifest.get("arrays", {})
    if not isinstance(spec, dict):
        raise RecordError("must be a mapping", file=str(js), key="arrays")
    shapes = _npz_shapes(npz)
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k in shapes}
    except Exception as e:  # noqa: BLE001 - any unreadable archive is the same user error
        raise RecordError(f"cannot read ({one_line(e)})", file=str(npz)) from None
    for k, meta in spec.items():
        if k not in ARRAY_FIELDS:
            raise RecordError(f"unknown array {k!r}", file=str(js), key="arrays")
        if k not in arrays:
            raise RecordError(f"array {k!r} listed in the manifest is missing", file=str(npz))
        if not isinstance(meta, dict) or list(arrays[k].shape) != meta.get("shape") \
                or _sha(arrays[k]) != meta.get("sha256"):
            raise RecordError(f"array {k!r} does not match its manifest (shape or checksum)",
                              file=str(npz))
    extra = set(arrays) - set(spec)
    if extra:
        raise RecordError(f"arrays {sorted(extra)} are not in the manifest", file=str(npz))
    try:
        rec = LayerRecord(**scal, **arrays)
        return rec.validate()
    except T2CError as e:
        raise e.recast(RecordError, file=str(js)) from None
    except (TypeError, ValueError) as e:
        raise RecordError(f"bad record fields ({one_line(e)})", file=str(js)) from None


def read_bytes_check(npz: Path) -> None:
    """The ``.npz`` exists, is a regular file and is at most what the element limit allows."""
    try:
        st = npz.stat()
    except OSError:
        raise RecordError("record file not found", file=str(npz)) from None
    if not stat.S_ISREG(st.st_mode):
        raise RecordError("record file is not a regular file", file=str(npz))
    if st.st_size > MAX_RECORD_ELEMENTS * 8 + (1 << 20):
        raise RecordError(f"record file is larger than {MAX_RECORD_ELEMENTS} int64 values "
                          f"({st.st_size} bytes)", file=str(npz))


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
        json.dumps({"format": NETWORK_FORMAT, "version": VERSION, "layers": stems}, indent=1)))
    return index


def load_network(folder: str | Path) -> list[LayerRecord]:
    """Load records saved by :func:`save_network`, in order.

    ``network.json`` lists record files by stem; each must be a plain name inside the folder
    (``../x`` or an absolute path is refused, naming the file and entry), the list must not be
    empty and layer names must be unique.
    """
    index = Path(folder) / "network.json"
    d = read_json(index, "network index", error=RecordError)
    if not isinstance(d, dict) or d.get("format", NETWORK_FORMAT) != NETWORK_FORMAT:
        raise RecordError(f"not a {NETWORK_FORMAT} index", file=str(index), key="format")
    stems = d.get("layers")
    if not isinstance(stems, list):
        raise RecordError("must be a list of record file names", file=str(index), key="layers")
    if not stems:
        raise RecordError("lists no layers (a network needs at least one)", file=str(index),
                          key="layers")
    for i, s in enumerate(stems):
        if not isinstance(s, str) or not _plain_name(s):
            raise RecordError(f"{s!r} is not a plain file name inside the folder (a path such as "
                              "'../x' or '/x' is refused)", file=str(index), key=f"layers[{i}]")
    recs = [load_record(Path(folder) / s) for s in stems]
    seen: dict[str, int] = {}
    for i, r in enumerate(recs):
        if r.name in seen:
            raise RecordError(f"layers[{seen[r.name]}] and layers[{i}] are both named "
                              f"{r.name!r}; layer names must be unique", file=str(index),
                              key=f"layers[{i}]")
        seen[r.name] = i
    return recs


def _plain_name(s: str) -> bool:
    return (bool(s) and s not in (".", "..") and "/" not in s and "\\" not in s
            and "\0" not in s and not Path(s).is_absolute())
