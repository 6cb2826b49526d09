"""A recipe's model and data: the user's own code and data, or the zoo and the built-in datasets.

``model:`` (with ``model_args:`` as keyword arguments)

- a zoo name (``resnet18``, ... :data:`t2c_sim.models.nets.MODELS`);
- ``path/to/file.py:factory``: a Python file (relative to the recipe's folder) and a callable in
  it (a class or a function) returning the float ``nn.Module``; the file's folder is on
  ``sys.path`` while it is imported, so it may import its neighbours;
- ``package.module:factory``: an importable module and a callable in it.

``data:`` (``dataset:`` is the older spelling of a built-in name)

- a built-in dataset name (``digits``, ``digits28``, ``digits_tokens``);
- ``path/to/file.npz`` or ``{npz: path, test_frac: 0.2}``: array ``x`` (``[N, ...]``, numbers)
  and optional integer labels ``y`` (``[N]``);
- ``{synthetic: {shape: [3, 224, 224], samples: 16, test: 2, seed: 0}}``: ``N(0, 1)`` inputs
  without labels (calibration and cross-check only; no training).

Every mistake is one :class:`~t2c_sim.errors.ConfigError` naming the recipe file, the key and
its line (or, for an error inside the user's Python file, that file and line): a missing file,
a missing factory or array, a factory that fails, inputs the model cannot take. Sizes are
bounded (the limits are in the messages): :data:`MAX_SAMPLE_ELEMENTS`, :data:`MAX_ELEMENTS`,
:data:`MAX_SAMPLES`, :data:`MAX_NPZ_BYTES`, :data:`MAX_MODEL_ARGS_BYTES`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import re
import sys
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from t2c_sim.errors import ConfigError
from t2c_sim.models.data import DATASETS, Split, load_dataset, split, synthetic
from t2c_sim.models.nets import MODELS

__all__ = ["ModelSpec", "DataSpec", "parse_model", "parse_data", "build_model", "load_data",
           "check_model_on_data", "key_line", "MAX_SAMPLE_ELEMENTS", "MAX_ELEMENTS",
           "MAX_SAMPLES", "MAX_NPZ_BYTES", "MAX_MODEL_ARGS_BYTES"]

log = logging.getLogger(__name__)

MAX_SAMPLE_ELEMENTS = 1 << 24      # elements of one input sample (a 3x2048x2048 image is 12.6M)
MAX_ELEMENTS = 1 << 27             # elements of all inputs together (512 MiB of float32)
MAX_SAMPLES = 1 << 16              # synthetic samples
MAX_NPZ_BYTES = 1 << 31            # size of a data .npz file
MAX_MODEL_ARGS_BYTES = 1 << 16     # model_args as JSON


def key_line(file: str | None, key: str) -> int | None:
    """Line of the top-level ``key:`` in the recipe ``file`` (for error messages), if found."""
    if not file:
        return None
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    pat = re.compile(rf"^{re.escape(key)}\s*:")
    return next((i + 1 for i, t in enumerate(lines) if pat.match(t)), None)


def _err(msg: str, file: str | None, key: str) -> ConfigError:
    return ConfigError(msg, file=file, line=key_line(file, key.split(".")[0]), key=key)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@functools.cache
def _zoo_digest() -> str:
    """Content hash of the zoo's sources (every file of :mod:`t2c_sim.models`: a zoo model's
    code, its blocks, its initialization), so an edited zoo model never reuses cached weights."""
    h = hashlib.sha256()
    root = Path(inspect.getfile(MODELS[next(iter(MODELS))])).parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _base(file: str | None) -> Path:
    return Path(file).resolve().parent if file else Path.cwd()


# ---- model ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """Where the float model comes from: ``kind`` is ``zoo``, ``file`` or ``module``."""

    ref: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    path: str | None = None            # the Python file (kind ``file``)
    factory: str | None = None
    digest: str = ""                   # content hash of the file or module (the cache key)

    @property
    def stem(self) -> str:
        """A file-name-safe short name (cache files)."""
        if self.kind == "zoo":
            return self.ref
        base = Path(self.path).stem if self.path else self.ref.split(":")[0].rsplit(".", 1)[-1]
        return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{base}-{self.factory}")


_MODULES: dict[tuple[str, str], ModuleType] = {}


def _user_line(e: BaseException, path: Path | None) -> int | None:
    frames = traceback.extract_tb(e.__traceback__)
    hits = [f.lineno for f in frames if path is not None and Path(f.filename) == path]
    return hits[-1] if hits else None


def _import_file(path: Path, file: str | None) -> ModuleType:
    digest = _digest(path)
    key = (str(path), digest)
    if key in _MODULES:
        return _MODULES[key]
    name = "t2c_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _err(f"cannot import {path} as Python", file, "model")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise ConfigError(f"cannot import the model file: SyntaxError: {e.msg}",
                          file=e.filename or str(path), line=e.lineno, key="model") from None
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        sys.modules.pop(name, None)
        raise ConfigError(f"cannot import the model file: {type(e).__name__}: {e}",
                          file=str(path), line=_user_line(e, path), key="model") from None
    finally:
        sys.path.remove(str(path.parent))
    _MODULES[key] = mod
    return mod


def _check_args(args: Any, file: str | None) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise _err(f"must be a mapping of keyword arguments, got {type(args).__name__}", file,
                   "model_args")
    try:
        blob = json.dumps(args, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise _err(f"values must be numbers, strings, booleans or lists of them ({e})", file,
                   "model_args") from None
    if len(blob) > MAX_MODEL_ARGS_BYTES:
        raise _err(f"{len(blob)} bytes as JSON; the limit is {MAX_MODEL_ARGS_BYTES}", file,
                   "model_args")
    return dict(args)


def _check_zoo_args(name: str, kw: dict[str, Any], file: str | None) -> dict[str, Any]:
    """A zoo model's arguments against its constructor: known names, ints where it takes ints."""
    params = inspect.signature(MODELS[name]).parameters
    for k, v in kw.items():
        p = params.get(k)
        if p is None or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            known = ", ".join(n for n, q in params.items() if q.kind not in (q.VAR_POSITIONAL,
                                                                            q.VAR_KEYWORD))
            raise _err(f"model {name!r} takes no argument {k!r} (it takes: {known or 'none'})",
                       file, f"model_args.{k}")
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        if ann == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            raise _err(f"must be an int, got {v!r}", file, f"model_args.{k}")
        if ann == "float" and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise _err(f"must be a number, got {v!r}", file, f"model_args.{k}")
    return kw


