"""Reading an ONNX file safely: size bounds, parse errors, the graph as plain tables.

:func:`load_graph` is the one place that touches the ``onnx`` package while reading (imported
lazily: it is an optional dependency, extra ``onnx``). It refuses, with one
:class:`~t2c_sim.errors.OnnxError` naming the file (and the tensor or node):

- a missing file, one larger than :data:`MAX_MODEL_BYTES`, bytes that do not parse as an ONNX
  model, or a model ``onnx.checker`` rejects;
- initializers kept in external files (never read: an ONNX file may name any path);
- more than :data:`MAX_NODES` nodes, or any initializer with more than :data:`MAX_TENSOR_ELEMS`
  elements (checked from the declared dims, before its data is converted);
- a network without exactly one float input of a fixed shape (every dimension a number; a
  symbolic ``batch`` dimension is a dynamic shape).

Nodes become :class:`Node` (index, name, op type, domain, inputs, outputs, attributes as plain
Python values); ``Constant`` nodes are folded into the initializer table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import ConfigError, OnnxError

__all__ = ["MAX_MODEL_BYTES", "MAX_NODES", "MAX_TENSOR_ELEMS", "Node", "Graph", "load_graph",
           "require_onnx", "printable"]

log = logging.getLogger(__name__)

MAX_MODEL_BYTES = 256 << 20     # model file size
MAX_NODES = 10_000              # nodes in the graph
MAX_TENSOR_ELEMS = 1 << 26      # elements of any one initializer or activation tensor

_FLOAT = 1  # onnx.TensorProto.FLOAT
_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe for a one-line message: control characters become ``?``, long text is cut."""
    out = "".join(c if c.isprintable() else "?" for c in str(text))
    return out if len(out) <= limit else out[:limit] + "..."


def require_onnx() -> Any:
    """The ``onnx`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("the ONNX importer needs the 'onnx' package (pip install "
                          "'t2c-sim[onnx]', or make setup)", key="onnx") from None
    return onnx


@dataclass(frozen=True)
class Node:
    """One ONNX node: position in the graph, identity, wiring and attributes (plain values)."""

    index: int
    name: str
    op: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The node's name, or ``<op>_<index>`` for an unnamed node."""
        return printable(self.name or f"{self.op}_{self.index}")

    def error(self, detail: str, file: str | None = None) -> OnnxError:
        """An :class:`OnnxError` naming this node (name, op type, index) and ``file``."""
        return OnnxError(printable(f"{self.op} (node #{self.index}): {detail}", 2000),
                         node=self.label, file=file)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass
class Graph:
    """The model as tables: nodes in file order, initializers, the one float input, outputs."""

    path: str
    model: Any                      # the onnx.ModelProto (kept for the parity run)
    nodes: list[Node]
    inits: dict[str, np.ndarray]
    input_name: str
    input_shape: tuple[int, ...]
    outputs: list[str]
    opsets: dict[str, int]
    consumers: dict[str, list[Node]] = field(default_factory=dict)

    def error(self, detail: str, **context: Any) -> OnnxError:
        return OnnxError(printable(detail, 2000), file=self.path, **context)


