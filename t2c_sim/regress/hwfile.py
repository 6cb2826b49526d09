"""Hardware configurations from YAML files and ``--hw-param key=value`` overrides.

A hardware YAML file is a flat mapping of :class:`~t2c_sim.config.HwConfig` fields::

    rows: 4
    cols: 4
    n: 2
    m: 4

Unknown keys and bad values raise :class:`~t2c_sim.errors.ConfigError` naming the key and file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from t2c_sim.config import HwConfig
from t2c_sim.errors import ConfigError
from t2c_sim.files import read_yaml


def parse_hw_params(items: list[str] | None) -> dict[str, int]:
    """Parse ``["rows=4", "cols=8"]`` into ``{"rows": 4, "cols": 8}`` (values are integers)."""
    out: dict[str, int] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--hw-param must look like key=value, got {item!r}", key=key or item)
        try:
            out[key] = int(val.strip(), 0)
        except ValueError:
            raise ConfigError(f"value must be an integer, got {val.strip()!r}",
                              key=f"--hw-param {key}") from None
    return out


def load_hw(path: str | Path | None = None, params: dict[str, int] | None = None,
            *, base: dict[str, Any] | None = None) -> HwConfig:
    """Build a :class:`HwConfig`: defaults, then ``base``, then the file at ``path``, then ``params``.

    Args:
        path: optional YAML file (flat mapping of HwConfig fields).
        params: explicit overrides (e.g. from ``--hw-param``), applied last.
        base: optional mapping applied before the file (e.g. a suite's inline config).
    """
    d: dict[str, Any] = dict(base or {})
    file = None
    if path is not None:
        file = str(path)
        data = read_yaml(path, "hardware config")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError("hardware config must be a mapping of parameters", file=file)
        d.update(data)
    if params:
        d.update(params)
    return HwConfig.from_dict(d, file=file)


def dump_hw(hw: HwConfig) -> str:
    """YAML text of ``hw`` that :func:`load_hw` reads back to an equal config."""
    return yaml.safe_dump(hw.to_dict(), sort_keys=False)
