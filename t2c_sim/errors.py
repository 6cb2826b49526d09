"""The package's own exception classes, carrying their context as fields.

Every error raised for bad user input is a :class:`T2CError` subclass. Its context lives in
fields (``file``, ``line``, ``layer``, ``node``, ``key``, ``signal``) next to the bare
``detail``; the one-line message is built from them once, in :meth:`T2CError.message`::

    ConfigError("unknown key", file="hw.yaml", key="colz")   ->  "hw.yaml, key 'colz': unknown key"
    FuseError("no weight quantizer", layer="fc")             ->  "layer 'fc': no weight quantizer"

Code that adds context on the way up (a loader naming the file, fuse naming the layer) calls
:meth:`T2CError.with_context` or :meth:`T2CError.recast`; nothing parses a message string.
The command line prints ``str(err)`` and exits non-zero.

The message is always ONE line: control characters in the detail or in a context value (a
newline or an escape sequence in a file name, a YAML key or a layer name) are escaped by
:func:`one_line`, here, where every message is built.
"""

from __future__ import annotations

import unicodedata
from typing import Any, TypeVar

__all__ = ["T2CError", "NumericsError", "SparsityError", "ConfigError", "NMParamsError",
           "RecordError", "ModelError", "QuantError", "FuseError", "OverflowRiskError", "OnnxError",
           "SimulationError", "SimulationTimeout", "MismatchError", "ExecutorError", "OutputError",
           "Terminated", "one_line"]

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: Any) -> str:
    """``str(text)`` with every control, line/paragraph separator and format character escaped
    (``\\n``, ``\\x1b``, ``\\u2028``...), so that it prints as one terminal line and cannot
    move the cursor or recolour the terminal.

    >>> one_line("a\\nb\\x1b[31m")
    'a\\\\nb\\\\x1b[31m'
    """
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            o = ord(c)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000
                       else f"\\U{o:08x}")
        else:
            out.append(c)
    return "".join(out)

E = TypeVar("E", bound="T2CError")

#: Context fields in the order the message names them, and how each is written.
CONTEXT_FIELDS: tuple[str, ...] = ("file", "line", "layer", "node", "key", "signal")
_FORMAT = {"file": "{}", "line": "line {}", "layer": "layer '{}'", "node": "node '{}'",
           "key": "key '{}'", "signal": "signal '{}'"}


class T2CError(Exception):
    """Base class of every t2c-sim error: ``detail`` plus context fields.

    Args:
        detail: what is wrong, without the context (e.g. ``"must be > 0, got -1"``).
        file, line, layer, node, key, signal: where it is wrong (each optional).
    """

    def __init__(self, detail: str = "", *, file: str | None = None, line: int | None = None,
                 layer: str | None = None, node: str | None = None, key: str | None = None,
                 signal: str | None = None) -> None:
        self.detail = str(detail)
        self.file = None if file is None else str(file)
        self.line = line
        self.layer = layer
        self.node = node
        self.key = None if key is None else str(key)
        self.signal = signal
        super().__init__(self.message)

    @property
    def context(self) -> dict[str, Any]:
        """The context fields that are set, in message order."""
        return {f: getattr(self, f) for f in CONTEXT_FIELDS if getattr(self, f) is not None}

    @property
    def message(self) -> str:
        """``"<context>: <detail>"`` (or just the detail): the one line the CLI prints."""
        where = ", ".join(_FORMAT[f].format(one_line(v)) for f, v in self.context.items())
        detail = one_line(self.detail)
        return f"{where}: {detail}" if where else detail

    def __str__(self) -> str:
        return self.message

    def recast(self, cls: type[E], **context: Any) -> E:
        """The same detail and context as an instance of ``cls``, with ``context`` fields set."""
        return cls(self.detail, **{**self.context, **context})

    def with_context(self: E, **context: Any) -> E:
        """A copy of this error (same class) with the given context fields set or replaced."""
        return self.recast(type(self), **context)

    def __reduce__(self) -> tuple[Any, ...]:
        # keep the fields across pickling (Dask workers, process pools)
        return (_rebuild, (type(self), self.detail, self.context))


def _rebuild(cls: type[T2CError], detail: str, context: dict[str, Any]) -> T2CError:
    return cls(detail, **context)


class NumericsError(T2CError, ValueError):
    """An integer primitive was given an input it cannot handle exactly."""


class SparsityError(T2CError, ValueError):
    """Illegal N:M pattern or N:M parameters."""


class ConfigError(T2CError, ValueError):
    """Malformed configuration; names the file and the key."""


class NMParamsError(SparsityError, ConfigError):
    """N and M themselves are not integers with ``1 <= N <= M`` (key ``nm``).

    Both a sparsity error (the N:M routines raise it) and a configuration error (it comes from
    a config value): callers may catch either.
    """


class RecordError(T2CError, ValueError):
    """A layer record is inconsistent, or a record file is missing or malformed."""


class ModelError(T2CError, ValueError):
    """A torch model the front end cannot handle: untraceable, an unsupported op or module
    placement, a batch norm that cannot be folded, SmoothQuant factors with nowhere to go.
    Names the module or node."""


class QuantError(T2CError, ValueError):
    """A quantizer was configured or used wrongly (names the quantizer)."""


class FuseError(ModelError):
    """A float model cannot be turned into integer layers (names the layer or node)."""


class OnnxError(ModelError):
    """An ONNX model the importer cannot read or turn into integer layers (names the file and
    the node: its name, op type and index)."""


class OverflowRiskError(FuseError):
    """The accumulator can exceed ACC_BITS for the given weights and input range."""


class SimulationError(T2CError, RuntimeError):
    """A simulator is missing, a build failed, a run hung, or an output carried X/Z."""


class SimulationTimeout(SimulationError):
    """A simulator (or tool) run did not finish within its wall-clock limit and was killed."""


class MismatchError(T2CError, AssertionError):
    """RTL (or another model) disagrees with the golden model; the message localizes it."""


class ExecutorError(SimulationError):
    """The job executor failed: a Dask scheduler that does not answer, a missing dask."""


class UnsupportedLayerError(RecordError):
    """The accelerator cannot run this record (the message names the layer and the limit)."""


class OutputError(T2CError):
    """A result, report, record or bundle file could not be written (disk full, read-only
    file system, no permission); names the file. The command exits 3 (infrastructure)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. Raised by the command line's signal handler in the main thread, and a
    :class:`KeyboardInterrupt` so that every Ctrl-C cleanup (killing simulator process groups,
    keeping finished regression jobs, writing the reports) runs for it too."""