def parse_model(ref: Any, args: Any, file: str | None) -> ModelSpec:
    """Validate ``model:`` and ``model_args:``; a file or module is imported here, once."""
    if not isinstance(ref, str) or not ref.strip():
        raise _err(f"must be a zoo name or 'file.py:factory', got {ref!r}", file, "model")
    kw = _check_args(args, file)
    if ":" not in ref:
        if ref not in MODELS:
            raise _err(f"unknown model {ref!r} (known: {', '.join(MODELS)}; or your own as "
                       "path/to/file.py:factory or package.module:factory)", file, "model")
        return ModelSpec(ref, "zoo", _check_zoo_args(ref, kw, file), digest=_zoo_digest())
    where, _, fac = ref.rpartition(":")
    if not fac.isidentifier() or not where:
        raise _err(f"{ref!r}: expected 'path/to/file.py:factory' or 'package.module:factory'",
                   file, "model")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = (_base(file) / where).resolve()
        if not path.is_file():
            raise _err(f"model file {where} not found (looked for {path})", file, "model")
        mod = _import_file(path, file)
        kind, spath, digest = "file", str(path), _digest(path)
    else:
        try:
            mod = importlib.import_module(where)
        except ImportError as e:
            raise _err(f"cannot import module {where!r}: {e}", file, "model") from None
        except Exception as e:  # noqa: BLE001 - the user's code may raise anything
            mf = getattr(sys.modules.get(where), "__file__", None)
            raise ConfigError(f"cannot import module {where!r}: {type(e).__name__}: {e}",
                              file=mf or file, line=_user_line(e, Path(mf) if mf else None),
                              key="model") from None
        mf = getattr(mod, "__file__", None)
        kind, spath, digest = "module", None, _digest(Path(mf)) if mf else ""
    fn = getattr(mod, fac, None)
    if not callable(fn):
        have = sorted(n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")
                      and getattr(v, "__module__", None) == mod.__name__)
        raise _err(f"{where} has no callable {fac!r} (defined there: {', '.join(have) or 'none'})",
                   file, "model")
    return ModelSpec(ref, kind, kw, spath, fac, digest)


