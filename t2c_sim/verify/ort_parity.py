"""Parity with ONNX Runtime: golden vs the runtime on every quantized tensor of an imported model.

:func:`ort_parity` runs the ONNX model in ONNX Runtime (CPU, one thread) with every tensor that
holds a record's output integers (and the quantized network input) added to the graph outputs,
once per optimization level (``ORT_DISABLE_ALL``: the graph as written; ``ORT_ENABLE_ALL``:
ONNX Runtime fuses QDQ patterns into QLinear kernels and reorders layouts), and compares, per
layer, in the record's layout (channel-last, ``(h, w, c)`` after a flatten):

- ``chained``: the golden network's output (from the host-quantized input) vs ONNX Runtime's;
- ``local``: the golden layer run on ONNX Runtime's own input tensors vs its output, i.e. the
  layer's arithmetic alone, without differences inherited from upstream layers.

Each comparison is ``{"n", "mismatch", "max", "hist"}`` (``hist``: ``{"golden - ort": count}`` of
the differing outputs). The kernel that produced the tensor is read back from the optimized
model ONNX Runtime saves (through layout ``Transpose`` nodes). Verdicts: ``exact`` (local
comparison equal everywhere), ``fail`` (a difference on an integer kernel, where the profile
claims bit-exactness), ``differs`` (a difference on a float kernel: a QDQ op ONNX Runtime did
not fuse runs in float32 before its QuantizeLinear, and QLinearAveragePool averages in float;
golden models the integer kernels only, so an LSB difference there is expected).

``onnxruntime`` and ``onnx`` are imported lazily (optional extra ``onnx``).
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from t2c_sim.errors import ConfigError, SimulationError
from t2c_sim.golden import NetworkTrace, run_layer
from t2c_sim.importers import OnnxImport
from t2c_sim.layout import hwc_perm
from t2c_sim.record import LayerRecord

__all__ = ["LEVELS", "INTEGER_KERNELS", "ort_parity", "compare", "ort_outputs"]

log = logging.getLogger(__name__)

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL")
#: ONNX Runtime kernels that compute on integers (the profile claims golden == ORT on them).
INTEGER_KERNELS = frozenset({"QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
                             "QLinearGlobalAveragePool", "MaxPool", "NhwcMaxPool", "Flatten",
                             "Reshape", "Identity", "QuantizeLinear"})
_GLUE = ("Transpose", "Identity", "ReorderInput", "ReorderOutput")


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("--parity ort needs the 'onnxruntime' package (pip install "
                          "'t2c-sim[onnx]', or make setup)", key="--parity") from None
    return onnxruntime


def compare(golden: np.ndarray, ort: np.ndarray) -> dict[str, Any]:
    """``{"n", "mismatch", "max", "hist"}`` of ``golden - ort`` (exact integers)."""
    g, o = np.asarray(golden, np.int64), np.asarray(ort, np.int64)
    if g.shape != o.shape:
        return {"n": int(g.size), "mismatch": int(g.size), "max": None, "hist": {},
                "error": f"shape {list(g.shape)} vs ONNX Runtime {list(o.shape)}"}
    d = g - o
    nz = d[d != 0]
    hist = {str(k): int(v) for k, v in sorted(Counter(nz.tolist()).items())}
    return {"n": int(d.size), "mismatch": int(nz.size),
            "max": int(np.abs(nz).max()) if nz.size else 0, "hist": hist}


def _to_record_layout(a: np.ndarray, layout: str, chw: list[int] | None) -> np.ndarray:
    a = np.asarray(a).astype(np.int64)
    if layout == "nhwc" and a.ndim == 4:
        return a.transpose(0, 2, 3, 1)
    if layout == "flat_chw" and chw:
        return a[..., hwc_perm(*chw)]
    return a


def _with_outputs(model: Any, names: dict[str, bool]) -> tuple[Any, dict[str, str]]:
    """A copy of ``model`` that also outputs ``names`` (``{name: signed}``), each through an
    ``Identity`` so that no node of the model itself produces a graph output (which would
    change what ONNX Runtime may fuse); returns the copy and ``{name: graph output name}``."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    taken = {o.name for o in m.graph.output} | {t for n in m.graph.node for t in n.output}
    exposed = {}
    for i, (name, signed) in enumerate(names.items()):
        out = f"{name}__t2c_{i}"
        while out in taken:
            out += "_"
        exposed[name] = out
        m.graph.node.append(onnx.helper.make_node("Identity", [name], [out],
                                                  name=f"t2c_expose_{i}"))
        elem = onnx.TensorProto.INT8 if signed else onnx.TensorProto.UINT8
        m.graph.output.append(onnx.helper.make_tensor_value_info(out, elem, None))
    return m, exposed


