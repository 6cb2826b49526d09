"""The op table (t2c_sim/quant/ops.py): the idioms real networks are written in, and one error for
everything else.

Idioms: each case writes one op in a user's idiom (functional, method, in-place, ``+``, ``view``
with ``size``, ...) and in the module form the flow already handled (``nn.MaxPool2d``,
:class:`~t2c_sim.quant.modules.Add`, ``nn.Flatten``, ...), with the same weights. Oracle: the
two must give the same integer network (same ops, equal integers on every layer), and each is
cross-checked against its fake-quant model within the 1-LSB bound of docs/crosscheck.md with
NumPy == PyTorch integer paths.

Errors: each unsupported op sits on a line of this file tagged ``# BAD:<case>``; the error must
name this file, that line, the fx node and what to do instead. ``quantize_model`` and ``fuse``
ask the same table, so they reject with the same message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from t2c_sim.config import OpKind
from t2c_sim.errors import FuseError, ModelError
from t2c_sim.fuse import fuse, quantize_input
from t2c_sim.golden import run_network
from t2c_sim.quant.calibrate import calibrate
from t2c_sim.quant.minmax import MinMaxChannelQuantizer, MinMaxQuantizer
from t2c_sim.quant.modules import Add, QLinear
from t2c_sim.quant.quantize import fold_bn, quantize_model
from t2c_sim.verify.crosscheck import layer_diffs
from t2c_sim.verify.torch_int import run_network_torch

SPEC = {"weight": {"quantizer": "minmax_channel", "nbit": 8},
        "act": {"quantizer": "minmax", "nbit": 8}}
SRC = Path(__file__).read_text().splitlines()


def tagged_line(case: str) -> int:
    """Line number of the ``# BAD:<case>`` tag in this file."""
    hits = [i + 1 for i, t in enumerate(SRC) if t.rstrip().endswith(f"# BAD:{case}")]
    assert len(hits) == 1, case
    return hits[0]


