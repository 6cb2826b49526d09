"""YAML recipes: model, dataset, training, quantizers, N:M sparsity, calibration/QAT, fuse.

``load_recipe(path)`` validates every key once, at the edge, into frozen dataclasses; errors
are :class:`~t2c_sim.errors.ConfigError` naming the key and the file (unknown key, wrong type,
bad N:M string, unknown quantizer or argument, missing file, malformed YAML).
``build(recipe)`` runs train -> prune (N:M) -> smooth -> quantize/calibrate (and QAT) -> fuse,
caching the trained float weights under ``cache_dir`` by a hash of everything that determines
them.

Quantizer precedence for a module: ``overrides[module][kind]`` > ``conv``/``linear`` ``[kind]``
(by layer type) > the default ``weight``/``act``/``output``. N:M schedules: ``oneshot`` prunes
the trained weights once, then fine-tunes with fixed masks; ``gradual`` fine-tunes dense and
recomputes masks at training iterations ``start + interval*k`` (``k = 1..repetition``) with
:class:`~t2c_sim.sparse.pruners.NMPruner` (cubic ramp, ``mode``), ending at the ``N:M`` mask.
``smoothquant`` folds SmoothQuant factors into the float model before quantization
(:func:`~t2c_sim.quant.smoothquant.smooth_model`).

Recipe keys (all but ``model`` optional)::

    name: str                    model: digits_cnn | mlp | resnet_block | transformer_mlp
    model_args: {str: int}       dataset: digits | digits_tokens
    train: {epochs, lr, batch}   seed: int
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
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from t2c_sim.config import FuseOptions, RoundMode, SparsitySpec
from t2c_sim.errors import ConfigError

__all__ = ["Recipe", "TrainCfg", "QuantCfg", "SmoothCfg", "SparsityCfg", "CalibCfg", "QatCfg",
           "load_recipe", "parse_recipe", "BuildResult", "build"]

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

    def pruner(self) -> Any:
        """The :class:`~t2c_sim.sparse.pruners.NMPruner` of a ``gradual`` schedule.

        Updates at fine-tuning iterations ``start + interval*k``, ``k = 1..repetition``; the
        last one (``end = start + interval*repetition``) reaches ``N:M``.
        """
        from t2c_sim.sparse.pruners import NMPruner
        from t2c_sim.sparse.schedules import PruneSchedule

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
class Recipe:
    """A validated recipe (see the module docstring for the keys)."""

    model: str
    name: str = ""
    model_args: dict[str, int] = field(default_factory=dict)
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

    def float_key(self, seed: int) -> str:
        """Hash of what determines the trained float weights (model, data, training, seed)."""
        blob = json.dumps({"model": self.model, "args": self.model_args, "data": self.dataset,
                           "train": asdict(self.train), "seed": seed, "v": 1}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- validation helpers ---------------------------------------------------------------------
_TOP = {"name", "model", "model_args", "dataset", "seed", "train", "quant", "sparsity",
        "calibration", "qat", "fuse", "export"}


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
    if positive and v <= 0:
        raise ConfigError(f"must be > 0, got {v!r}", file=file, key=f"{key}.{k}" if key else k)
    if positive is False and isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
        raise ConfigError(f"must be >= 0, got {v!r}", file=file, key=f"{key}.{k}" if key else k)
    return float(v) if types == (float,) else v


def _quantizer(v: Any, key: str, file: str | None) -> dict[str, Any]:
    from t2c_sim.quant.qconfig import make_quantizer

    d = dict(_mapping(v, key, file))
    name = d.pop("quantizer", None)
    if not isinstance(name, str):
        raise ConfigError("needs 'quantizer: <preset>'", file=file, key=f"{key}.quantizer")
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


def parse_recipe(data: Any, file: str | None = None) -> Recipe:
    """Validate a recipe mapping (already parsed YAML); ``file`` names it in errors."""
    from t2c_sim.models.data import DATASETS
    from t2c_sim.models.nets import MODELS

    d = _mapping(data, "", file) if data is not None else None
    if not d:
        raise ConfigError("recipe is empty", file=file)
    _known(d, _TOP, "", file)
    if "model" not in d:
        raise ConfigError("missing required key", file=file, key="model")
    model = _typed(d, "model", str, None, "", file)
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r} (known: {', '.join(MODELS)})", file=file,
                          key="model")
    dataset = _typed(d, "dataset", str, "digits", "", file)
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})",
                          file=file, key="dataset")
    margs = _mapping(d.get("model_args"), "model_args", file)
    for k, v in margs.items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(f"must be an int, got {v!r}", file=file, key=f"model_args.{k}")
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
    return Recipe(
        model=model, name=_typed(d, "name", str, Path(file).stem if file else model, "", file),
        model_args=dict(margs), dataset=dataset, seed=_typed(d, "seed", int, 0, "", file),
        train=TrainCfg(_typed(tr, "epochs", int, 15, "train", file),
                       _typed(tr, "lr", float, 0.01, "train", file, True),
                       _typed(tr, "batch", int, 64, "train", file, True)),
        quant=_quant(_mapping(d.get("quant"), "quant", file), file),
        sparsity=_sparsity(_mapping(d.get("sparsity"), "sparsity", file), file),
        calibration=CalibCfg(_typed(cal, "samples", int, 256, "calibration", file, True),
                             _typed(cal, "batch", int, 256, "calibration", file, True)),
        qat=QatCfg(_typed(qa, "epochs", int, 0, "qat", file),
                   _typed(qa, "lr", float, 1e-3, "qat", file, True)),
        fuse=fuse, export_samples=_typed(ex, "samples", int, 8, "export", file, True),
        path=file)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe; :class:`ConfigError` names the file (and key)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("recipe file not found", file=str(p))
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"malformed YAML{where}", file=str(p)) from None
    return parse_recipe(data, str(p))



# ---- build ----------------------------------------------------------------------------------
@dataclass
class BuildResult:
    """Everything :func:`build` produced.

    ``records`` (fused on the first ``export_samples`` test inputs, golden results attached
    when the golden model is importable), ``x_q`` their integer input, ``crosscheck`` =
    ``{"layers": layer_diffs, "end_to_end": accuracies/agreement}`` on the whole test split.

    How the integer input is produced (host side): ``x_q = quantize_input(qmodel, x)`` =
    ``clamp(round_half_even(x' / s_x) + z_x, qmin, qmax)`` (channel-last for images) with the
    first layer's input format ``(s_x, z_x)`` and ``x' = x``, or with SmoothQuant on the first
    layer ``x' = x / s`` per input feature (``input_smooth`` = ``s``, also in the meta of the
    records that read ``"input"``). ``masks`` are the final pruning masks (torch layout) and
    ``mask_history`` the ``(iteration, masks)`` of every gradual-schedule update.
    ``smooth`` holds the SmoothQuant factors ``s`` by linear module name.
    """

    recipe: Recipe
    float_model: Any
    qmodel: Any
    records: list[Any]
    x_q: Any
    split: Any
    crosscheck: dict[str, Any]
    masks: dict[str, Any] = field(default_factory=dict)
    mask_history: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    smooth: dict[str, Any] = field(default_factory=dict)
    input_smooth: list[float] | None = None


def _float_model(recipe: Recipe, split: Any, seed: int, cache_dir: Path | None) -> Any:
    import torch

    from t2c_sim.models import make_model
    from t2c_sim.train import train

    torch.manual_seed(seed)
    model = make_model(recipe.model, **recipe.model_args)
    path = cache_dir / f"{recipe.model}-{recipe.float_key(seed)}.pt" if cache_dir else None
    if path is not None and path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        log.info("loaded cached float weights %s", path)
        return model
    t = recipe.train
    train(model, split.x_train, split.y_train, epochs=t.epochs, lr=t.lr, batch=t.batch, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
    return model


def build(recipe: Recipe, seed: int | None = None, cache_dir: str | Path | None = "build/cache",
          ) -> BuildResult:
    """train -> prune (N:M, masked or gradual fine-tuning) -> smooth -> quantize, calibrate
    (QAT) -> fuse.

    ``seed`` defaults to the recipe's. Float weights are cached in ``cache_dir`` (``None``
    disables caching) by :meth:`Recipe.float_key`. Errors from any stage are the package's
    own (:class:`FuseError`, :class:`ConfigError`, ...).
    """
    import copy

    from t2c_sim.fuse import fuse, quantize_input
    from t2c_sim.models import load_dataset
    from t2c_sim.quant.calibrate import calibrate
    from t2c_sim.quant.quantize import quantize_model
    from t2c_sim.quant.smoothquant import input_smooth, smooth_model
    from t2c_sim.train import (
        apply_masks,
        finetune_gradual,
        finetune_masked,
        nm_masks,
        qat,
    )
    from t2c_sim.verify.crosscheck import end_to_end, layer_diffs

    seed = recipe.seed if seed is None else seed
    split = load_dataset(recipe.dataset, seed=seed, calib=recipe.calibration.samples)
    fmodel = _float_model(recipe, split, seed, Path(cache_dir) if cache_dir else None)
    sp = recipe.sparsity
    masks: dict[str, Any] = {}
    history: list[tuple[int, dict[str, Any]]] = []
    if not sp.nm.dense and sp.schedule == "gradual":
        fmodel = copy.deepcopy(fmodel)
        try:
            masks = finetune_gradual(fmodel, sp.pruner(), split.x_train, split.y_train,
                                     epochs=sp.finetune_epochs, example_input=split.x_test[:2],
                                     skip=sp.skip, seed=seed,
                                     on_update=lambda t, m: history.append((t, m)))
        except ConfigError as e:
            raise e.with_context(file=recipe.path) from None
        apply_masks(fmodel, masks, sp.nm.n, sp.nm.m)
    elif not sp.nm.dense:
        fmodel = copy.deepcopy(fmodel)
        masks = nm_masks(fmodel, sp.nm.n, sp.nm.m, split.x_test[:2], sp.skip)
        apply_masks(fmodel, masks, sp.nm.n, sp.nm.m)
        if sp.finetune_epochs:
            finetune_masked(fmodel, masks, split.x_train, split.y_train,
                            epochs=sp.finetune_epochs, seed=seed)
    smooth: dict[str, Any] = {}
    sq = recipe.quant.smoothquant
    if sq is not None:
        fmodel, smooth = smooth_model(fmodel, split.x_calib, sq.layers, sq.alpha)
    qmodel = quantize_model(fmodel, recipe.quant.spec())
    apply_masks(qmodel, masks, sp.nm.n, sp.nm.m)
    cb = recipe.calibration.batch
    calibrate(qmodel, [split.x_calib[i:i + cb] for i in range(0, len(split.x_calib), cb)])
    if recipe.qat.epochs:
        qat(qmodel, split.x_train, split.y_train, epochs=recipe.qat.epochs, lr=recipe.qat.lr,
            seed=seed)
    f = recipe.fuse
    kw = dict(acc_bits=f.acc_bits, mult_bits=f.mult_bits, shift_max=f.shift_max,
              mode=f.mode, wrap_ok=f.wrap_ok)
    x_exp = split.x_test[:recipe.export_samples]
    records = fuse(qmodel, x_exp, **kw)
    x_q = quantize_input(qmodel, x_exp)
    try:
        from t2c_sim.golden import attach_results, run_network
        records = attach_results(records, run_network(records, x_q))
    except ImportError:  # golden model not installed: records without results
        log.warning("golden model unavailable; records carry no results")
    eval_recs = records
    if any(r.meta.get("input_specific") for r in records):
        eval_recs = fuse(qmodel, split.x_test, **kw)   # token-wise: records are per input
    xt_q = quantize_input(qmodel, split.x_test)
    cc = {"layers": layer_diffs(qmodel, eval_recs, xt_q),
          "end_to_end": end_to_end(fmodel, qmodel, eval_recs, split.x_test, split.y_test)}
    log.info("built %s: %s", recipe.name, cc["end_to_end"])
    s_in = input_smooth(qmodel)
    return BuildResult(recipe, fmodel, qmodel, records, x_q, split, cc, masks, history, smooth,
                       None if s_in is None else s_in.tolist())