def _kernels(path: str) -> tuple[dict[str, str], list[str]]:
    """``{tensor: kernel label}`` and the op types of the optimized model ONNX Runtime saved."""
    import onnx

    m = onnx.load(path, load_external_data=False)
    prod = {o: n for n in m.graph.node for o in n.output}
    labels: dict[str, str] = {}
    for t in prod:
        n = prod[t]
        while n.op_type in _GLUE and n.input and n.input[0] in prod:
            n = prod[n.input[0]]
        label = n.op_type
        if n.op_type == "QuantizeLinear" and n.input and n.input[0] in prod:
            label = f"{prod[n.input[0]].op_type}->QuantizeLinear (float)"
        labels[t] = label
    return labels, sorted(n.op_type for n in m.graph.node)


def ort_outputs(model: Any, feeds: dict[str, np.ndarray], names: dict[str, bool], level: str,
                ) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """Run ``model`` at ``level`` with ``names`` exposed: ``(outputs, kernels, op types)``."""
    ort = _ort()
    exposed, outs = _with_outputs(model, names)
    with tempfile.TemporaryDirectory(prefix="t2c-ort-") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        try:
            sess = ort.InferenceSession(exposed.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
            wanted = list(names)
            vals = sess.run([outs[n] for n in wanted], feeds)
        except Exception as e:  # noqa: BLE001 - the runtime failing is an infrastructure error
            msg = " ".join(str(e).split())[:300]
            raise SimulationError(f"ONNX Runtime ({level}) could not run the model: {msg}") from None
        kernels, ops = _kernels(so.optimized_model_filepath)
    return dict(zip(wanted, vals)), kernels, ops


def _deployed(model: Any, feeds: dict[str, np.ndarray], level: str,
              ) -> tuple[dict[str, str], list[str], np.ndarray]:
    """ONNX Runtime on the unmodified model: ``(kernels, op types, the graph's first output)``."""
    ort = _ort()
    with tempfile.TemporaryDirectory(prefix="t2c-ort-") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        try:
            sess = ort.InferenceSession(model.SerializeToString(), so,
                                        providers=["CPUExecutionProvider"])
            y = sess.run(None, feeds)[0]
        except Exception as e:  # noqa: BLE001 - the runtime failing is an infrastructure error
            msg = " ".join(str(e).split())[:300]
            raise SimulationError(f"ONNX Runtime ({level}) could not run the model: {msg}") from None
        kernels, ops = _kernels(so.optimized_model_filepath)
    return kernels, ops, np.asarray(y)


def _output_integers(y: np.ndarray, rec: LayerRecord) -> np.ndarray:
    """The output record's integers from the graph's output: as is when it is the quantized
    tensor, else undo its DequantizeLinear (``rint(y / s_y) + z_y``; exact for 8-bit values)."""
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    s = np.float32(rec.meta.get("s_y", 1.0))
    q = np.rint(y.astype(np.float32) / s).astype(np.int64) + rec.z_y
    return np.clip(q, *rec.y_range)


def _ops_text(c: Counter) -> str:
    return ", ".join(f"{op} x{k}" if k > 1 else op for op, k in sorted(c.items())) or "nothing"


def _layout(rec: LayerRecord) -> tuple[str, list[int] | None]:
    return str(rec.meta.get("out_layout", "plain")), rec.meta.get("out_chw")


def ort_parity(imp: OnnxImport, x: np.ndarray, trace: NetworkTrace, records: list[LayerRecord],
               levels: tuple[str, ...] = LEVELS) -> dict[str, Any]:
    """Compare ``trace`` (the golden run of ``records`` on ``imp.input.quantize(x)``) with ONNX
    Runtime on the float input ``x``, per layer and per optimization level (module docstring).

    Returns ``{"runtime", "levels", "input": {level: stats}, "deployed": {level: stats},
    "notes": [...], "layers": {record: {level: {"kernel", "integer", "local", "chained",
    "verdict"[, "deployed_kernel"]}}}}``. ``deployed`` compares the golden network output with
    the output of the UNMODIFIED graph (exposing tensors can change which QDQ patterns ONNX
    Runtime fuses; ``deployed_kernel`` then names the kernel the unmodified graph runs).
    """
    ort = _ort()
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad:
        raise ConfigError(f"unknown ONNX Runtime level {bad[0]!r} (expected {', '.join(LEVELS)})",
                          key="--parity")
    model = imp.graph.model
    by_name = {r.name: r for r in records}
    names = {imp.input.tensor: imp.input.fmt.signed}
    names.update({imp.tensors[r.name]: r.y_signed for r in records if r.name in imp.tensors})
    feeds = {imp.input.name: np.asarray(x, dtype=np.float32)}
    out: dict[str, Any] = {"runtime": f"onnxruntime {ort.__version__}", "levels": list(levels),
                           "input": {}, "notes": [], "layers": {r.name: {} for r in records}}
    in_layout = "nhwc" if len(imp.input.shape) == 4 else "plain"
    out["deployed"] = {}
    for level in levels:
        vals, kernels, ops = ort_outputs(model, feeds, names, level)
        dep_kernels, dep_ops, y_dep = _deployed(model, feeds, level)
        ignore = {*_GLUE, "QuantizeLinear", "DequantizeLinear"}      # (and our Identity nodes)
        more = Counter(o for o in ops if o not in ignore)
        less = Counter(o for o in dep_ops if o not in ignore)
        if more != less:
            out["notes"].append(
                f"{level}: exposing the quantized tensors changes the kernels ONNX Runtime picks: "
                f"the unmodified graph runs {_ops_text(less - more)} where the exposed graph runs "
                f"{_ops_text(more - less)}; the unmodified graph's network output is compared "
                "separately ('deployed')")
        ort_y = {"input": _to_record_layout(vals[imp.input.tensor], in_layout, None)}
        for r in records:
            ort_y[r.name] = _to_record_layout(vals[imp.tensors[r.name]], *_layout(r))
        out["input"][level] = compare(trace.x, ort_y["input"])
        last = by_name[imp.output]
        out["deployed"][level] = compare(
            trace.y(last.name), _to_record_layout(_output_integers(y_dep, last), *_layout(last)))
        for r in records:
            tensor = imp.tensors[r.name]
            kernel = kernels.get(tensor, "QuantizeLinear")
            integer = kernel in INTEGER_KERNELS
            ins = [ort_y[s] for s in r.inputs]
            try:
                local = compare(run_layer(by_name[r.name], *ins).y, ort_y[r.name])
            except Exception as e:  # noqa: BLE001 - an input the layer cannot take is reported
                local = {"n": 0, "mismatch": 0, "max": None, "hist": {}, "error": str(e)}
            chained = compare(trace.y(r.name), ort_y[r.name])
            ok = local["mismatch"] == 0 and "error" not in local
            verdict = "exact" if ok else ("fail" if integer else "differs")
            entry = {"kernel": kernel, "integer": integer, "local": local, "chained": chained,
                     "verdict": verdict}
            dep = dep_kernels.get(tensor)
            if dep is not None and dep != kernel:
                entry["deployed_kernel"] = dep
            out["layers"][r.name][level] = entry
    log.info("ORT parity: %s", {lv: sum(d[lv]["verdict"] == "exact" for d in out["layers"].values())
                                for lv in levels})
    return out
