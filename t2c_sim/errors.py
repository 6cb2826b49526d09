"""The package's own exception classes.

Every error raised for bad user input is a :class:`T2CError` subclass whose message is a
single line naming the file, key, layer, channel or signal it concerns. The command line
prints ``str(err)`` and exits non-zero.
"""

from __future__ import annotations


class T2CError(Exception):
    """Base class of every t2c-sim error."""


class NumericsError(T2CError, ValueError):
    """An integer primitive was given an input it cannot handle exactly."""


class SparsityError(T2CError, ValueError):
    """Illegal N:M pattern or N:M parameters."""


class ConfigError(T2CError, ValueError):
    """Malformed configuration; the message names the file and the key."""

    def __init__(self, msg: str, *, file: str | None = None, key: str | None = None):
        where = ", ".join(p for p in (f"{file}" if file else "", f"key '{key}'" if key else "") if p)
        super().__init__(f"{where}: {msg}" if where else msg)
        self.file = file
        self.key = key


class RecordError(T2CError, ValueError):
    """A layer record is inconsistent, or a record file is missing or malformed."""


class FuseError(T2CError, ValueError):
    """A float model cannot be turned into integer layers (names the module)."""


class OverflowRiskError(FuseError):
    """The accumulator can exceed ACC_BITS for the given weights and input range."""


class SimulationError(T2CError, RuntimeError):
    """A simulator is missing, a build failed, a run hung, or an output carried X/Z."""


class MismatchError(T2CError, AssertionError):
    """RTL (or another model) disagrees with the golden model; the message localizes it."""


class ExecutorError(SimulationError):
    """The job executor failed: a Dask scheduler that does not answer, a missing dask."""


class UnsupportedLayerError(RecordError):
    """The accelerator cannot run this record (the message names the layer and the limit)."""