# ---- idioms --------------------------------------------------------------------------------------
class Net(nn.Module):
    """conv-act-pool, a residual block, concat, a global pool or avg pool, flatten, linear(s).

    ``form`` picks how each op is written; the modules are created in the same order whatever the
    form, so equal seeds give equal weights.
    """

    def __init__(self, form: dict[str, str]) -> None:
        super().__init__()
        self.f = form
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1)
        self.br1 = nn.Conv2d(8, 4, 1)
        self.br2 = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(8 * 2 * 2, 12)
        self.fc2 = nn.Linear(12, 5)
        self.relu = nn.ReLU(inplace=form.get("act") == "module_inplace")
        self.relu6 = nn.ReLU6() if form.get("act6") != "hardtanh" else nn.Hardtanh(0.0, 6.0)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1 if form.get("gap") != "tuple" else (1, 1))
        self.add = Add()
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.3) if form.get("drop") != "identity" else nn.Identity()
        self.seq = nn.ModuleList([nn.Sequential(nn.Sequential(nn.Identity())), nn.Dropout(0.1)])

    def act(self, x: torch.Tensor) -> torch.Tensor:
        a = self.f.get("act", "module")
        if a in ("module", "module_inplace"):
            return self.relu(x)
        if a == "F":
            return F.relu(x)
        if a == "F_inplace":
            return F.relu(x, inplace=True)
        if a == "torch":
            return torch.relu(x)
        if a == "method":
            return x.relu()
        if a == "method_":
            return x.relu_()
        if a == "clamp":
            return x.clamp(min=0)
        return torch.clamp(x, min=0.0)

    def act6(self, x: torch.Tensor) -> torch.Tensor:
        a = self.f.get("act6", "module")
        if a in ("module", "hardtanh"):
            return self.relu6(x)
        if a == "F":
            return F.relu6(x)
        if a == "F_hardtanh":
            return F.hardtanh(x, 0.0, 6.0)
        return x.clamp(0, 6)

    def maxpool(self, x: torch.Tensor) -> torch.Tensor:
        p = self.f.get("pool", "module")
        if p == "module":
            return self.pool(x)
        if p == "F":
            return F.max_pool2d(x, 2)
        if p == "F_kw":
            return F.max_pool2d(x, kernel_size=2, stride=2)
        return torch.max_pool2d(x, 2)

    def residual(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        r = self.f.get("add", "module")
        if r == "module":
            return self.add(a, b)
        if r == "plus":
            return a + b
        if r == "iadd":
            a += b
            return a
        if r == "torch":
            return torch.add(a, b)
        return a.add(b)

    def pool2(self, x: torch.Tensor) -> torch.Tensor:
        g = self.f.get("gap", "avg_module")
        if g == "avg_module":
            return self.avg(x)
        if g == "avg_F":
            return F.avg_pool2d(x, 2)
        return x

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        fl = self.f.get("flat", "module")
        if fl == "module":
            return self.flatten(x)
        if fl == "torch":
            return torch.flatten(x, 1)
        if fl == "method":
            return x.flatten(1)
        if fl == "view_size":
            return x.view(x.size(0), -1)
        if fl == "view_const":
            return x.view(-1, 8 * 2 * 2)
        if fl == "reshape_shape":
            return x.reshape(x.shape[0], -1)
        b = x.size(0)
        return torch.reshape(x, (b, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act(self.stem(x)))                         # 8 x 4x4
        y = self.act(self.conv_a(x))
        x = self.act(self.residual(self.conv_b(y), x))
        x = torch.cat([self.act6(self.br1(x)), self.br2(x)], 1)           # 8 x 4x4
        x = self.pool2(x)                                                # 8 x 2x2
        for m in self.seq:
            x = m(x)
        x = self.flat(x)
        if self.f.get("drop") == "F":
            x = F.dropout(x, 0.3, self.training)
        else:
            x = self.drop(x)
        return self.fc2(self.act(self.fc(x)))


CANON: dict[str, str] = {}
IDIOMS = [
    {"act": "module_inplace"}, {"act": "F"}, {"act": "F_inplace"}, {"act": "torch"},
    {"act": "method"}, {"act": "method_"}, {"act": "clamp"}, {"act": "torch_clamp"},
    {"act6": "hardtanh"}, {"act6": "F"}, {"act6": "F_hardtanh"}, {"act6": "clamp"},
    {"pool": "F"}, {"pool": "F_kw"}, {"pool": "torch"},
    {"add": "plus"}, {"add": "iadd"}, {"add": "torch"}, {"add": "method"},
    {"gap": "avg_F"},
    {"flat": "torch"}, {"flat": "method"}, {"flat": "view_size"}, {"flat": "view_const"},
    {"flat": "reshape_shape"}, {"flat": "reshape_var"},
    {"drop": "F"}, {"drop": "identity"},
    {"act": "F", "pool": "F", "add": "iadd", "flat": "view_size", "gap": "avg_F", "drop": "F"},
]


def _integer_net(form: dict[str, str], x: torch.Tensor):
    torch.manual_seed(0)
    model = Net(form).eval()
    q = quantize_model(model, SPEC)
    calibrate(q, x)
    recs = fuse(q, x[:4])
    xq = quantize_input(q, x)
    return q, recs, xq


@pytest.fixture(scope="module")
def canonical():
    x = torch.randn(24, 3, 8, 8)
    return x, _integer_net(CANON, x)


@pytest.mark.parametrize("form", IDIOMS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_idiom_gives_the_integer_net_of_the_module_form(canonical, form):
    x, (_, recs0, xq0) = canonical
    q, recs, xq = _integer_net(form, x)
    assert [r.op for r in recs] == [r.op for r in recs0]
    assert np.array_equal(xq, xq0)
    g0, g = run_network(recs0, xq0), run_network(recs, xq)
    for r0, r in zip(recs0, recs):
        assert np.array_equal(g.outputs[r.name].y, g0.outputs[r0.name].y), (r0.name, r.name)
        assert (r.lo, r.hi) == (r0.lo, r0.hi), r.name                 # the same fused clamp
    t = run_network_torch(recs, xq)
    for r in recs:
        assert np.array_equal(t[r.name][1].numpy(), g.outputs[r.name].y), r.name
    diffs = layer_diffs(q, recs, xq)
    assert {r.name for r in recs if r.op in (OpKind.CONV2D, OpKind.LINEAR, OpKind.ADD,
                                              OpKind.CONCAT, OpKind.AVGPOOL)} <= set(diffs)
    assert all(d["max"] <= 1 for d in diffs.values()), diffs


class GapNet(nn.Module):
    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d((1, 1) if form == "tuple" else 1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        if self.form in ("module", "tuple"):
            x = self.flatten(self.gap(x))
        elif self.form == "F":
            x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        elif self.form == "mean":
            x = x.mean([2, 3])
        elif self.form == "squeeze":
            x = self.gap(x).squeeze()
        elif self.form == "mean_keep":
            x = x.mean((-1, -2), keepdim=True).view(x.size(0), -1)
        else:
            x = torch.mean(x, dim=(2, 3))
        return self.fc(x)


@pytest.mark.parametrize("form", ["tuple", "F", "mean", "mean_keep", "torch_mean", "squeeze"])
def test_global_average_pool_forms(form):
    x = torch.randn(16, 3, 5, 5)
    out = {}
    for f in ("module", form):
        torch.manual_seed(1)
        q = quantize_model(GapNet(f).eval(), SPEC)
        calibrate(q, x)
        recs = fuse(q, x[:4])
        xq = quantize_input(q, x)
        out[f] = ([r.op for r in recs], run_network(recs, xq).output)
        assert max(v["max"] for v in layer_diffs(q, recs, xq).values()) <= 1
    assert out[form][0] == out["module"][0] == [OpKind.CONV2D, OpKind.GAVGPOOL, OpKind.FLATTEN,
                                                OpKind.LINEAR]
    assert np.array_equal(out[form][1], out["module"][1])


def test_inserted_modules_are_named_after_their_scope(canonical):
    x = canonical[0]
    q, recs, _ = _integer_net({"add": "plus", "pool": "F", "gap": "avg_F"}, x)
    names = [r.name for r in recs]
    # `self.add` (an unused Add) already holds the name "add": the inserted one is "add_1"
    assert {"add_1", "maxpool", "cat", "avgpool"} <= set(names), names
    cat = next(r for r in recs if r.op is OpKind.CONCAT)
    assert cat.inputs == ("br1", "br2") and cat.params["axis"] == -1
    assert cat.meta["act"] is None and recs[names.index("br1")].meta["act"] == "relu6"
    assert q.code.count("self.add_1(") == 1      # the `+` became a call of the inserted Add


def test_shared_parameter_free_module_gets_one_copy_per_call():
    class Lenet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(4 * 2 * 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool(F.relu(self.c1(x)))
            x = self.pool(F.relu(self.c2(x)))
            return self.fc(x.view(-1, 16))

    x = torch.rand(8, 1, 8, 8)
    q = quantize_model(Lenet(), SPEC)
    calibrate(q, x)
    recs = fuse(q, x)
    assert [r.name for r in recs] == ["c1", "pool", "c2", "pool_1", "view", "fc"]
    assert q.pool is not q.pool_1


def test_bn1d_after_linear_folds_before_and_after_quantization():
    torch.manual_seed(5)
    lin, bn = nn.Linear(6, 5), nn.BatchNorm1d(5)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.copy_(torch.tensor([1.5, -0.7, 0.9, -1.2, 0.3]))
        bn.bias.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(64, 6)
    g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double()     # oracle, float64
    w = lin.weight.double() * g[:, None]
    b = (lin.bias.double() - bn.running_mean.double()) * g + bn.bias.double()
    torch.testing.assert_close(fold_bn(lin, bn)(x).double(), x.double() @ w.T + b, rtol=1e-5,
                               atol=1e-5)
    model = nn.Sequential(lin, bn, nn.ReLU(), nn.Linear(5, 3)).eval()
    for fold in (True, False):
        q = quantize_model(model, {**SPEC, "fold_bn": fold})
        calibrate(q, x)
        recs = fuse(q, x[:8])
        assert recs[0].meta["bn"] == (None if fold else "1") and recs[0].meta["act"] == "relu"
        xq = quantize_input(q, x)
        d = layer_diffs(q, recs, xq)
        assert max(v["max"] for v in d.values()) <= 1


def test_linear_on_tokens_b_t_c():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4), nn.Flatten(),
                          nn.Linear(5 * 4, 3)).eval()
    x = torch.randn(16, 5, 6)
    q = quantize_model(model, SPEC)
    calibrate(q, x)
    recs = fuse(q, x[:4])
    assert recs[0].x_q is None and recs[0].meta["torch_in_shape"] == [4, 5, 6]
    xq = quantize_input(q, x)
    t = run_network_torch(recs, xq)
    g = run_network(recs, xq)
    assert all(np.array_equal(t[r.name][1].numpy(), g.outputs[r.name].y) for r in recs)
    assert max(v["max"] for v in layer_diffs(q, recs, xq).values()) <= 1


# ---- one error for everything else ---------------------------------------------------------------
class Bad(nn.Module):
    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        self.sig = nn.Sigmoid()
        self.gn = nn.GroupNorm(2, 4)
        self.bn = nn.BatchNorm2d(4)
        self.scale = nn.Parameter(torch.ones(1))
        self.c44 = nn.Conv2d(4, 4, 1)

    def body(self, x: torch.Tensor) -> torch.Tensor:  # noqa: C901 - one branch per case
        c = self.case
        if c == "sigmoid":
            return torch.sigmoid(x)  # BAD:sigmoid
        if c == "sigmoid_module":
            return self.sig(x)  # BAD:sigmoid_module
        if c == "mul":
            return x * 2  # BAD:mul
        if c == "getitem":
            return x[:, [0, 2, 1, 3]]  # BAD:getitem
        if c == "interpolate":
            return F.interpolate(x, scale_factor=1.0)  # BAD:interpolate
        if c == "groupnorm":
            return self.gn(x)  # BAD:groupnorm
        if c == "ceil":
            return F.max_pool2d(x, 1, ceil_mode=True)  # BAD:ceil
        if c == "cat_batch":
            return torch.cat([x, x], 0)  # BAD:cat_batch
        if c == "add_const":
            return x + 1.0  # BAD:add_const
        if c == "hardtanh":
            return F.hardtanh(x, -1.0, 1.0)  # BAD:hardtanh
        if c == "param":
            return x * self.scale  # BAD:param
        if c == "bn_after_add":
            return self.bn(x + x)  # BAD:bn_after_add
        if c == "conv_twice":
            return self.c44(self.c44(x))  # BAD:conv_twice
        if c == "relu_unused":
            x.relu_()  # BAD:relu_unused
            return x
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(self.conv(x))
        return self.fc(y.reshape(y.size(0), -1))


class LogSoftmaxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc(x), dim=1)  # BAD:log_softmax


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # BAD:control_flow
            return self.fc(x)
        return self.fc(-x)


BAD_CASES = [  # (case, fx node name, what the message must say)
    ("sigmoid", "sigmoid", "torch.sigmoid.*nn.ReLU / nn.ReLU6"),
    ("sigmoid_module", "sig", "Sigmoid 'sig'.*nn.ReLU"),
    ("mul", "mul", "operator.mul.*fold constant factors"),
    ("getitem", "getitem", "advanced indexing.*index with ints and slices"),
    ("interpolate", "interpolate", "F.interpolate.*resize the input on the host"),
    ("groupnorm", "gn", "GroupNorm 'gn'.*only BatchNorm directly after"),
    ("ceil", "max_pool2d", "F.max_pool2d.*ceil_mode"),
    ("cat_batch", "cat", "dim=0: the batch dim"),
    ("add_const", "add", "not a tensor computed by the network"),
    ("hardtanh", "hardtanh", r"hardtanh\(-1.0, 1.0\)"),
    ("param", "scale", "attribute 'scale'.*fold it into a conv or linear"),
    ("bn_after_add", "bn", "batch norm 'bn' does not directly follow"),
    ("conv_twice", "c44_1", "module 'c44' is called 2 times"),
    ("relu_unused", "relu_", "in-place activation whose result is not used"),
]


@pytest.mark.parametrize("case, node, msg", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_unsupported_op_names_node_line_and_remedy(case, node, msg):
    with pytest.raises(ModelError, match=msg) as ei:
        quantize_model(Bad(case), SPEC)
    e = ei.value
    assert (e.file, e.line, e.node) == (__file__, tagged_line(case), node), str(e)
    assert str(e).startswith(f"{__file__}, line {tagged_line(case)}, node '{node}': ")


def test_log_softmax_head_and_untraceable_control_flow():
    with pytest.raises(ModelError, match="return the logits") as ei:
        quantize_model(LogSoftmaxHead(), SPEC)
    assert (ei.value.file, ei.value.line) == (__file__, tagged_line("log_softmax"))
    with pytest.raises(ModelError, match="cannot be traced by torch.fx") as ei:
        quantize_model(DataDependent(), SPEC)
    assert (ei.value.file, ei.value.line) == (__file__, tagged_line("control_flow"))


def _fixed(scale, channel: bool = False) -> nn.Module:
    q = (MinMaxChannelQuantizer if channel else MinMaxQuantizer)(nbit=8)
    s = torch.tensor(scale, dtype=torch.float32)
    q.set_qparams(s, torch.zeros(s.shape, dtype=torch.int64))
    q.observing = False
    return q


class HandBuilt(nn.Module):
    """A fake-quant model built by hand (no quantize_model) with a float op between wrappers."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.a = QLinear(4, 4, wq=_fixed(0.01), aq=_fixed(0.02))
        self.b = QLinear(4, 2, wq=_fixed(0.01), aq=_fixed(0.02), oq=_fixed(0.05))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.case == "relu_input":
            x = F.relu(x)  # BAD:fuse_relu_input
        y = self.a(x)
        if self.case == "sigmoid":
            y = torch.sigmoid(y)  # BAD:fuse_sigmoid
        elif self.case == "plus":
            y = y + y  # BAD:fuse_plus
        return self.b(y)


@pytest.mark.parametrize("case, msg", [
    ("sigmoid", "torch.sigmoid.*not an integer op.*nn.ReLU"),
    ("plus", "operator.add.*not a fake-quant layer.*quantize_model"),
])
def test_fuse_asks_the_same_table(case, msg):
    with pytest.raises(FuseError, match=msg) as ei:
        fuse(HandBuilt(case), torch.rand(2, 4))
    assert (ei.value.file, ei.value.line) == (__file__, tagged_line(f"fuse_{case}"))
    if case == "sigmoid":   # the float model with the same op: the same words from quantize_model
        with pytest.raises(ModelError) as eq:
            quantize_model(HandBuilt(case), SPEC)
        assert eq.value.detail == ei.value.detail


def test_activation_on_the_network_input_is_refused_by_fuse():
    with pytest.raises(FuseError, match="F.relu.*not after a conv, linear") as ei:
        fuse(HandBuilt("relu_input"), torch.rand(2, 4))
    assert ei.value.line == tagged_line("fuse_relu_input")


def test_quantized_model_keeps_the_users_modules_across_copies():
    import copy

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x = torch.rand(8, 1, 8, 8)
    q = quantize_model(model, SPEC)
    calibrate(q, x)
    for c in (q, copy.deepcopy(q)):
        assert isinstance(c[3], QLinear) and len(c) == 4          # the user's nn.Sequential
    c = copy.deepcopy(q)
    torch.testing.assert_close(c(x), q(x), rtol=0, atol=0)
    fresh = quantize_model(model, SPEC)
    fresh.load_state_dict(q.state_dict())
    assert all(np.array_equal(a.y, b.y) for a, b in zip(
        attach(fuse(fresh, x), fresh, x), attach(fuse(q, x), q, x)))


def attach(recs, q, x):
    from t2c_sim.golden import attach_results
    return attach_results(recs, run_network(recs, quantize_input(q, x)))
