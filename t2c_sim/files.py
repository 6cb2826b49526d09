"""Files: atomic writes (temp file in the same folder + rename), JSON helpers, YAML reading.

The one owner of how t2c-sim writes a file and reads a YAML file: records, reports, results,
repro bundles, recipes, suites and hardware configs all go through here.

A reader never sees a half-written result: either the old file, the new file, or none. A
process killed mid-write (SIGKILL, power loss) can leave a temp file ``.<name>.<random>.tmp``
next to the target; :func:`remove_stale_temps` deletes those, under :func:`folder_lock`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from t2c_sim.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)


_PACKAGE = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout holding this package (``pyproject.toml`` and ``rtl/`` next to the
    ``t2c_sim`` folder: an editable install or a run from the tree), ``None`` when installed."""
    root = _PACKAGE.parent
    return root if (root / "pyproject.toml").is_file() and (root / "rtl").is_dir() else None


def project_file(rel: str, packaged: str) -> Path:
    """A project file that a wheel also carries: ``<checkout>/<rel>`` in a checkout, else
    ``t2c_sim/<packaged>`` (copied there by ``setup.py``'s build hook)."""
    root = checkout_root()
    return root / rel if root is not None else _PACKAGE / packaged


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse a YAML file; a missing file or a syntax error is a :class:`ConfigError` naming it
    (and the line)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} not found", file=str(p))
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError("not valid YAML", file=str(p),
                          line=mark.line + 1 if mark is not None else None) from None


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``; on any error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``folder`` (created if missing) for the block.

    The lock is ``flock`` on the folder itself, so it leaves no file behind and is released
    by the kernel when the holder dies, even by SIGKILL.

    Raises:
        ConfigError: another process holds the lock (the message names the folder).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError("results folder is in use by another t2c-sim process",
                              file=str(folder)) from None
        yield folder
    finally:
        os.close(fd)  # releases the lock


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete leftover ``.<name>.<random>.tmp`` files of :func:`atomic_write` in ``folder``.

    Only call this while holding :func:`folder_lock` (a live writer's temp file would go too).
    Returns the removed paths.
    """
    folder = Path(folder)
    gone = []
    for p in folder.glob(".*.tmp") if folder.is_dir() else ():
        if p.is_file():
            p.unlink(missing_ok=True)
            gone.append(p)
    if gone:
        log.info("%s: removed %d temp file(s) of an interrupted run", folder, len(gone))
    return gone


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def jsonable(v: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples, enums and paths to plain JSON values (recursively)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "value") and isinstance(v.value, str):  # str Enum
        return v.value
    return v


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=1, sort_keys=False) + "\n")


def replace_dir(tmp_dir: Path, final: Path) -> Path:
    """Move a fully written ``tmp_dir`` onto ``final`` (removing an older ``final``)."""
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(tmp_dir, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_dir, final)
    return final
