"""Hardware configurations from YAML files and ``--hw-param key=value`` overrides.

A hardware YAML file is a flat mapping of :class:`~t2c_sim.config.HwConfig` fields::

    rows: 4
    cols: 4
    n: 2
    m: 4

Unknown keys and bad values raise :class:`~t2c_sim.errors.ConfigError` naming the key and file.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from t2c_sim.config import HwConfig
from t2c_sim.errors import ConfigError
from t2c_sim.limits import check_hw_bounds, check_simulable
from t2c_sim.readers import read_yaml


def parse_hw_params(items: list[str] | None) -> dict[str, int]:
    """Parse ``["rows=4", "cols=8"]`` into ``{"rows": 4, "cols": 8}`` (values are integers).

    Errors name the option (``--hw-param rows``), never a file.
    """
    known = {f.name for f in fields(HwConfig)}
    out: dict[str, int] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"must look like key=value, got {item!r}", key="--hw-param")
        if key not in known:
            raise ConfigError(f"unknown hardware parameter (known: {', '.join(sorted(known))})",
                              key=f"--hw-param {key}")
        try:
            out[key] = int(val.strip(), 0)
        except ValueError:
            raise ConfigError(f"value must be an integer, got {val.strip()!r}",
                              key=f"--hw-param {key}") from None
    return out


def load_hw(path: str | Path | None = None, params: dict[str, int] | None = None,
            *, base: dict[str, Any] | None = None, simulated: bool = False,
            params_label: str = "--hw-param") -> HwConfig:
    """Build a :class:`HwConfig`: defaults, then ``base``, then the file at ``path``, then ``params``.

    Args:
        path: optional YAML file (flat mapping of HwConfig fields).
        params: explicit overrides (e.g. from ``--hw-param``), applied last.
        base: optional mapping applied before the file (e.g. a suite's inline config).
        simulated: the array will be built as RTL: also check the simulation limits
            (:func:`t2c_sim.limits.check_simulable`).
        params_label: how errors name a key that came from ``params``.

    A bad value is blamed on where it came from: a key set by ``params`` names
    ``--hw-param KEY`` (not the file), a key set by the file names the file.
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
        _build(d, file, {})  # the file's own values, blamed on the file
    params = dict(params or {})
    hw = _build({**d, **params}, file, params, params_label)
    if simulated:
        try:
            check_simulable(hw)
        except ConfigError as e:
            raise _blame(e, file, params, params_label) from None
    return hw


def _blame(e: ConfigError, file: str | None, params: dict[str, Any],
           label: str = "--hw-param") -> ConfigError:
    keys = set(e.key.split("/")) if e.key else set()
    if e.key == "nm":
        keys = {"n", "m"}
    hit = sorted(keys & set(params))
    if hit:
        return ConfigError(e.detail, key=f"{label} {hit[0]}")
    return e.with_context(file=file) if file else e


def _build(d: dict[str, Any], file: str | None, params: dict[str, Any],
           label: str = "--hw-param") -> HwConfig:
    try:
        hw = HwConfig.from_dict(d)
        check_hw_bounds(hw.to_dict())
        return hw
    except ConfigError as e:
        raise _blame(e, file, params, label) from None


def dump_hw(hw: HwConfig) -> str:
    """YAML text of ``hw`` that :func:`load_hw` reads back to an equal config."""
    return yaml.safe_dump(hw.to_dict(), sort_keys=False)
