"""``onnx:`` entries of a regression suite: a quantized ONNX model as a job, validated up front.

An entry mirrors ``t2c-sim run MODEL.onnx``::

    jobs:
      - onnx: models/rescnn_int8.onnx   # relative to the suite file (or the working folder)
        name: rescnn                    # default: the model's stem
        profile: ort_fp32               # ort_fp32 (default) | half_even | half_up | half_away | floor
        nm: "2:4"                       # require N:M weights (default: the tightest N for the array's M)
        input: x.npz                    # the float input batch (default: synthetic, one per seed)
        parity: ort                     # also compare golden with ONNX Runtime, layer by layer

Seeds choose the synthetic input batch (and the stall pattern under back-pressure); an entry
with ``input:`` runs that batch once (seed 0): the suite's ``seeds`` do not multiply it, and a
``seeds:`` of its own is an error. Without ``hw`` (suite or entry) the array takes the model's
N:M, as ``run MODEL.onnx`` does without ``--hw``; with ``hw`` the model is imported for the
array's ``M`` and its weights must fit the array's ``N:M``.

Everything is checked here, before any job runs: the files (found, hashed), the profile, the
N:M, the input batch against the model's input, the import itself (an importer refusal keeps its
own text, which names the model file and the node and op), and whether the DUT accepts every
MAC layer on each hardware config. Each error is one :class:`~t2c_sim.errors.ConfigError` naming
the suite file and the entry's key.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2c_sim.config import HwConfig, SparsitySpec
from t2c_sim.cosim.dut import default_dut, load_dut
from t2c_sim.errors import ConfigError, T2CError
from t2c_sim.importers import import_onnx, load_input, parse_import_rounding
from t2c_sim.importers.onnx_import import IMPORT_ROUNDINGS
from t2c_sim.importers.onnx_model import MAX_MODEL_BYTES
from t2c_sim.record import MAC_OPS
from t2c_sim.regress.pipeline import check_layer_size

__all__ = ["ONNX_KEYS", "OnnxEntry", "parse_onnx_entry", "check_onnx_entry", "onnx_params"]

#: Keys only an ``onnx:`` entry takes (beside the keys every entry takes).
ONNX_KEYS = ("onnx", "profile", "nm", "input", "parity")
PARITY_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL")


@dataclass(frozen=True)
class OnnxEntry:
    """A validated ``onnx:`` entry: the files (resolved, with the sha256 of their bytes) and the
    import options."""

    path: str
    sha: str
    profile: str
    nm: str | None
    input: str | None
    input_sha: str
    parity: bool


def _file_sha(p: Path, file: str, key: str) -> str:
    size = p.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ConfigError(f"{p}: {size} bytes, more than the limit {MAX_MODEL_BYTES}",
                          file=file, key=key)
    return hashlib.sha256(p.read_bytes()).hexdigest()


def parse_onnx_entry(e: dict[str, Any], resolve: Callable[[str, str], Path], file: str,
                     key: str) -> OnnxEntry:
    """The entry's keys by type and value (no import yet).

    Args:
        e: the entry mapping (has ``onnx``).
        resolve: ``resolve(path, key) -> Path`` (the suite's: relative to the working folder or
            the suite file; an error names the suite file and key).
        file: the suite file; key: the entry's key (``jobs[i]``).
    """
    for k in ("onnx", "input"):
        if k in e and (not isinstance(e[k], str) or not e[k].strip()):
            raise ConfigError(f"must be a file name, got {e[k]!r}", file=file, key=f"{key}.{k}")
    if "params" in e:
        raise ConfigError("an onnx entry takes no params (its options are profile, nm, input and "
                          "parity)", file=file, key=f"{key}.params")
    if "input" in e and "seeds" in e:
        raise ConfigError("seeds choose a synthetic input batch; this entry runs its input: once "
                          "(drop seeds: or input:)", file=file, key=f"{key}.seeds")
    profile = e.get("profile", "ort_fp32")
    if not isinstance(profile, str):
        raise ConfigError(f"must be one of {', '.join(IMPORT_ROUNDINGS)}, got {profile!r}",
                          file=file, key=f"{key}.profile")
    try:
        profile = parse_import_rounding(profile).value
    except ConfigError as err:
        raise ConfigError(err.detail, file=file, key=f"{key}.profile") from None
    nm = e.get("nm")
    if nm is not None:
        if not isinstance(nm, str) or nm.count(":") != 1:
            raise ConfigError(f"must be 'N:M' (quoted in YAML), got {nm!r}", file=file,
                              key=f"{key}.nm")
        try:
            nm = str(SparsitySpec.parse(nm))
        except T2CError as err:
            raise ConfigError(err.detail, file=file, key=f"{key}.nm") from None
    parity = e.get("parity")
    if parity not in (None, "ort"):
        raise ConfigError(f"must be 'ort' (compare with ONNX Runtime) or absent, got {parity!r}",
                          file=file, key=f"{key}.parity")
    if parity and importlib.util.find_spec("onnxruntime") is None:
        raise ConfigError("needs the onnxruntime package (the optional extra onnx)", file=file,
                          key=f"{key}.parity")
    mp = resolve(e["onnx"], f"{key}.onnx")
    ip = resolve(e["input"], f"{key}.input") if "input" in e else None
    return OnnxEntry(path=str(mp), sha=_file_sha(mp, file, f"{key}.onnx"), profile=profile,
                     nm=nm, input=None if ip is None else str(ip),
                     input_sha="" if ip is None else _file_sha(ip, file, f"{key}.input"),
                     parity=bool(parity))


def onnx_params(entry: OnnxEntry) -> dict[str, Any]:
    """What the reports show (and the job id holds) of the entry's options."""
    return {"profile": entry.profile, "nm": entry.nm or "auto",
            "parity": "ort" if entry.parity else "none"}


