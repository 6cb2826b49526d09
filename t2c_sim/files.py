"""Files: the one safe writer (temp file in the same folder + rename), output-folder checks and
locks, project files. Input files are read by :mod:`t2c_sim.readers` (``read_yaml`` is
re-exported here).

The one owner of how t2c-sim writes a file: records, reports, results, repro bundles and
estimate tables all go through here.

Writing: a reader never sees a half-written result: either the old file, the new file, or
none. The writer refuses a target that is a symbolic link, a folder, a FIFO or a device node
(it never writes through, or replaces, anything it did not create), and names the target
file when the OS refuses (``[Errno 28] No space left on device``). :func:`atomic_write_set`
commits several files (one run's reports) together or not at all. A process killed mid-write
(SIGKILL, power loss) can leave a temp file ``.<name>.<random>.tmp`` next to the target;
:func:`remove_stale_temps` deletes those, under :func:`folder_lock`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import ConfigError, OutputError
from t2c_sim.readers import file_kind, read_json, read_text, read_yaml  # noqa: F401 (re-export)

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


# ------------------------------------------------------------------------------- writing
def check_target(path: str | Path) -> Path:
    """Refuse to write ``path`` unless it is missing or a regular file (not a symbolic link).

    t2c-sim never writes through, or replaces, a symbolic link, a folder, a FIFO or a device
    node (``--json /dev/null`` would otherwise replace the device with a file).

    Raises:
        ConfigError: naming the path and what it is.
    """
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return p
    except NotADirectoryError:
        raise ConfigError("a file is in the way: a folder on this path is a file",
                          file=str(p)) from None
    except OSError as e:
        raise ConfigError(f"cannot check the output path ({e.strerror})", file=str(p)) from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError("is a symbolic link; t2c-sim never writes through or replaces a link "
                          "(remove it or choose another path)", file=str(p))
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"is {file_kind(st.st_mode)}, not a regular file; t2c-sim will not "
                          "replace it", file=str(p))
    return p


def output_error(e: OSError, path: str | Path, doing: str = "cannot write") -> OutputError:
    """An :class:`OutputError` naming ``path`` (not a temp file) and the OS reason."""
    reason = e.strerror or type(e).__name__
    return OutputError(f"{doing}: {reason} [Errno {e.errno}]", file=str(path))


def make_dirs(folder: str | Path) -> Path:
    """``mkdir -p folder``; a file in the way is a :class:`ConfigError`, an OS failure an
    :class:`OutputError` (both name the folder)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError("cannot create this folder: a file is in the way",
                          file=str(folder)) from None
    except OSError as e:
        raise output_error(e, folder, "cannot create the folder") from None
    return folder


