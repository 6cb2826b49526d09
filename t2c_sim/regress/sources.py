"""Where layer records come from: a recipe (front end), a records folder, an ONNX model, or a
generator.

:func:`records_from_recipe` builds a recipe with :func:`t2c_sim.recipe.build` (compress,
calibrate, fuse; cached) and returns the records with golden results plus the cross-check;
:func:`records_from_onnx` imports a quantized ONNX model (:func:`t2c_sim.importers.import_onnx`),
runs the golden model on a synthetic or given input and, on request, compares every layer with
ONNX Runtime (:func:`t2c_sim.verify.ort_parity.ort_parity`);
:func:`records_from_random` uses :mod:`t2c_sim.workloads.gen`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import ConfigError
from t2c_sim.export import load_network, load_record
from t2c_sim.golden import attach_results, run_network
from t2c_sim.importers import import_onnx, load_input
from t2c_sim.record import LayerRecord
from t2c_sim.verify.ort_parity import ort_parity
from t2c_sim.workloads import gen

log = logging.getLogger(__name__)


@dataclass
class Source:
    """Records to evaluate plus what the reports show about where they came from."""

    title: str
    source: str
    records: list[LayerRecord]
    crosscheck: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)   # verify.ort_parity.ort_parity(...)
    seed: int = 0


def _split_crosscheck(cc: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a cross-check dict into per-layer stats and end-to-end scalar figures."""
    if not isinstance(cc, dict):
        return {}, {}
    layers: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for k, v in cc.items():
        if k in ("layers", "per_layer") and isinstance(v, dict):
            layers.update(v)
        elif k in ("end_to_end", "summary", "e2e") and isinstance(v, dict):
            summary.update({kk: vv for kk, vv in v.items()
                            if isinstance(vv, (int, float, str, bool))})
        elif isinstance(v, dict):
            layers[k] = v
        elif isinstance(v, (int, float, str, bool, np.generic)):
            summary[k] = v.item() if isinstance(v, np.generic) else v
    return layers, summary


def load_checked_recipe(path: str | Path) -> Any:
    """:func:`t2c_sim.recipe.load_recipe` plus the module names the recipe refers to
    (``quant.overrides``, ``sparsity.skip``, ``quant.smoothquant.layers``) checked against the
    model's modules: a name that matches nothing is an error naming the file and key (it was
    silently ignored). Builds nothing (the model is constructed, not trained)."""
    from t2c_sim.recipe import load_recipe
    from t2c_sim.recipe.inputs import build_model

    recipe = load_recipe(path)
    try:
        model = build_model(recipe.model_source, str(path))
    except ConfigError as e:
        raise e.with_context(file=str(path)) from None
    mods = [n for n, _ in model.named_modules() if n]
    shown = ", ".join(mods[:12]) + (", ..." if len(mods) > 12 else "")
    refs = [(f"quant.overrides.{m}", m) for m in recipe.quant.overrides]
    refs += [("sparsity.skip", m) for m in recipe.sparsity.skip]
    if recipe.quant.smoothquant is not None:
        refs += [("quant.smoothquant.layers", m) for m in recipe.quant.smoothquant.layers]
    for key, m in refs:
        if m not in mods:
            raise ConfigError(f"model {recipe.model!r} has no module named {m!r} (modules: "
                              f"{shown})", file=str(path), key=key)
    return recipe


def records_from_recipe(path: str | Path, *, seed: int | None = None,
                        cache_dir: str | Path = "build/cache") -> Source:
    """Build a recipe (cached) and return its records, cross-check and end-to-end figures.

    ``seed`` overrides the recipe's ``seed:`` only when given (``t2c-sim run --seed``).
    """
    from t2c_sim.recipe import build

    recipe = load_checked_recipe(path)
    s = recipe.seed if seed is None else int(seed)
    res = build(recipe, seed=s, cache_dir=str(cache_dir))
    layers, summary = _split_crosscheck(getattr(res, "crosscheck", None))
    if not res.records:
        raise ConfigError("the recipe fuses to no layers", file=str(path))
    return Source(title=Path(path).stem, source=str(path), records=list(res.records),
                  crosscheck=layers, summary=summary, seed=s)


def records_from_dir(path: str | Path) -> Source:
    """Records saved with :func:`t2c_sim.export.save_network` (or a single record stem)."""
    p = Path(path)
    if (p / "network.json").exists():
        recs = load_network(p)
    elif p.with_suffix(".json").exists() or p.suffix in (".json", ".npz"):
        recs = [load_record(p)]
    else:
        raise ConfigError("not a recipe (.yaml), a records folder (network.json) or a record",
                          file=str(p))
    return Source(title=p.stem, source=str(p), records=recs)


def records_from_onnx(path: str | Path, *, rounding: str = "ort_fp32", nm: str | None = None,
                      m: int = 4, input_path: str | Path | None = None, seed: int = 0,
                      parity: tuple[str, ...] = ()) -> Source:
    """Import an ONNX model, attach golden results for one input batch, optionally compare with
    ONNX Runtime at the optimization levels ``parity`` (``verify.ort_parity.LEVELS``).

    The input is ``input_path`` (``.npz``/``.npy``, the model's input shape) or, without it, a
    synthetic batch spread over the input's quantized range (``seed``).
    """
    imp = import_onnx(path, rounding=rounding, nm=nm, m=m)
    x = load_input(input_path, imp.input) if input_path else imp.input.synthetic(seed)
    trace = run_network(imp.records, imp.input.quantize(x))
    records = attach_results(imp.records, trace)
    summary: dict[str, Any] = {"rounding": imp.rounding.value, "N:M": f"{imp.nm[0]}:{imp.nm[1]}",
                               "input": str(input_path) if input_path else f"synthetic (seed {seed})"}
    par: dict[str, Any] = {}
    if parity:
        par = ort_parity(imp, x, trace, records, tuple(parity))
    return Source(title=Path(path).stem, source=str(path), records=records, summary=summary,
                  parity=par)


#: Random entries of a suite: kind -> (generator, default parameters). ``name`` defaults to the
#: entry's name for single layers.
GENERATORS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "linear": (gen.random_linear_record, {"c_in": 32, "c_out": 16, "rows": 8}),
    "conv": (gen.random_conv_record, {"c_in": 8, "c_out": 8, "h": 6, "w": 6}),
    "network": (gen.random_network, {}),
}


def records_from_random(kind: str, params: dict[str, Any], seed: int, name: str) -> Source:
    """Generate a random layer or network with golden results (:mod:`t2c_sim.workloads.gen`)."""
    if kind not in GENERATORS:
        raise ConfigError(f"unknown random kind {kind!r}", key="random")
    fn, defaults = GENERATORS[kind]
    p = {**defaults, **({} if kind == "network" else {"name": name}), **params}
    out = fn(np.random.default_rng(seed), **p)
    recs = list(out) if kind == "network" else [out]
    desc = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return Source(title=name, source=f"random {kind}({desc}) seed={seed}", records=recs)
