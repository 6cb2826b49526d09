"""Quantizer presets by name: ``make_quantizer("lsq", nbit=4, unsigned=True)``.

=================  ===========================================================================
name               constructor (defaults)
=================  ===========================================================================
``minmax``         :class:`MinMaxQuantizer` (tensor-wise)
``minmax_channel`` :class:`MinMaxChannelQuantizer` (per output channel, signed symmetric)
``minmax_token``   :class:`MinMaxTokenQuantizer` (per ``(batch, token)`` row)
``lsq``            :class:`LSQQuantizer` (tensor-wise; ``granularity="channel"`` works too)
``lsq_token``      :class:`LSQTokenQuantizer`
``adaround``       :class:`AdaRoundQuantizer` (channel-wise weights)
``qdrop``          :class:`QDropQuantizer` (``p=0.5``)
``qdrop_token``    :class:`QDropTokenQuantizer`
``smoothquant``    :class:`SmoothQuantizer` (input quantizer of a smoothed linear)
``pot``            :class:`PowerOfTwoQuantizer` (``timeout=1000``)
=================  ===========================================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from t2c_sim.errors import ConfigError, QuantError
from t2c_sim.quant.adaround import AdaRoundQuantizer
from t2c_sim.quant.base import Quantizer
from t2c_sim.quant.lsq import LSQQuantizer, LSQTokenQuantizer
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer, MinMaxTokenQuantizer
from t2c_sim.quant.pot import PowerOfTwoQuantizer
from t2c_sim.quant.qdrop import QDropQuantizer, QDropTokenQuantizer
from t2c_sim.quant.smoothquant import SmoothQuantizer

__all__ = ["QUANTIZERS", "make_quantizer", "register_quantizer"]

QUANTIZERS: dict[str, Callable[..., Quantizer]] = {
    "minmax": MinMaxQuantizer,
    "minmax_channel": MinMaxChannelQuantizer,
    "minmax_token": MinMaxTokenQuantizer,
    "lsq": LSQQuantizer,
    "lsq_token": LSQTokenQuantizer,
    "adaround": AdaRoundQuantizer,
    "qdrop": QDropQuantizer,
    "qdrop_token": QDropTokenQuantizer,
    "smoothquant": SmoothQuantizer,
    "pot": PowerOfTwoQuantizer,
}


def register_quantizer(name: str, ctor: Callable[..., Quantizer]) -> None:
    """Add a preset; an existing name is an error (no silent override)."""
    if name in QUANTIZERS:
        raise ConfigError(f"quantizer {name!r} is already registered", key=name)
    QUANTIZERS[name] = ctor


def make_quantizer(name: str, *, key: str = "quantizer", file: str | None = None,
                   **kw: Any) -> Quantizer:
    """Build the quantizer registered as ``name`` with keyword arguments ``kw``.

    Errors are :class:`~t2c_sim.errors.ConfigError` naming ``key`` (the config key holding the
    name, e.g. ``"wq"``) and ``file``: an unknown name, an unknown argument, or an argument the
    quantizer rejects.
    """
    if not isinstance(name, str) or name not in QUANTIZERS:
        raise ConfigError(f"unknown quantizer {name!r} (known: {', '.join(sorted(QUANTIZERS))})",
                          file=file, key=key)
    ctor = QUANTIZERS[name]
    params = inspect.signature(ctor).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for k in kw:
            if k not in params:
                raise ConfigError(f"quantizer {name!r} has no argument {k!r} (accepted: "
                                  f"{', '.join(p for p in params if p != 'self')})",
                                  file=file, key=f"{key}.{k}")
    try:
        return ctor(**kw)
    except QuantError as e:
        raise ConfigError(f"quantizer {name!r}: {e}", file=file, key=key) from None