def _temp_for(path: Path) -> str:
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise output_error(e, path) from None
    os.close(fd)
    return tmp


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``; on any error remove it.

    The temp file is created (``O_EXCL``) in the target's folder, so the rename is atomic and
    never crosses a file system. The target is checked (:func:`check_target`) before the write
    and again just before the rename. An OS error (disk full, read-only file system, no
    permission) is an :class:`OutputError` naming ``path``.
    """
    return atomic_write_set([(path, write)])[0]


def atomic_write_set(files: Sequence[tuple[str | Path, Callable[[str], None]]]) -> list[Path]:
    """Write several files as one unit: each into a temp file beside it, and only when every
    one is complete rename them into place, in the given order.

    A failure while writing (a full disk on the third file) removes every temp file: the
    folders are as they were (an older complete set stays). Put the file that readers look at
    first (``results.json``) last.

    Raises:
        ConfigError: a target is a symbolic link, a folder, a FIFO or a device.
        OutputError: the OS refused (names the target file and the reason).
    """
    targets = [Path(p) for p, _ in files]
    for p in targets:
        check_target(p)
    temps: list[str] = []
    try:
        for p, (_, write) in zip(targets, files):
            tmp = _temp_for(p)
            temps.append(tmp)
            try:
                write(tmp)
                os.chmod(tmp, 0o666 & ~_UMASK)
            except OSError as e:
                raise output_error(e, p) from None
        for p, tmp in zip(targets, temps):
            check_target(p)
            try:
                os.replace(tmp, p)
            except OSError as e:
                raise output_error(e, p) from None
    except BaseException:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    return targets


def check_output_dir(folder: str | Path, option: str = "--out") -> Path:
    """Before any work: ``folder`` is (or can be created as) a writable folder, and no other
    t2c-sim process holds it (:func:`folder_lock` on it or on its ``jobs/``).

    A folder that is a symbolic link to a folder is accepted (the user named it); files inside
    it are still never written through a link.

    Raises:
        ConfigError: naming ``option`` and the folder (exit 2), nothing written.
    """
    p = Path(folder)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as e:
        raise ConfigError(f"{option}: cannot use this folder ({e.strerror})", file=str(p)) \
            from None
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{option}: is {file_kind(st.st_mode)}, not a folder", file=str(p))
        _probe_writable(p, p, option)
        for f in (p, p / "jobs"):
            check_unlocked(f)
        return p
    anc = p.parent
    while True:
        try:
            ast = os.stat(anc)
            break
        except (FileNotFoundError, NotADirectoryError):
            if anc == anc.parent:
                raise ConfigError(f"{option}: no existing folder above this path",
                                  file=str(p)) from None
            anc = anc.parent
        except OSError as e:
            raise ConfigError(f"{option}: cannot use this folder ({e.strerror})",
                              file=str(p)) from None
    if not stat.S_ISDIR(ast.st_mode):
        raise ConfigError(f"{option}: cannot create this folder: {anc} is "
                          f"{file_kind(ast.st_mode)}", file=str(p))
    _probe_writable(anc, p, option)
    return p


def _probe_writable(folder: Path, named: Path, option: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".t2c-probe.", suffix=".tmp")
    except OSError as e:
        where = "" if folder == named else f" (in {folder})"
        raise ConfigError(f"{option}: cannot write here{where}: {e.strerror} [Errno {e.errno}]",
                          file=str(named)) from None
    os.close(fd)
    os.unlink(tmp)


def check_unlocked(folder: str | Path) -> None:
    """Raise the :func:`folder_lock` error if another process holds ``folder`` (a no-op when it
    does not exist); takes and releases the lock at once."""
    folder = Path(folder)
    if fcntl is None or not folder.is_dir():  # pragma: no cover - not POSIX
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError("results folder is in use by another t2c-sim process",
                              file=str(folder)) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``folder`` (created if missing) for the block.

    The lock is ``flock`` on the folder itself, so it leaves no file behind and is released
    by the kernel when the holder dies, even by SIGKILL.

    Raises:
        ConfigError: another process holds the lock (the message names the folder).
    """
    folder = make_dirs(folder)
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


def remove_empty_dirs(folder: str | Path) -> None:
    """Remove ``folder`` and the folders under it, bottom up, as far as they are empty (what a
    command created before it stopped without writing anything)."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink()),
                      key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


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


def text_writer(text: str) -> Callable[[str], None]:
    """A ``write(tmp)`` for :func:`atomic_write` / :func:`atomic_write_set`: ``text`` as UTF-8."""
    return lambda tmp: Path(tmp).write_text(text, encoding="utf-8")


def json_text(obj: Any) -> str:
    """``obj`` (:func:`jsonable`) as the indented JSON text t2c-sim writes."""
    return json.dumps(jsonable(obj), indent=1, sort_keys=False) + "\n"


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, text_writer(text))


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
    return atomic_write_text(path, json_text(obj))


def replace_dir(tmp_dir: Path, final: Path) -> Path:
    """Move a fully written ``tmp_dir`` onto ``final`` (removing an older ``final`` folder).

    Raises:
        ConfigError: ``final`` is a symbolic link or not a folder (it is never replaced).
        OutputError: the OS refused the rename.
    """
    try:
        st = os.lstat(final)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"is {file_kind(st.st_mode)}, not a folder t2c-sim wrote; it will not "
                          "replace it", file=str(final))
    try:
        if st is not None:
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp_dir, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            make_dirs(final.parent)
            os.replace(tmp_dir, final)
    except OSError as e:
        raise output_error(e, final) from None
    return final
