"""docs/python.md: its first Python block (a user's nn.Module to records, golden, cross-check and
co-simulation) runs as written, and the op table it lists matches t2c_sim/quant/ops.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "python.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


@pytest.mark.sim
def test_the_python_path_runs_as_written(capsys):
    (code, *_) = python_blocks()
    assert 20 <= sum(1 for t in code.splitlines() if t.strip() and not t.startswith(("import", "from"))
                     ) <= 60
    ns: dict = {"__name__": "docs_python"}
    exec(compile(code, "docs/python.md", "exec"), ns)       # noqa: S102 - the documented example
    recs = ns["records"]
    assert [r.name for r in recs] == ["conv1", "conv2", "add", "side", "cat", "maxpool", "view",
                                      "fc"]
    diffs = eval(capsys.readouterr().out.strip().splitlines()[-1])  # noqa: S307 - printed dict
    assert set(diffs) >= {"conv1", "conv2", "add", "side", "cat", "fc"}
    assert all(v <= 1 for v in diffs.values())


def test_the_documented_functions_and_methods_are_in_the_table():
    from t2c_sim.quant import ops

    table = DOC.split("## Supported ops")[1].split("## ")[0]
    for name in ("F.max_pool2d", "F.avg_pool2d", "F.adaptive_avg_pool2d", "F.relu6", "F.dropout",
                 "torch.cat", "torch.flatten", "torch.add", "torch.max_pool2d"):
        assert name in table
        mod, attr = name.split(".")
        fn = getattr({"F": ops.F, "torch": ops.torch}[mod], attr)
        assert fn in ops._FUNCTIONS, name
    for meth in ("view", "reshape", "flatten", "squeeze", "relu", "relu_", "clamp", "add",
                 "contiguous", "mean"):
        assert meth in ops._METHODS and f"{meth}(" in table, meth


def test_the_transformer_block_runs_as_written(capsys):
    (_, code, *_) = python_blocks()
    ns: dict = {"__name__": "docs_python_transformer"}
    exec(compile(code, "docs/python.md", "exec"), ns)       # noqa: S102 - the documented example
    recs = ns["records"]
    ops = [r.op.value for r in recs]
    assert {"layernorm", "matmul", "softmax", "gelu", "reshape", "slice", "concat"} <= set(ops)
    out = capsys.readouterr().out.strip().splitlines()
    assert eval(out[-1]) <= 1                                # noqa: S307 - printed LSB max
    doc_names = DOC.split("## Transformers")[1]
    for name in ("norm1", "attn.qkv", "attn.matmul", "attn.softmax", "attn.matmul_1", "attn.proj",
                 "mlp.fc1", "mlp.act", "mlp.fc2", "add_1"):
        assert f"`{name}`" in doc_names and any(r.name.endswith(name) for r in recs), name


def test_the_transformer_forms_are_in_the_table():
    from t2c_sim.quant import ops

    table = DOC.split("## Supported ops")[1].split("## ")[0]
    for name in ("torch.matmul", "torch.bmm", "F.softmax", "torch.softmax", "F.gelu", "torch.mul"):
        assert name in table
        mod, attr = name.split(".")
        assert getattr({"F": ops.F, "torch": ops.torch}[mod], attr) in ops._FUNCTIONS, name
    for meth in ("permute", "transpose", "unbind", "chunk", "split", "unsqueeze", "unflatten",
                 "softmax", "matmul", "mul", "div"):
        assert meth in ops._METHODS and f"{meth}(" in table, meth