def _dims_elems(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _attrs(onnx: Any, node: Any, path: str, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            if _dims_elems(a.t.dims) > MAX_TENSOR_ELEMS:
                raise OnnxError(printable(f"{node.op_type} (node #{index}): attribute '{a.name}' "
                                          f"holds more than {MAX_TENSOR_ELEMS} elements"),
                                node=printable(node.name or f"{node.op_type}_{index}"), file=path)
            out[a.name] = onnx.numpy_helper.to_array(a.t)
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[a.name] = a      # subgraphs (If/Loop): refused later as unsupported ops
        else:
            v = onnx.helper.get_attribute_value(a)
            out[a.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return out


def _initializer(onnx: Any, t: Any, path: str) -> np.ndarray:
    if t.data_location == _EXTERNAL:
        raise OnnxError(f"initializer '{printable(t.name)}' keeps its data in an external file, which the "
                        "importer does not read (save the model with its weights inside)", file=path)
    n = _dims_elems(t.dims)
    if n > MAX_TENSOR_ELEMS:
        raise OnnxError(f"initializer '{printable(t.name)}' has {n} elements, more than the limit "
                        f"{MAX_TENSOR_ELEMS}", file=path)
    try:
        return np.asarray(onnx.numpy_helper.to_array(t))
    except Exception as e:  # noqa: BLE001 - a malformed tensor is one user error
        raise OnnxError(printable(f"initializer '{t.name}' cannot be read ({type(e).__name__}: {e})"),
                        file=path) from None


def _read(path: str) -> Any:
    onnx = require_onnx()
    p = Path(path)
    if not p.is_file():
        raise OnnxError("model file not found", file=path)
    size = p.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise OnnxError(f"model file is {size} bytes, more than the limit {MAX_MODEL_BYTES}",
                        file=path)
    try:
        model = onnx.load_model_from_string(p.read_bytes())
    except Exception as e:  # noqa: BLE001 - any unparsable file is the same user error
        msg = " ".join(str(e).split())[:160]
        raise OnnxError(f"not a readable ONNX model ({type(e).__name__}: {msg})", file=path) from None
    if not model.HasField("graph") or not len(model.graph.node):
        raise OnnxError("not an ONNX model with a graph (no nodes)", file=path)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - checker errors are user input errors
        msg = " ".join(str(e).split())[:200]
        raise OnnxError(f"invalid ONNX model ({msg})", file=path) from None
    return onnx, model


def load_graph(path: str | Path) -> Graph:
    """Read, check and tabulate the ONNX model at ``path`` (see the module docstring)."""
    path = str(path)
    onnx, model = _read(path)
    g = model.graph
    if len(g.node) > MAX_NODES:
        raise OnnxError(f"the graph has {len(g.node)} nodes, more than the limit {MAX_NODES}",
                        file=path)
    for t in list(g.initializer) + list(g.sparse_initializer):
        if hasattr(t, "data_location") and t.data_location == _EXTERNAL:
            raise OnnxError(f"initializer '{printable(t.name)}' keeps its data in an external file, which "
                            "the importer does not read", file=path)
    if len(g.sparse_initializer):
        raise OnnxError("sparse initializers are not supported", file=path)
    inits = {t.name: _initializer(onnx, t, path) for t in g.initializer}
    nodes: list[Node] = []
    for i, n in enumerate(g.node):
        attrs = _attrs(onnx, n, path, i)
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            if "value" not in attrs or len(n.output) != 1:
                raise OnnxError(f"Constant (node #{i}): only a 'value' tensor is supported",
                                node=printable(n.name or f"Constant_{i}"), file=path)
            inits[n.output[0]] = np.asarray(attrs["value"])
            continue
        nodes.append(Node(i, n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output), attrs))
    feeds = [v for v in g.input if v.name not in inits]
    if len(feeds) != 1:
        raise OnnxError(f"the graph has {len(feeds)} inputs ({printable(', '.join(v.name for v in feeds))}); "
                        "the importer takes networks with exactly one input", file=path)
    inp = feeds[0]
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type != _FLOAT:
        raise OnnxError(f"input '{printable(inp.name)}' is not a float tensor (elem_type "
                        f"{tt.elem_type}); the importer expects a float input quantized by a "
                        "QuantizeLinear", file=path)
    if not tt.HasField("shape"):
        raise OnnxError(f"input '{printable(inp.name)}' has no shape (dynamic shapes are not supported: "
                        "export the model with a fixed input shape)", file=path)
    shape = []
    for k, d in enumerate(tt.shape.dim):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            what = f"'{printable(d.dim_param)}'" if d.dim_param else "unknown"
            raise OnnxError(f"input '{printable(inp.name)}' dimension {k} is {what} (dynamic shapes are not "
                            "supported: export the model with a fixed input shape)", file=path)
        shape.append(int(d.dim_value))
    if _dims_elems(shape) > MAX_TENSOR_ELEMS:
        raise OnnxError(f"input '{printable(inp.name)}' has {_dims_elems(shape)} elements, more than the "
                        f"limit {MAX_TENSOR_ELEMS}", file=path)
    opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
    graph = Graph(path=path, model=model, nodes=nodes, inits=inits, input_name=inp.name,
                  input_shape=tuple(shape), outputs=[o.name for o in g.output], opsets=opsets)
    for n in nodes:
        for name in n.inputs:
            if name:
                graph.consumers.setdefault(name, []).append(n)
    log.debug("onnx %s: %d nodes, %d initializers, input %s %s", path, len(nodes), len(inits),
              inp.name, shape)
    return graph
