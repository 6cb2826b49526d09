"""Build and load the golden model's compiled 8-bit MAC kernel (``_int8mac.c``), once per machine.

The kernel is plain C with AVX-512 VNNI intrinsics. On first use it is compiled with the
system C compiler (``cc``, the toolchain Verilator already needs) as
``cc -O3 -march=native -fPIC -shared -fwrapv`` into a shared library cached next to this file
(``__pycache__/``, like bytecode; a per-user temporary folder when that is read-only). The
cache key hashes the source, the compiler's version and the instruction-set macros that
``-march=native`` enables on this CPU, so a shared folder never hands one machine another's
binary. Compilation happens in a temporary file that is renamed into place, so concurrent
processes never load a half-written library.

:func:`kernel` returns the loaded library, or ``None`` when there is no compiler, the build
fails, or the CPU lacks AVX-512 VNNI; the golden model then uses its NumPy float path, which
gives the same integers (more slowly). :func:`status` says which and why.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["kernel", "status", "SOURCE"]

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("_int8mac.c")
ABI = 4                      # t2c_int8mac_abi() of the source this module drives
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fwrapv")
COMPILE_TIMEOUT_S = 120

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p
_status = "not loaded yet"


def _compiler() -> str | None:
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(cmd: list[str], stdin: str | None = None) -> str:
    res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                         check=False)
    if res.returncode != 0:
        raise OSError(f"{' '.join(cmd)} failed: {(res.stderr or res.stdout).strip()[:400]}")
    return res.stdout


def _cache_dirs() -> list[Path]:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return [Path(__file__).with_name("__pycache__"), Path(tempfile.gettempdir()) / f"t2c-sim-{uid}"]


def _build(cc: str) -> Path:
    """Compile (or find in the cache) the library for this source, compiler and CPU."""
    src = SOURCE.read_bytes()
    isa = _run([cc, "-march=native", "-E", "-dM", "-x", "c", "-"], stdin="")
    version = _run([cc, "--version"]).splitlines()[0]
    key = hashlib.sha256(b"\0".join([src, version.encode(), " ".join(FLAGS).encode(),
                                     "\n".join(sorted(isa.splitlines())).encode()])).hexdigest()[:16]
    errors = []
    for d in _cache_dirs():
        lib = d / f"t2c_int8mac-{key}.so"
        if lib.is_file():
            return lib
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".t2c_int8mac-", suffix=".so", dir=d)
            os.close(fd)
            try:
                _run([cc, *FLAGS, "-o", tmp, str(SOURCE)])
                os.replace(tmp, lib)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            log.info("golden: compiled the 8-bit MAC kernel into %s", lib)
            return lib
        except OSError as e:  # read-only folder: try the next; a compiler error repeats there
            errors.append(f"{d}: {e}")
    raise OSError("; ".join(errors))


def _declare(lib: ctypes.CDLL) -> None:
    lib.t2c_int8mac_abi.restype = ctypes.c_int
    lib.t2c_int8mac_has_vnni.restype = ctypes.c_int
    if not lib.t2c_int8mac_has_vnni():
        return
    lib.t2c_pack.restype = None
    lib.t2c_pack.argtypes = [_PTR, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _PTR, _PTR, _PTR]
    lib.t2c_mac.restype = ctypes.c_int
    lib.t2c_mac.argtypes = [_PTR, _PTR, _PTR, _I64, _I64, _PTR, _I64, _I64, _I64, _PTR, _PTR, _PTR,
                            _I64, _I64, _I64, _I64, _I64, _I64, _I64, _PTR, _PTR, _I64,
                            _I64, _I64, _I64, _I64]


@functools.cache
def kernel() -> ctypes.CDLL | None:
    """The loaded kernel library with AVX-512 VNNI, or ``None`` (see :func:`status` for why)."""
    global _status
    cc = _compiler()
    if cc is None:
        _status = "no C compiler (cc, gcc or clang) on PATH"
    else:
        try:
            lib = ctypes.CDLL(str(_build(cc)))
            _declare(lib)
            if lib.t2c_int8mac_abi() != ABI:
                _status = f"kernel ABI {lib.t2c_int8mac_abi()} != {ABI}"
            elif not lib.t2c_int8mac_has_vnni():
                _status = "this CPU (or compiler) has no AVX-512 VNNI"
            else:
                _status = f"AVX-512 VNNI kernel ({Path(lib._name).name})"
                return lib
        except (OSError, subprocess.SubprocessError) as e:
            _status = f"kernel build failed: {e}"
    log.info("golden: 8-bit MAC kernel unavailable (%s); using the NumPy float path", _status)
    return None


def status() -> str:
    """One line: which MAC engine the golden model uses for 8-bit layers, and why."""
    lib = kernel()
    return _status if lib is not None else f"NumPy float path ({_status})"
