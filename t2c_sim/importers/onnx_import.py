"""``import_onnx``: a QDQ or QOperator ONNX model -> integer layer records + host-side input format.

Placed in the flow at the fuse level: like :func:`t2c_sim.fuse.fuse`, it is the one place where
the model's float scales become integers. The records follow fuse's wiring conventions:
execution order, ``inputs`` naming the producers (``"input"`` is the network input), channel-last
activations, the ``(h, w, c)`` column permutation of a linear layer after a flatten, SPEC
reduction order. The network input's first QuantizeLinear becomes :class:`InputQuant`, the
host-side quantization that feeds the integer network (records reading ``"input"`` carry it in
``meta["input_quant"]``).

N:M: with ``nm="N:M"`` every MAC layer's weights must fit N:M (else one error naming the layer,
channel and group); without it, ``M`` is the array's and ``N`` the tightest that fits every MAC
layer's weights (the largest number of nonzeros in any group of ``M`` along the reduction axis).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.config import RoundMode, RoundProfile, SparsitySpec, parse_rounding
from t2c_sim.errors import ConfigError, OnnxError, SparsityError, T2CError
from t2c_sim.importers.onnx_model import MAX_MODEL_BYTES, MAX_TENSOR_ELEMS, load_graph
from t2c_sim.importers.onnx_ops import walk
from t2c_sim.importers.onnx_records import QFmt, Rounding
from t2c_sim.record import MAC_OPS, LayerRecord
from t2c_sim.sparse.nm import check_nm, compress

__all__ = ["InputQuant", "OnnxImport", "import_onnx", "parse_import_rounding", "load_input"]

log = logging.getLogger(__name__)

#: Roundings an ONNX import can make (``--profile``): ONNX Runtime's, or a section-2 mode.
IMPORT_ROUNDINGS = ("ort_fp32", "half_even", "half_up", "half_away", "floor")


def parse_import_rounding(value: str | RoundMode | RoundProfile) -> Rounding:
    """``ort_fp32`` or a section-2 mode; the TFLite profiles are refused (key ``--profile``)."""
    try:
        r = parse_rounding(value)
    except ConfigError as e:
        raise e.with_context(key="--profile") from None
    if isinstance(r, RoundProfile) and r is not RoundProfile.ORT_FP32:
        raise ConfigError(f"{r.value} is TFLite's rounding; an ONNX model imports with "
                          f"{', '.join(IMPORT_ROUNDINGS)}", key="--profile")
    return r


@dataclass(frozen=True)
class InputQuant:
    """The host-side quantization of the network input (ONNX Runtime's QuantizeLinear).

    ``x_q = clamp(rint_even(float32(x) / float32(scale)) + zero_point, qmin, qmax)``: MLAS divides
    in float32 and rounds to nearest even; numpy's float32 division is the same IEEE operation.
    Images come back channel-last (``[B, H, W, C]``).
    """

    name: str                     # the ONNX graph input
    tensor: str                   # the QuantizeLinear output (ONNX Runtime's quantized input)
    shape: tuple[int, ...]        # the ONNX input shape (NCHW for images)
    fmt: QFmt

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Integers of the float input ``x`` (ONNX layout), channel-last for 4-D inputs."""
        x = np.asarray(x)
        if x.shape != self.shape:
            raise ConfigError(f"input has shape {list(x.shape)}, the model takes "
                              f"{list(self.shape)}", key=self.name)
        if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
            raise ConfigError("input must be finite floats", key=self.name)
        with np.errstate(over="ignore"):
            q = np.rint(x.astype(np.float32) / np.float32(self.fmt.scale))
        q = np.clip(q.astype(np.float64) + self.fmt.zp, self.fmt.qmin, self.fmt.qmax).astype(np.int64)
        return q.transpose(0, 2, 3, 1).copy() if q.ndim == 4 else q

    def synthetic(self, seed: int) -> np.ndarray:
        """A float32 input spread over the representable range ``scale * ([qmin, qmax] - zp)``."""
        rng = np.random.default_rng(seed)
        u = rng.uniform(self.fmt.qmin - 0.5, self.fmt.qmax + 0.5, self.shape)
        return ((u - self.fmt.zp) * self.fmt.scale).astype(np.float32)

    def json(self) -> dict[str, Any]:
        return {"name": self.name, "tensor": self.tensor, "shape": list(self.shape),
                **self.fmt.json()}


@dataclass
class OnnxImport:
    """What :func:`import_onnx` found: records (no golden results yet), the input format, the
    ONNX tensor holding each record's output integers, and the output record."""

    path: str
    records: list[LayerRecord]
    input: InputQuant
    tensors: dict[str, str]
    output: str
    rounding: Rounding
    nm: tuple[int, int]
    graph: Any = field(repr=False, default=None)   # the loaded onnx_model.Graph (for parity)


def _nm(records: list[LayerRecord], nm: SparsitySpec | None, m: int, path: str) -> tuple[int, int]:
    macs = [r for r in records if r.op in MAC_OPS]
    if nm is not None:
        n = nm.n
        for r in macs:
            try:
                check_nm(r.w_q, nm.n, nm.m, name="weights")
            except SparsityError as e:
                raise OnnxError(f"{e.detail} (--nm {nm})", layer=r.name, file=path) from None
    else:
        n = 1
        for r in macs:
            g = r.w_q.reshape(r.w_q.shape[0], -1, m)
            n = max(n, int(np.count_nonzero(g, axis=-1).max()) if g.size else 1)
    for r in macs:
        r.n, r.m = n, m
        r.values, r.indices = compress(r.w_q, n, m)
        r.validate()
    return n, m


def import_onnx(path: str | Path, *, rounding: str | Rounding = "ort_fp32", nm: str | None = None,
                m: int = 4) -> OnnxImport:
    """Import a QDQ or QOperator ONNX model (see the module docstring).

    Args:
        path: the ``.onnx`` file.
        rounding: ``ort_fp32`` (ONNX Runtime's bits) or a section-2 mode (what the RTL runs).
        nm: ``"N:M"`` to require, or ``None`` to detect ``N`` for ``m``.
        m: the array's ``M`` (used when ``nm`` is ``None``).

    Raises:
        OnnxError: the file or a node the importer cannot handle (names the file and node).
        ConfigError: a bad ``rounding``/``nm``, or the ``onnx`` package is missing.
    """
    path = str(path)
    rnd = parse_import_rounding(rounding)
    spec = None
    if nm is not None and str(nm).strip().lower() not in ("", "auto"):
        try:
            spec = SparsitySpec.parse(nm)
        except ConfigError as e:
            raise e.with_context(key="--nm") from None
    m_used = spec.m if spec is not None else int(m)
    if m_used < 1:
        raise ConfigError(f"M must be >= 1, got {m_used}", key="m")
    graph = load_graph(path)
    wk = walk(graph, rnd, m_used)
    if wk.input_fmt is None:
        raise OnnxError(f"the network input '{graph.input_name}' is not quantized by a "
                        "QuantizeLinear", file=path)
    n, m_used = _nm(wk.records, spec, m_used, path)
    inp = InputQuant(graph.input_name, wk.input_tensor, graph.input_shape, wk.input_fmt)
    log.info("imported %s: %d layers (%d MAC), %d:%d, rounding %s", path, len(wk.records),
             sum(r.op in MAC_OPS for r in wk.records), n, m_used, rnd.value)
    return OnnxImport(path, wk.records, inp, dict(wk.tensors), wk.output.record, rnd, (n, m_used),
                      graph)


def load_input(path: str | Path, inp: InputQuant) -> np.ndarray:
    """The float input batch in ``path`` (``.npz`` with the array under the ONNX input's name, or
    its only array; or ``.npy``), checked against the model's input shape."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("input file not found", file=str(p))
    if p.stat().st_size > MAX_MODEL_BYTES:
        raise ConfigError(f"input file is larger than {MAX_MODEL_BYTES} bytes", file=str(p))
    try:
        z = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one user error
        raise ConfigError(f"cannot read ({type(e).__name__}: {e})", file=str(p)) from None
    if isinstance(z, np.ndarray):
        x, key = z, None
    else:
        try:
            names = list(z.files)
            key = inp.name if inp.name in names else (names[0] if len(names) == 1 else None)
            if key is None:
                raise ConfigError(f"holds {names}; name the array '{inp.name}' (the model's "
                                  "input)", file=str(p))
            x = z[key]
        except T2CError:
            raise
        except Exception as e:  # noqa: BLE001 - a damaged archive member is the same error
            raise ConfigError(f"cannot read ({type(e).__name__}: {e})", file=str(p)) from None
        finally:
            z.close()
    if x.size > MAX_TENSOR_ELEMS:
        raise ConfigError(f"array of {x.size} elements is larger than the limit", file=str(p))
    try:
        inp.quantize(x)
    except ConfigError as e:
        raise ConfigError(e.detail, file=str(p), key=key or inp.name) from None
    return np.asarray(x, dtype=np.float32)