def _import(entry: OnnxEntry, m: int, file: str, key: str) -> Any:
    """Import the model for an array of ``M = m`` (the importer's refusal, one line, keyed by the
    entry; an ``nm`` the weights do not fit keyed by ``nm``)."""
    try:
        imp = import_onnx(entry.path, rounding=entry.profile, m=m)
    except T2CError as err:
        raise ConfigError(str(err), file=file, key=f"{key}.onnx") from None
    if entry.nm is not None:
        try:
            imp = import_onnx(entry.path, rounding=entry.profile, nm=entry.nm, m=m)
        except T2CError as err:
            raise ConfigError(str(err), file=file, key=f"{key}.nm") from None
    if entry.input is not None:
        try:
            load_input(entry.input, imp.input)
        except T2CError as err:
            raise ConfigError(str(err), file=file, key=f"{key}.input") from None
    return imp


def check_onnx_entry(entry: OnnxEntry, hw: dict[str, int], hw_given: bool, simulated: bool,
                     dut: tuple[str, str, str] | None, dparams: dict[str, int], file: str,
                     key: str, cache: dict[int, Any]) -> dict[str, int]:
    """Import the model for ``hw`` and return the job's hardware parameters.

    Without ``hw_given`` the array takes the model's N:M (``n``, ``m``), as ``run MODEL.onnx``
    does without ``--hw``. When ``simulated``, every MAC layer must fit the limits and be accepted
    by the DUT (its reason, keyed by the entry). ``cache`` maps ``M`` to the import (one import
    per ``M`` and entry).
    """
    m = hw["m"]
    if m not in cache:
        cache[m] = _import(entry, m, file, key)
    imp = cache[m]
    if not hw_given:
        hw = {**hw, "n": imp.nm[0], "m": imp.nm[1]}
    if simulated:
        try:
            hwc = HwConfig.from_dict(hw)
            spec = load_dut(dut[0]) if dut else default_dut(hwc).spec
            d = spec.bind(hwc, dparams)
            for rec in imp.records:
                if rec.op in MAC_OPS:
                    check_layer_size(rec, hwc)
                    d.check(rec)
        except T2CError as err:
            raise ConfigError(f"the DUT refuses this model: {err}", file=file, key=key) from None
    return hw
