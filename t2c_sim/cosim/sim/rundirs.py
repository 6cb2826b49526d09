"""Run directories: where a simulator run's operand files, dumps and log live.

A run of a large layer writes and reads thousands of small files (one set of memory files per
accelerator run, two dumps per tile). On a journaling disk file creation costs ~0.2 ms or more
(measured 3.3 s for the 4,700 files of a ResNet-18 layer on the development machine's ext4,
0.2 s on tmpfs), more than the simulation of the run itself. So a run that is not kept works in
a scratch directory on tmpfs (``/dev/shm``) when there is one with room:

* :func:`make` creates the directory: under ``<build_dir>/runs`` when the caller keeps it (waves,
  ``keep``) or no tmpfs is usable, else ``/dev/shm/t2c-<uid>/<pid>-<prefix>-XXXX``;
* :func:`persist` moves a scratch directory under ``<build_dir>/runs`` (a failed run keeps its
  log and files where the build is), :func:`relocate` rewrites an error's paths accordingly;
* scratch directories of processes that no longer exist (killed outright) are removed the next
  time one is made.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TypeVar

from t2c_sim.errors import T2CError

__all__ = ["SCRATCH_ROOT", "make", "is_scratch", "persist", "relocate"]

#: Where scratch run directories go when it exists (Linux tmpfs).
SCRATCH_ROOT = Path("/dev/shm")
#: Free space a scratch directory needs beyond its own size estimate (bytes).
SCRATCH_MARGIN = 256 << 20
_swept = False

E = TypeVar("E", bound=T2CError)


def _scratch_base() -> Path:
    return SCRATCH_ROOT / f"t2c-{os.getuid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's pid
        return True
    return True


def _sweep(base: Path) -> None:
    """Remove scratch directories left by processes that are gone (SIGKILL, OOM)."""
    global _swept
    if _swept:
        return
    _swept = True
    for d in base.iterdir() if base.is_dir() else ():
        pid = d.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _usable(need: int) -> Path | None:
    base = _scratch_base()
    try:
        if not SCRATCH_ROOT.is_dir() or not os.access(SCRATCH_ROOT, os.W_OK | os.X_OK):
            return None
        st = os.statvfs(SCRATCH_ROOT)
        if st.f_bavail * st.f_frsize < need + SCRATCH_MARGIN:
            return None
        base.mkdir(mode=0o700, exist_ok=True)
        _sweep(base)
        return base
    except OSError:
        return None


def make(build_dir: Path, prefix: str, *, keep: bool, size_hint: int = 0) -> Path:
    """A fresh run directory (see the module docstring); ``size_hint``: bytes it will hold."""
    base = None if keep else _usable(size_hint)
    if base is None:
        runs = Path(build_dir) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=runs))
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{prefix}-", dir=base))


def is_scratch(run_dir: Path) -> bool:
    return _scratch_base() in Path(run_dir).parents


def persist(run_dir: Path, build_dir: Path) -> Path:
    """Move a scratch run directory under ``<build_dir>/runs`` (returned); others stay."""
    if not is_scratch(run_dir):
        return run_dir
    runs = Path(build_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    name = run_dir.name.split("-", 1)[1] if "-" in run_dir.name else run_dir.name
    dest = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=runs))
    for p in run_dir.iterdir():
        shutil.move(str(p), dest / p.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    return dest


def relocate(err: E, old: Path, new: Path) -> E:
    """``err`` with every mention of ``old`` (its detail and context) replaced by ``new``."""
    if old == new:
        return err
    a, b = str(old), str(new)
    ctx = {k: (v.replace(a, b) if isinstance(v, str) else v) for k, v in err.context.items()}
    return type(err)(err.detail.replace(a, b), **ctx)