def build_model(spec: ModelSpec, file: str | None = None) -> nn.Module:
    """Call the factory with ``model_args``; its result must be an ``nn.Module``."""
    if spec.kind == "zoo":
        fn = MODELS[spec.ref]
    else:
        mod = (_import_file(Path(spec.path), file) if spec.kind == "file"
               else importlib.import_module(spec.ref.rpartition(":")[0]))
        fn = getattr(mod, spec.factory)
    path = Path(spec.path) if spec.path else None
    try:
        model = fn(**spec.args)
    except TypeError as e:
        line = _user_line(e, path)
        if line is None:
            raise _err(f"{spec.ref}(**{spec.args}) failed: {e}", file, "model_args") from None
        raise ConfigError(f"{spec.ref}(**{spec.args}) failed: TypeError: {e}", file=str(path),
                          line=line, key="model_args") from None
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        raise ConfigError(f"{spec.ref}(**{spec.args}) failed: {type(e).__name__}: {e}",
                          file=str(path) if path else file, line=_user_line(e, path),
                          key="model") from None
    if not isinstance(model, nn.Module):
        raise _err(f"{spec.ref} returned a {type(model).__name__}, not a torch.nn.Module", file,
                   "model")
    return model


# ---- data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """Where the inputs come from: ``kind`` is ``builtin``, ``npz`` or ``synthetic``."""

    kind: str
    name: str = ""                     # builtin
    path: str | None = None            # npz
    shape: tuple[int, ...] = ()        # synthetic (one sample)
    samples: int = 0                   # synthetic
    test: int = 0                      # synthetic: the last ``test`` samples
    seed: int = 0                      # synthetic
    test_frac: float = 0.2             # builtin, npz
    labelled: bool = True
    key: str = "data"                  # the recipe key it came from (errors)
    digest: str = ""

    def key_dict(self) -> dict[str, Any]:
        """What determines the data (cache key of trained weights)."""
        return {"kind": self.kind, "name": self.name, "digest": self.digest,
                "shape": list(self.shape), "samples": self.samples, "test": self.test,
                "seed": self.seed, "test_frac": self.test_frac}


