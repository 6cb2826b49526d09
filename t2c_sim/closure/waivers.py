"""The one reader of the waiver files next to the RTL (``coverage_waivers.yaml``,
``mutation_waivers.yaml``).

Both are ``waivers: [mapping, ...]``: each entry names what it waives by text (never a line
number), says its ``kind`` and gives a ``reason``. :func:`read_waiver_entries` checks the
shape they share (the list, each entry a mapping, the required keys non-empty strings, a known
``kind``) and returns the entries; :func:`t2c_sim.closure.codecov.load_waivers` and
:func:`t2c_sim.closure.mutate.load_waivers` check their own optional keys and build their own
waiver types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2c_sim.errors import ConfigError
from t2c_sim.readers import read_yaml

__all__ = ["read_waiver_entries"]


def read_waiver_entries(path: str | Path, what: str, keys: Sequence[str],
                        kinds: Sequence[str]) -> list[dict[str, Any]]:
    """The entries of the waiver file ``path`` (``what`` names it in errors); a missing or
    empty file is no waivers.

    Raises:
        ConfigError: Malformed YAML, no ``waivers`` list, an entry that is not a mapping, a
            key of ``keys`` missing, empty or not a string, a ``kind`` not in ``kinds``
            (names the file and the entry's key).
    """
    path = Path(path)
    if not path.is_file():
        return []
    data = read_yaml(path, what)
    if data is None:
        return []
    items = data.get("waivers") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ConfigError("expected a mapping with a 'waivers' list", file=str(path), key="waivers")
    for i, w in enumerate(items):
        if not isinstance(w, dict):
            raise ConfigError("entry is not a mapping", file=str(path), key=f"waivers[{i}]")
        for k in keys:
            if not isinstance(w.get(k), str) or not w[k].strip():
                raise ConfigError("missing, empty or not a string", file=str(path),
                                  key=f"waivers[{i}].{k}")
        if w["kind"] not in kinds:
            raise ConfigError(f"kind {w['kind']!r} is not {' or '.join(map(repr, kinds))}",
                              file=str(path), key=f"waivers[{i}].kind")
    return items
