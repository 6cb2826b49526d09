"""YAML recipes: model, dataset, training, quantizers, N:M sparsity, calibration/QAT, fuse.

``load_recipe(path)`` validates every key once, at the edge, into frozen dataclasses; errors
are :class:`~t2c_sim.errors.ConfigError` naming the key and the file (unknown key, wrong type,
bad N:M string, unknown quantizer or argument, missing file, malformed YAML).
Building a validated recipe is :func:`t2c_sim.recipe.flow.build`.

Quantizer precedence for a module: ``overrides[module][kind]`` > ``conv``/``linear`` ``[kind]``
(by layer type) > the default ``weight``/``act``/``output``. N:M schedules: ``oneshot`` prunes
the trained weights once, then fine-tunes with fixed masks; ``gradual`` fine-tunes dense and
recomputes masks at training iterations ``start + interval*k`` (``k = 1..repetition``) with
:class:`~t2c_sim.sparse.pruners.NMPruner` (cubic ramp, ``mode``), ending at the ``N:M`` mask.
``smoothquant`` folds SmoothQuant factors into the float model before quantization
(:func:`~t2c_sim.quant.smoothquant.smooth_model`).

Recipe keys (all but ``model`` optional)::

    name: str                    model: a zoo name | path/to/file.py:factory | pkg.module:factory
    model_args: {str: value}     data: digits | digits28 | digits_tokens | file.npz |
                                       {npz: file, test_frac} | {synthetic: {shape, samples, test}}
    dataset: (older spelling of data: a built-in name)
    train: {epochs, lr, batch}   seed: int     (epochs defaults to 0 for data without labels)
    init: {bn_stats: keep|data, seed: int}     (data: random BN affine, running statistics of the
                                                calibration inputs; for untrained models)
    quant: {weight, act, output: {quantizer: preset, <kwargs>},
            conv: {weight, act, output}, linear: {weight, act, output},   # per layer type
            overrides: {module: {kind: ..}}, fold_bn: bool, quant_bias: bool,
            smoothquant: {alpha: float in [0, 1], layers: [linear module]}}
    sparsity: {nm: "2:4", skip: [module], finetune_epochs: int, schedule: oneshot|gradual,
               start: int >= 0, interval: int >= 1, repetition: int >= 1,   # gradual only
               mode: step_n|groups}                                        # gradual only
    calibration: {samples: int, batch: int}
    qat: {epochs: int, lr: float}
    fuse: {acc_bits, mult_bits, shift_max: int, rounding: half_even|half_up|half_away|floor,
           wrap_ok: bool}
    export: {samples: int}
    crosscheck: {samples: int}   (test inputs the cross-check uses; default the whole test split)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from t2c_sim.config import FuseOptions, RoundMode, SparsitySpec
from t2c_sim.errors import ConfigError
from t2c_sim.files import read_yaml
from t2c_sim.quant.qconfig import make_quantizer
from t2c_sim.recipe.inputs import DataSpec, ModelSpec, parse_data, parse_model
from t2c_sim.sparse.pruners import NMPruner
from t2c_sim.sparse.schedules import PruneSchedule

__all__ = ["Recipe", "TrainCfg", "QuantCfg", "SmoothCfg", "SparsityCfg", "CalibCfg", "QatCfg",
           "load_recipe", "parse_recipe"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainCfg:
    epochs: int = 15
    lr: float = 0.01
    batch: int = 64


@dataclass(frozen=True)
class SmoothCfg:
    """SmoothQuant: ``s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha)`` for each listed linear."""

    alpha: float = 0.5
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuantCfg:
    """Quantizer specs as ``{"quantizer": preset, **kwargs}`` mappings (validated at load)."""

    weight: dict[str, Any] = field(default_factory=lambda: {"quantizer": "minmax_channel"})
    act: dict[str, Any] = field(default_factory=lambda: {"quantizer": "minmax"})
    output: dict[str, Any] | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    fold_bn: bool = True
    quant_bias: bool = False
    conv: dict[str, dict[str, Any]] = field(default_factory=dict)
    linear: dict[str, dict[str, Any]] = field(default_factory=dict)
    smoothquant: SmoothCfg | None = None

    def spec(self) -> dict[str, Any]:
        """The mapping :func:`t2c_sim.quant.quantize.quantize_model` takes."""
        return {"weight": self.weight, "act": self.act, "output": self.output,
                "overrides": self.overrides, "fold_bn": self.fold_bn,
                "quant_bias": self.quant_bias, "types": {"conv": self.conv,
                                                         "linear": self.linear}}


@dataclass(frozen=True)
class SparsityCfg:
    nm: SparsitySpec = SparsitySpec(1, 1)
    skip: tuple[str, ...] = ()
    finetune_epochs: int = 0
    schedule: str = "oneshot"
    start: int = 0
    interval: int = 8
    repetition: int = 4
    mode: str = "step_n"

    def pruner(self) -> NMPruner:
        """The :class:`~t2c_sim.sparse.pruners.NMPruner` of a ``gradual`` schedule.

        Updates at fine-tuning iterations ``start + interval*k``, ``k = 1..repetition``; the
        last one (``end = start + interval*repetition``) reaches ``N:M``.
        """
        return NMPruner(self.nm.n, self.nm.m, PruneSchedule(self.start, self.interval,
                                                            self.repetition), self.mode)


@dataclass(frozen=True)
class CalibCfg:
    samples: int = 256
    batch: int = 256


@dataclass(frozen=True)
class QatCfg:
    epochs: int = 0
    lr: float = 1e-3


@dataclass(frozen=True)
class InitCfg:
    """Float weights of an untrained model: ``bn_stats: data`` sets random BN affine transforms
    and the running statistics of the calibration inputs
    (:func:`t2c_sim.models.init.set_bn_statistics`)."""

    bn_stats: str = "keep"
    seed: int = 0


@dataclass(frozen=True)
class Recipe:
    """A validated recipe (see the module docstring for the keys)."""

    model: str
    name: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    seed: int = 0
    train: TrainCfg = TrainCfg()
    quant: QuantCfg = QuantCfg()
    sparsity: SparsityCfg = SparsityCfg()
    calibration: CalibCfg = CalibCfg()
    qat: QatCfg = QatCfg()
    fuse: FuseOptions = FuseOptions()
    export_samples: int = 8
    path: str | None = None
    model_spec: ModelSpec | None = None
    data: DataSpec | None = None
    init: InitCfg = InitCfg()
    crosscheck_samples: int | None = None

    @property
    def model_source(self) -> ModelSpec:
        """Where the float model comes from (a zoo name when built without :func:`parse_recipe`)."""
        return self.model_spec or ModelSpec(self.model, "zoo", dict(self.model_args))

    @property
    def data_source(self) -> DataSpec:
        """Where the inputs come from (the built-in ``dataset`` without :func:`parse_recipe`)."""
        return self.data or DataSpec("builtin", name=self.dataset)

    def float_key(self, seed: int) -> str:
        """Hash of what determines the trained float weights (model, data, training, seed)."""
        ms, ds = self.model_source, self.data_source
        d: dict[str, Any] = {"model": self.model, "args": self.model_args, "data": self.dataset,
                             "train": asdict(self.train), "seed": seed, "v": 1}
        if ms.digest:  # the model's source: a user's file or module, the zoo's package
            d["model_digest"] = ms.digest
        if ds.kind != "builtin" or ds.test_frac != 0.2:
            d["data"] = ds.key_dict()
        if self.init != InitCfg():
            d["init"] = asdict(self.init)
        blob = json.dumps(d, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- validation helpers ---------------------------------------------------------------------
_TOP = {"name", "model", "model_args", "dataset", "data", "seed", "train", "quant", "sparsity",
        "calibration", "qat", "fuse", "export", "init", "crosscheck"}


def _mapping(v: Any, key: str, file: str | None) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ConfigError(f"must be a mapping, got {type(v).__name__}", file=file, key=key)
    return v


def _known(d: dict[str, Any], known: set[str], key: str, file: str | None) -> None:
    for k in d:
        if k not in known:
            where = f"{key}.{k}" if key else str(k)
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", file=file,
                              key=where)


def _typed(d: dict[str, Any], k: str, typ: type | tuple[type, ...], default: Any, key: str,
           file: str | None, positive: bool = False) -> Any:
    if k not in d:
        return default
    v = d[k]
    types = typ if isinstance(typ, tuple) else (typ,)
    if isinstance(v, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(v, types) or (float in types and isinstance(v, int))
    if not ok:
        names = "/".join(t.__name__ for t in types)
        raise ConfigError(f"must be {names}, got {v!r}", file=file, key=f"{key}.{k}" if key else k)
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"must be a finite number, got {v!r}", file=file,
                          key=f"{key}.{k}" if key else k)
    if positive and v <= 0:
        raise ConfigError(f"must be > 0, got {v!r}", file=file, key=f"{key}.{k}" if key else k)
    if positive is False and isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
        raise ConfigError(f"must be >= 0, got {v!r}", file=file, key=f"{key}.{k}" if key else k)
    return float(v) if types == (float,) else v


def _quantizer(v: Any, key: str, file: str | None) -> dict[str, Any]:
    d = dict(_mapping(v, key, file))
    name = d.pop("quantizer", None)
    if not isinstance(name, str):
        raise ConfigError("needs 'quantizer: <preset>'", file=file, key=f"{key}.quantizer")
    for k, x in d.items():
        if isinstance(x, float) and not math.isfinite(x):
            raise ConfigError(f"must be a finite number, got {x!r}", file=file, key=f"{key}.{k}")
    make_quantizer(name, key=key, file=file, **d)   # validates the preset and its arguments
    return {"quantizer": name, **d}


def _kinds(v: Any, key: str, file: str | None) -> dict[str, dict[str, Any]]:
    """``{weight|act|output: quantizer spec}`` (an override or a per-layer-type block)."""
    kinds = _mapping(v, key, file)
    _known(kinds, {"weight", "act", "output"}, key, file)
    return {k: _quantizer(q, f"{key}.{k}", file) for k, q in kinds.items()}


def _smooth(v: Any, file: str | None) -> SmoothCfg | None:
    if v is None:
        return None
    d = _mapping(v, "quant.smoothquant", file)
    _known(d, {"alpha", "layers"}, "quant.smoothquant", file)
    alpha = _typed(d, "alpha", float, 0.5, "quant.smoothquant", file)
    if alpha > 1.0:
        raise ConfigError(f"must be in [0, 1], got {alpha!r}", file=file,
                          key="quant.smoothquant.alpha")
    layers = d.get("layers")
    if (not isinstance(layers, list) or not layers
            or not all(isinstance(x, str) for x in layers)):
        raise ConfigError("must be a non-empty list of linear module names", file=file,
                          key="quant.smoothquant.layers")
    return SmoothCfg(alpha, tuple(layers))


def _quant(d: dict[str, Any], file: str | None) -> QuantCfg:
    _known(d, {"weight", "act", "output", "overrides", "fold_bn", "quant_bias", "conv", "linear",
               "smoothquant"}, "quant", file)
    dflt = QuantCfg()
    over = {str(mod): _kinds(kinds, f"quant.overrides.{mod}", file)
            for mod, kinds in _mapping(d.get("overrides"), "quant.overrides", file).items()}
    return QuantCfg(
        weight=_quantizer(d["weight"], "quant.weight", file) if "weight" in d else dflt.weight,
        act=_quantizer(d["act"], "quant.act", file) if "act" in d else dflt.act,
        output=_quantizer(d["output"], "quant.output", file) if d.get("output") else None,
        overrides=over,
        fold_bn=_typed(d, "fold_bn", bool, True, "quant", file),
        quant_bias=_typed(d, "quant_bias", bool, False, "quant", file),
        conv=_kinds(d.get("conv"), "quant.conv", file),
        linear=_kinds(d.get("linear"), "quant.linear", file),
        smoothquant=_smooth(d.get("smoothquant"), file))


_GRADUAL_KEYS = ("start", "interval", "repetition", "mode")


def _sparsity(d: dict[str, Any], file: str | None) -> SparsityCfg:
    _known(d, {"nm", "skip", "finetune_epochs", "schedule", *_GRADUAL_KEYS}, "sparsity", file)
    nm = d.get("nm", "dense")
    if not isinstance(nm, str):
        raise ConfigError(f"N:M must be a string like '2:4', got {nm!r}", file=file,
                          key="sparsity.nm")
    try:
        spec = SparsitySpec.parse(nm)
    except ConfigError as e:
        raise e.with_context(file=file, key="sparsity.nm") from None
    skip = d.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        raise ConfigError("must be a list of module names", file=file, key="sparsity.skip")
    sched = _typed(d, "schedule", str, "oneshot", "sparsity", file)
    if sched not in ("oneshot", "gradual"):
        raise ConfigError(f"unknown schedule {sched!r} (supported: oneshot, gradual)", file=file,
                          key="sparsity.schedule")
    epochs = _typed(d, "finetune_epochs", int, 0, "sparsity", file)
    if sched == "oneshot":
        for k in _GRADUAL_KEYS:
            if k in d:
                raise ConfigError("only valid with 'schedule: gradual'", file=file,
                                  key=f"sparsity.{k}")
        return SparsityCfg(spec, tuple(skip), epochs, sched)
    if spec.dense:
        raise ConfigError("a gradual schedule needs an N:M target, not dense", file=file,
                          key="sparsity.nm")
    if epochs < 1:
        raise ConfigError("a gradual schedule prunes during fine-tuning: need >= 1", file=file,
                          key="sparsity.finetune_epochs")
    dflt = SparsityCfg()
    mode = _typed(d, "mode", str, dflt.mode, "sparsity", file)
    if mode not in ("step_n", "groups"):
        raise ConfigError(f"unknown mode {mode!r} (supported: step_n, groups)", file=file,
                          key="sparsity.mode")
    return SparsityCfg(spec, tuple(skip), epochs, sched,
                       start=_typed(d, "start", int, dflt.start, "sparsity", file),
                       interval=_typed(d, "interval", int, dflt.interval, "sparsity", file, True),
                       repetition=_typed(d, "repetition", int, dflt.repetition, "sparsity", file,
                                         True),
                       mode=mode)


def _init(d: dict[str, Any], file: str | None) -> InitCfg:
    ini = _mapping(d.get("init"), "init", file)
    _known(ini, {"bn_stats", "seed"}, "init", file)
    bn = _typed(ini, "bn_stats", str, "keep", "init", file)
    if bn not in ("keep", "data"):
        raise ConfigError(f"unknown bn_stats {bn!r} (keep: as built or trained; data: random BN "
                          "affine and the running statistics of the calibration inputs)",
                          file=file, key="init.bn_stats")
    return InitCfg(bn, _typed(ini, "seed", int, 0, "init", file))


def _crosscheck_samples(d: dict[str, Any], file: str | None) -> int | None:
    cc = _mapping(d.get("crosscheck"), "crosscheck", file)
    _known(cc, {"samples"}, "crosscheck", file)
    return _typed(cc, "samples", int, None, "crosscheck", file, True)


def _check_labels(r: Recipe, file: str | None) -> None:
    """Training, fine-tuning and QAT need labels; synthetic data (or an .npz without y) has none."""
    if r.data_source.labelled:
        return
    for key, n in (("train.epochs", r.train.epochs), ("sparsity.finetune_epochs",
                                                      r.sparsity.finetune_epochs),
                   ("qat.epochs", r.qat.epochs)):
        if n:
            raise ConfigError(f"training needs labels and the data has none ({r.data_source.kind}"
                              f"); set {key}: 0", file=file, key=key)


def parse_recipe(data: Any, file: str | None = None) -> Recipe:
    """Validate a recipe mapping (already parsed YAML); ``file`` names it in errors."""
    d = _mapping(data, "", file) if data is not None else None
    if not d:
        raise ConfigError("recipe is empty", file=file)
    _known(d, _TOP, "", file)
    if "model" not in d:
        raise ConfigError("missing required key", file=file, key="model")
    mspec = parse_model(d["model"], d.get("model_args"), file)
    model, margs = mspec.ref, dict(mspec.args)
    dspec = parse_data(d, file)
    dataset = dspec.name if dspec.kind == "builtin" else ""
    tr = _mapping(d.get("train"), "train", file)
    _known(tr, {"epochs", "lr", "batch"}, "train", file)
    cal = _mapping(d.get("calibration"), "calibration", file)
    _known(cal, {"samples", "batch"}, "calibration", file)
    qa = _mapping(d.get("qat"), "qat", file)
    _known(qa, {"epochs", "lr"}, "qat", file)
    fu = _mapping(d.get("fuse"), "fuse", file)
    _known(fu, {"acc_bits", "mult_bits", "shift_max", "rounding", "wrap_ok"}, "fuse", file)
    ex = _mapping(d.get("export"), "export", file)
    _known(ex, {"samples"}, "export", file)
    try:
        rounding = RoundMode.parse(fu.get("rounding", "half_even"))
    except ConfigError as e:
        raise e.with_context(file=file, key="fuse.rounding") from None
    fuse = FuseOptions(_typed(fu, "acc_bits", int, 32, "fuse", file, True),
                   _typed(fu, "mult_bits", int, 32, "fuse", file, True),
                   _typed(fu, "shift_max", int, 63, "fuse", file),
                   rounding, _typed(fu, "wrap_ok", bool, False, "fuse", file))
    if not 8 <= fuse.acc_bits <= 48 or not 2 <= fuse.mult_bits <= 32 or fuse.shift_max > 63:
        raise ConfigError("need acc_bits in 8..48, mult_bits in 2..32, shift_max <= 63",
                          file=file, key="fuse")
    recipe = Recipe(
        model=model, name=_typed(d, "name", str, Path(file).stem if file else mspec.stem, "", file),
        model_args=dict(margs), dataset=dataset, seed=_typed(d, "seed", int, 0, "", file),
        train=TrainCfg(_typed(tr, "epochs", int, 15 if dspec.labelled else 0, "train", file),
                       _typed(tr, "lr", float, 0.01, "train", file, True),
                       _typed(tr, "batch", int, 64, "train", file, True)),
        quant=_quant(_mapping(d.get("quant"), "quant", file), file),
        sparsity=_sparsity(_mapping(d.get("sparsity"), "sparsity", file), file),
        calibration=CalibCfg(_typed(cal, "samples", int, 256, "calibration", file, True),
                             _typed(cal, "batch", int, 256, "calibration", file, True)),
        qat=QatCfg(_typed(qa, "epochs", int, 0, "qat", file),
                   _typed(qa, "lr", float, 1e-3, "qat", file, True)),
        fuse=fuse, export_samples=_typed(ex, "samples", int, 8, "export", file, True),
        path=file, model_spec=mspec, data=dspec, init=_init(d, file),
        crosscheck_samples=_crosscheck_samples(d, file))
    _check_labels(recipe, file)
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe; :class:`ConfigError` names the file (and key, line)."""
    p = Path(path)
    return parse_recipe(read_yaml(p, "recipe file"), str(p))