def _int(v: Any, key: str, file: str | None, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _err(f"must be an int in {lo}..{hi}, got {v!r}", file, key)
    return v


def _npz_arrays(path: Path, file: str | None, key: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of the arrays in an ``.npz`` (read from the headers, no data)."""
    size = path.stat().st_size
    if size > MAX_NPZ_BYTES:
        raise _err(f"{path} is {size} bytes; the limit is {MAX_NPZ_BYTES}", file, key)
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    ver = np.lib.format.read_magic(f)
                    hdr = (np.lib.format.read_array_header_1_0 if ver == (1, 0)
                           else np.lib.format.read_array_header_2_0)(f)
                out[info.filename[:-4]] = (tuple(hdr[0]), hdr[2])
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise _err(f"{path} is not a NumPy .npz file ({e})", file, key) from None
    return out


def _check_npz(path: Path, file: str | None, key: str) -> bool:
    arrs = _npz_arrays(path, file, key)
    if "x" not in arrs:
        raise _err(f"{path} has no array 'x' (arrays: {', '.join(sorted(arrs)) or 'none'})", file,
                   key)
    shp, dt = arrs["x"]
    if dt.kind not in "fiu" or len(shp) < 2 or shp[0] < 2:
        raise _err(f"{path}: x must be numbers of shape [N >= 2, ...], got {dt} {list(shp)}", file,
                   key)
    n_el = int(np.prod(shp))
    if n_el > MAX_ELEMENTS or n_el // shp[0] > MAX_SAMPLE_ELEMENTS:
        raise _err(f"{path}: x {list(shp)} has {n_el} elements; the limits are {MAX_ELEMENTS} in "
                   f"all and {MAX_SAMPLE_ELEMENTS} per sample", file, key)
    if "y" in arrs:
        ys, yd = arrs["y"]
        if yd.kind not in "iu" or ys != (shp[0],):
            raise _err(f"{path}: y must be integer labels of shape [{shp[0]}], got {yd} "
                       f"{list(ys)}", file, key)
    return "y" in arrs


def parse_data(d: dict[str, Any], file: str | None) -> DataSpec:
    """Validate ``data:`` (or the older ``dataset:``) of recipe mapping ``d``."""
    if "data" in d and "dataset" in d:
        raise _err("give data or dataset, not both", file, "data")
    key = "dataset" if "dataset" in d else "data"
    v = d.get(key, "digits")
    if isinstance(v, str) and not v.endswith(".npz"):
        if v not in DATASETS:
            raise _err(f"unknown dataset {v!r} (known: {', '.join(DATASETS)}; or an .npz file, or "
                       "{synthetic: {shape: [...]}})", file, key)
        return DataSpec("builtin", name=v, key=key)
    if isinstance(v, str):
        v = {"npz": v}
    if not isinstance(v, dict):
        raise _err(f"must be a dataset name, an .npz path or a mapping, got {v!r}", file, key)
    kinds = [k for k in ("builtin", "npz", "synthetic") if k in v]
    known = {"builtin", "npz", "synthetic", "test_frac"}
    bad = sorted(set(v) - known)
    if len(kinds) != 1 or bad:
        raise _err(f"needs exactly one of builtin, npz, synthetic (known keys: "
                   f"{', '.join(sorted(known))}; got {', '.join(map(str, v))})", file, key)
    tf = v.get("test_frac", 0.2)
    if not isinstance(tf, (int, float)) or isinstance(tf, bool) or not 0 < tf < 1:
        raise _err(f"must be a number in (0, 1), got {tf!r}", file, f"{key}.test_frac")
    if kinds == ["builtin"]:
        name = v["builtin"]
        if name not in DATASETS:
            raise _err(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})", file,
                       f"{key}.builtin")
        return DataSpec("builtin", name=name, test_frac=float(tf), key=key)
    if kinds == ["npz"]:
        p = v["npz"]
        if not isinstance(p, str):
            raise _err(f"must be a path to an .npz file, got {p!r}", file, f"{key}.npz")
        path = (_base(file) / p).resolve()
        if not path.is_file():
            raise _err(f"data file {p} not found (looked for {path})", file, f"{key}.npz")
        lab = _check_npz(path, file, f"{key}.npz")
        return DataSpec("npz", path=str(path), test_frac=float(tf), labelled=lab, key=key,
                        digest=_digest(path))
    s = v["synthetic"]
    sk = f"{key}.synthetic"
    if not isinstance(s, dict) or set(s) - {"shape", "samples", "test", "seed"} or "shape" not in s:
        raise _err("must be {shape: [...], samples: int, test: int, seed: int}", file, sk)
    shape = s["shape"]
    if not isinstance(shape, list) or not 1 <= len(shape) <= 4 or not all(
            isinstance(e, int) and not isinstance(e, bool) and 1 <= e <= MAX_SAMPLE_ELEMENTS
            for e in shape):
        raise _err(f"must be a list of 1 to 4 positive ints (one sample, no batch dim), got "
                   f"{shape!r}", file, f"{sk}.shape")
    per = int(np.prod(shape))
    if per > MAX_SAMPLE_ELEMENTS:
        raise _err(f"{shape} is {per} elements per sample; the limit is {MAX_SAMPLE_ELEMENTS}",
                   file, f"{sk}.shape")
    samples = _int(s.get("samples", 32), f"{sk}.samples", file, 2, MAX_SAMPLES)
    if samples * per > MAX_ELEMENTS:
        raise _err(f"{samples} samples of {per} elements is {samples * per}; the limit is "
                   f"{MAX_ELEMENTS}", file, f"{sk}.samples")
    test = _int(s.get("test", max(1, samples // 8)), f"{sk}.test", file, 1, samples - 1)
    seed = _int(s.get("seed", 0), f"{sk}.seed", file, 0, 2**31 - 1)
    return DataSpec("synthetic", shape=tuple(shape), samples=samples, test=test, seed=seed,
                    labelled=False, key=key)


def load_data(spec: DataSpec, seed: int, calib: int, file: str | None = None) -> Split:
    """The :class:`~t2c_sim.models.data.Split` of ``spec`` (seeded and deterministic)."""
    if spec.kind == "builtin":
        return load_dataset(spec.name, seed=seed, test_frac=spec.test_frac, calib=calib)
    if spec.kind == "synthetic":
        return synthetic(spec.shape, spec.samples, spec.test, seed=spec.seed, calib=calib)
    with np.load(spec.path, allow_pickle=False) as z:
        x = torch.from_numpy(np.asarray(z["x"], dtype=np.float32))
        y = None
        if "y" in z.files:
            ya = np.asarray(z["y"])
            if ya.size and ya.min() < 0:
                raise _err(f"{spec.path}: labels y must be >= 0, got {int(ya.min())}", file,
                           f"{spec.key}.npz")
            y = torch.from_numpy(ya.astype(np.int64))
    if not torch.isfinite(x).all():
        raise _err(f"{spec.path}: x holds NaN or infinite values", file, f"{spec.key}.npz")
    return split(x, y, seed, spec.test_frac, calib)


def check_model_on_data(model: nn.Module, data: Split, ref: str, file: str | None,
                        key: str = "data") -> int:
    """Run ``model`` on two inputs: it must take them and return ``[B, classes]`` logits that
    cover the labels; without labels any ``[B, ..., F]`` output (e.g. the ``[B, T, D]`` tokens of
    a transformer block: the cross-check then compares the top-1 of every token). Returns the
    size of the last output axis."""
    x = data.x_test[:2]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # noqa: BLE001 - the user's model may raise anything
        msg = " ".join(str(e).split())
        raise _err(f"model {ref} cannot run on the data's inputs of shape {list(x.shape)} "
                   f"({type(e).__name__}: {msg[:300]})", file, key) from None
    finally:
        model.train(was)
    labelled = data.y_test is not None or data.y_train is not None
    if not isinstance(out, torch.Tensor) or out.shape[0:1] != (len(x),) or \
            (out.dim() != 2 if labelled else out.dim() < 2):
        shp = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise _err(f"model {ref} returns {shp} for inputs {list(x.shape)}; expected logits "
                   f"[{len(x)}, classes]", file, "model")
    classes = int(out.shape[-1])
    for ys in (data.y_train, data.y_test):
        if ys is not None and len(ys) and int(ys.max()) >= classes:
            raise _err(f"labels go up to {int(ys.max())} but model {ref} has {classes} outputs",
                       file, key)
    return classes
