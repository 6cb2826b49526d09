"""Build a validated recipe: train -> prune (N:M) -> smooth -> quantize, calibrate (QAT) -> fuse.

The trained float weights are cached under ``cache_dir`` by a hash of everything that
determines them (:meth:`~t2c_sim.recipe.schema.Recipe.float_key`); the records come with golden
results attached and the cross-check of the fake-quant model against them
(:mod:`t2c_sim.verify.crosscheck`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2c_sim.errors import ConfigError
from t2c_sim.files import atomic_write
from t2c_sim.fuse import fuse, quantize_input
from t2c_sim.golden import attach_results, run_network
from t2c_sim.models.init import set_bn_statistics
from t2c_sim.quant.calibrate import calibrate
from t2c_sim.quant.quantize import quantize_model
from t2c_sim.quant.smoothquant import input_smooth, smooth_model
from t2c_sim.recipe.inputs import build_model, check_model_on_data, load_data
from t2c_sim.recipe.schema import Recipe
from t2c_sim.train import apply_masks, finetune_gradual, finetune_masked, nm_masks, qat, train
from t2c_sim.verify.crosscheck import end_to_end, layer_diffs

__all__ = ["BuildResult", "build"]

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    """Everything :func:`build` produced.

    ``records`` (fused on the first ``export_samples`` test inputs, golden results attached),
    ``x_q`` their integer input, ``crosscheck`` =
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
    """The float model: built by its factory, checked on the data, then trained (cached by
    :meth:`~t2c_sim.recipe.schema.Recipe.float_key`) or, untrained, given BN statistics."""
    torch.manual_seed(seed)
    spec = recipe.model_source
    model = build_model(spec, recipe.path)
    check_model_on_data(model, split, spec.ref, recipe.path, recipe.data_source.key)
    if recipe.init.bn_stats == "data":
        set_bn_statistics(model, split.x_calib, seed=recipe.init.seed)
    t = recipe.train
    if not t.epochs:
        model.eval()
        return model
    path = cache_dir / f"{spec.stem}-{recipe.float_key(seed)}.pt" if cache_dir else None
    if path is not None and path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        log.info("loaded cached float weights %s", path)
        return model
    train(model, split.x_train, split.y_train, epochs=t.epochs, lr=t.lr, batch=t.batch, seed=seed)
    if path is not None:
        state = model.state_dict()
        atomic_write(path, lambda tmp: torch.save(state, tmp))
    return model


def build(recipe: Recipe, seed: int | None = None, cache_dir: str | Path | None = "build/cache",
          crosscheck_samples: int | None = None) -> BuildResult:
    """train -> prune (N:M, masked or gradual fine-tuning) -> smooth -> quantize, calibrate
    (QAT) -> fuse.

    ``seed`` defaults to the recipe's. Float weights are cached in ``cache_dir`` (``None``
    disables caching) by :meth:`~t2c_sim.recipe.schema.Recipe.float_key`. The cross-check runs on
    the first ``crosscheck_samples`` test inputs (default: the recipe's ``crosscheck.samples``,
    else the whole test split). Errors from any
    stage are the package's own (:class:`FuseError`, :class:`ConfigError`, ...).
    """
    seed = recipe.seed if seed is None else seed
    split = load_data(recipe.data_source, seed, recipe.calibration.samples, recipe.path)
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
    records = attach_results(records, run_network(records, x_q))
    n_cc = crosscheck_samples or recipe.crosscheck_samples or len(split.x_test)
    xt = split.x_test[:n_cc]
    yt = None if split.y_test is None else split.y_test[:n_cc]
    eval_recs = records
    if any(r.meta.get("input_specific") for r in records):
        eval_recs = fuse(qmodel, xt, **kw)   # token-wise: records are per input
    xt_q = quantize_input(qmodel, xt)
    cc = {"layers": layer_diffs(qmodel, eval_recs, xt_q),
          "end_to_end": end_to_end(fmodel, qmodel, eval_recs, xt, yt)}
    log.info("built %s: %s", recipe.name, cc["end_to_end"])
    s_in = input_smooth(qmodel)
    return BuildResult(recipe, fmodel, qmodel, records, x_q, split, cc, masks, history, smooth,
                       None if s_in is None else s_in.tolist())
