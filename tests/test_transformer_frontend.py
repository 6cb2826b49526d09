"""Transformers through the normal front end: attention, LayerNorm, GELU, class token, position
embedding and patch embedding written the way PyTorch users write them (issue 14 item 4).

Cases are tables of idioms. Oracles, each independent of the code under test:

- data movement: the integers a layer receives after the user's reshapes, permutes, transposes,
  ``unbind`` and indexing must equal the user's own code run by torch on the producer's integer
  output (``Mover.move`` on int64 tensors), exactly;
- every fused layer: the fake-quant model (float torch ops) within 1 LSB, and the NumPy golden
  model equal to the PyTorch integer path (np.array_equal);
- fuse-time constants: the attention scale folded into the matmul multiplier, the per-row
  multipliers of a token-wise consumer read back through a head merge, the class token and
  position embedding quantized by the fake-quant quantizers.

Each unsupported form is one error naming this file, the tagged line and the fx node.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import t2c_sim.fuse.movement as movement
from t2c_sim.config import OpKind
from t2c_sim.errors import FuseError, ModelError
from t2c_sim.fuse import fuse, quantize_input
from t2c_sim.golden import attach_results, run_network
from t2c_sim.models.vit import Block, vit_digits
from t2c_sim.numerics import quantize_multiplier
from t2c_sim.quant.calibrate import calibrate
from t2c_sim.quant.modules import MatMul
from t2c_sim.quant.nonlinear import QMatMul
from t2c_sim.quant.quantize import quantize_model
from t2c_sim.verify.crosscheck import layer_diffs
from t2c_sim.verify.torch_int import run_network_torch

SPEC = {"weight": {"quantizer": "minmax_channel", "nbit": 8},
        "act": {"quantizer": "minmax", "nbit": 8}, "output": {"quantizer": "minmax", "nbit": 8}}
TOKENWISE = {**SPEC, "types": {"linear": {"act": {"quantizer": "minmax_token", "nbit": 8}}}}
SRC = Path(__file__).read_text().splitlines()
B, T, D, H = 3, 5, 12, 3


def tagged_line(case: str) -> int:
    hits = [i + 1 for i, t in enumerate(SRC) if t.rstrip().endswith(f"# BAD:{case}")]
    assert len(hits) == 1, case
    return hits[0]


def flow(model: nn.Module, x: torch.Tensor, spec: dict = SPEC, n_fuse: int = 2):
    """quantize -> calibrate -> fuse -> golden (attached) -> torch integer path."""
    q = quantize_model(model.eval(), spec)
    calibrate(q, x)
    recs = fuse(q, x[:n_fuse])
    xq = quantize_input(q, x[:n_fuse])
    recs = attach_results(recs, run_network(recs, xq))
    t = run_network_torch(recs, xq)
    for r in recs:
        assert np.array_equal(t[r.name][1].numpy(), r.y), r.name
    return q, recs, xq


def check_layers(q, recs, xq, rate: float = 0.02) -> dict:
    d = layer_diffs(q, recs, xq)
    for name, s in d.items():
        assert s["max"] <= 1 and s["nonzero_rate"] <= rate, (name, s)
    return d


# ---- data movement: the user's code on integers is the oracle ---------------------------------
class Mover(nn.Module):
    """``a`` (a linear over tokens ``[B, T, D]``) -> the case's data movement -> a consumer that
    reads it: a matmul (``m @ m^T``-style, both operands moved) or a linear."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.a = nn.Linear(D, 3 * D if case.startswith("qkv") or case == "chunk" else D)
        self.out = nn.Linear(D, 4)

    def move(self, y: torch.Tensor):  # noqa: C901 - one branch per idiom
        c, b = self.case, y.shape[0]
        if c == "qkv_unbind":         # timm
            qkv = y.reshape(b, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            return q, k.transpose(-2, -1), v
        if c == "qkv_index":
            qkv = y.reshape(b, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
            return qkv[0], qkv[1].transpose(-2, -1), qkv[2]
        if c == "chunk":              # q, k, v = chunk(3, -1), then view + transpose per head
            q, k, v = y.chunk(3, dim=-1)
            q, k, v = (t.view(b, T, H, D // H).transpose(1, 2) for t in (q, k, v))
            return q, k.mT, v
        if c == "heads_view":         # separate q/k/v: one head split, k^T by permute
            q = y.view(b, -1, H, D // H).transpose(1, 2)
            return q, q.permute(0, 1, 3, 2), q
        if c == "single_head":
            return y, y.transpose(1, 2), y
        raise AssertionError(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        q, kt, v = self.move(y)
        attn = q @ kt
        o = attn @ v
        if self.case != "single_head":
            o = o.transpose(1, 2).reshape(o.shape[0], T, D)
        return self.out(o)


MOVE_CASES = ["qkv_unbind", "qkv_index", "chunk", "heads_view", "single_head"]


def _int_of(recs, name):
    return next(r for r in recs if r.name == name)


@pytest.mark.parametrize("case", MOVE_CASES)
def test_attention_data_movement_equals_the_users_code_on_integers(case):
    torch.manual_seed(1)
    model = Mover(case)
    x = torch.randn(8, T, D)
    q, recs, xq = flow(model, x)
    a = torch.from_numpy(_int_of(recs, "a").y)
    qi, kti, vi = model.move(a)                          # the user's movement on integers
    mm = [r for r in recs if r.op is OpKind.MATMUL]
    assert len(mm) == 2
    b0 = mm[0].b_q.swapaxes(-1, -2) if mm[0].trans_b else mm[0].b_q
    assert np.array_equal(mm[0].x_q, qi.numpy()) and np.array_equal(b0, kti.numpy())
    b1 = mm[1].b_q.swapaxes(-1, -2) if mm[1].trans_b else mm[1].b_q
    assert np.array_equal(b1, vi.numpy())
    assert mm[0].trans_b                                 # k^T stored as the keys come
    if case != "single_head":                            # merge heads: the integers proj reads
        mi = torch.from_numpy(mm[1].y)
        want = mi.transpose(1, 2).reshape(mi.shape[0], T, D).numpy()
        assert np.array_equal(_int_of(recs, "out").x_q, want)
    moves = [r for r in recs if r.op in (OpKind.RESHAPE, OpKind.SLICE)]
    assert len(moves) <= 7 and all(r.op in (OpKind.RESHAPE, OpKind.SLICE) for r in moves)
    check_layers(q, recs, xq)


class Patchify(nn.Module):
    """Patch embeddings: a conv with stride = patch (``flatten(2).transpose(1, 2)``), or patches cut
    out of the image by reshape/permute and a linear; then a class token, a position embedding and
    a head on ``x[:, 0]`` or on the mean... no: on ``x[:, 0]`` / ``x[:, 1:]`` tokens."""

    def __init__(self, case: str, d: int = 8, p: int = 2) -> None:
        super().__init__()
        self.case, self.p = case, p
        self.proj = nn.Conv2d(2, d, p, stride=p) if case.startswith("conv") else \
            nn.Linear(2 * p * p, d)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d) * 0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + 16 // p // p * 4, d) * 0.3)
        self.head = nn.Linear(d, 3)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        if self.case == "conv_flatten":
            return self.proj(x).flatten(2).transpose(1, 2)
        if self.case == "conv_permute":
            y = self.proj(x)
            return y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, y.shape[1])
        b, c, hh, ww = x.shape
        p = self.p                       # reshape/permute patches [B, N, C*p*p]
        x = x.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 1, 3, 5)
        return self.proj(x.reshape(b, (hh // p) * (ww // p), c * p * p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tokens(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.pos_embed
        return self.head(x[:, 0])


@pytest.mark.parametrize("case", ["conv_flatten", "conv_permute", "linear_patches"])
def test_patch_embedding_class_token_and_position_embedding(case):
    torch.manual_seed(2)
    model = Patchify(case)
    x = torch.rand(8, 2, 8, 8)
    q, recs, xq = flow(model, x)
    by = {r.name: r for r in recs}
    tok = torch.from_numpy(by["proj"].y)                 # integers of the patch embedding
    if case.startswith("conv"):                          # channel-last [B, h, w, d] in golden
        t = tok.permute(0, 3, 1, 2)                      # the torch layout the user's code sees
        want = t.flatten(2).transpose(1, 2) if case == "conv_flatten" else \
            t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1])
        assert np.array_equal(by["cat"].x_q, want.numpy())
    else:                                                # the input patches the linear reads
        xi = torch.from_numpy(xq).permute(0, 3, 1, 2)
        bb, c, hh, ww = xi.shape
        p = model.p
        want = xi.reshape(bb, c, hh // p, p, ww // p, p).permute(0, 2, 4, 1, 3, 5).reshape(
            bb, (hh // p) * (ww // p), c * p * p)
        assert np.array_equal(by["proj"].x_q, want.numpy())
    cat, add = by["cat"], by["add"]
    with torch.no_grad():                                # the class token in the cat's format
        assert np.array_equal(cat.const_q, q.add.qa.quantize(model.cls_token[0]).numpy())
        assert np.array_equal(add.const_q, q.add.qb.quantize(model.pos_embed[0]).numpy())
    assert cat.inputs != add.inputs and add.inputs == ("cat",) and cat.const_q.shape == (1, 8)
    assert q.add.qb is not None and q.pos_embed is q.get_parameter("pos_embed")
    head_in = torch.from_numpy(by["add"].y)[:, 0]        # x[:, 0] on integers
    assert np.array_equal(by["head"].x_q, head_in.numpy())
    check_layers(q, recs, xq)


# ---- the attention scale: one multiplier -----------------------------------------------------
class Scaled(nn.Module):
    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.qkv = nn.Linear(D, 3 * D)
        self.scale = (D // H) ** -0.5
        self.proj = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        q, k, v = self.qkv(x).reshape(b, T, 3, H, D // H).permute(2, 0, 3, 1, 4).unbind(0)
        f = self.form
        if f == "after":
            a = (q @ k.transpose(-2, -1)) * self.scale
        elif f == "before":
            q = q * self.scale
            a = q @ k.transpose(-2, -1)
        elif f == "divide":
            a = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(D // H)
        else:                                            # on the transposed keys, a method
            a = q.matmul(k.transpose(-2, -1).mul(self.scale))
        a = F.softmax(a, dim=-1) if f != "after" else a.softmax(dim=-1)
        o = (a @ v).permute(0, 2, 1, 3).flatten(2)
        return self.proj(o)


@pytest.mark.parametrize("form", ["after", "before", "divide", "method_on_b"])
def test_attention_scale_folds_into_one_multiplier(form):
    torch.manual_seed(3)
    model = Scaled(form)
    x = torch.randn(8, T, D)
    with torch.no_grad():
        ref = model(x)
    q = quantize_model(model, SPEC)
    mms = [m for m in q.modules() if isinstance(m, (MatMul, QMatMul))]
    assert [m.alpha for m in mms] == pytest.approx([(D // H) ** -0.5, 1.0], rel=1e-12)
    assert all(n.op != "call_function" or n.target not in (torch.mul, torch.div)
               for n in q.graph.nodes)
    calibrate(q, x)
    recs = fuse(q, x[:2])
    mm = next(r for r in recs if r.op is OpKind.MATMUL)
    s_a, s_b, s_y = (float(v) for v in (mm.meta["s_x"], mm.meta["s_b"], mm.meta["s_y"]))
    m0, sh = quantize_multiplier((D // H) ** -0.5 * s_a * s_b / s_y)   # one multiplier, alpha in it
    assert (mm.M0.tolist(), mm.sh.tolist()) == ([int(m0)], [int(sh)])
    xq = quantize_input(q, x[:2])
    recs = attach_results(recs, run_network(recs, xq))
    check_layers(q, recs, xq)
    with torch.no_grad():                                # the float function did not change
        assert torch.allclose(model(x), ref)


# ---- token-wise rows through the head merge ----------------------------------------------------
def test_tokenwise_consumer_gives_the_producers_per_row_multipliers():
    """proj reads ``(attn @ v).transpose(1, 2).reshape(B, T, D)`` token-wise: row ``(b, h, t)`` of
    the matmul requantizes with the scale proj's quantizer gave token ``(b, t)``."""
    torch.manual_seed(4)
    model = Scaled("after")
    x = torch.randn(8, T, D)
    q, recs, xq = flow(model, x, TOKENWISE, n_fuse=3)
    mm = [r for r in recs if r.op is OpKind.MATMUL][1]
    s_tok = q.proj.aq.scale.detach().double().reshape(3, T).numpy()     # [B, T] from the quantizer
    s_a, s_b = float(mm.meta["s_x"]), float(mm.meta["s_b"])
    want = [quantize_multiplier(s_a * s_b / s_tok[b, t]) for b in range(3) for h in range(H)
            for t in range(T)]
    assert mm.M0.shape == (3 * H * T, 1) and mm.meta["input_specific"]
    assert mm.M0[:, 0].tolist() == [int(m) for m, _ in want]
    assert mm.sh[:, 0].tolist() == [int(s) for _, s in want]
    qkv = next(r for r in recs if r.name == "qkv")
    assert qkv.M0.shape == (3 * T, 3 * D)                 # token-wise input: per-row requantizer
    check_layers(q, recs, xq)


def test_layernorm_and_gelu_feeding_tokenwise_linears_get_per_row_constants():
    torch.manual_seed(5)
    model = Block(D, H, mlp_ratio=2.0)
    with torch.no_grad():
        for ln in (model.norm1, model.norm2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_(0, 0.2)
    x = torch.randn(6, T, D)
    q, recs, xq = flow(model, x, TOKENWISE, n_fuse=2)
    by = {r.name: r for r in recs}
    for name in ("norm1", "norm2"):
        assert by[name].gamma_q.shape == (2 * T, D) and by[name].meta["input_specific"]
    assert by["mlp.act"].table.shape == (2 * T, 256)
    assert [r.op.value for r in recs].count("add") == 2
    check_layers(q, recs, xq)


# ---- the ViT of the zoo: the same table, end to end ---------------------------------------------
def test_vit_of_the_zoo_fuses_every_op():
    torch.manual_seed(6)
    model = vit_digits(embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0)
    x = torch.rand(8, 1, 8, 8)
    q, recs, xq = flow(model, x, TOKENWISE)
    ops = [r.op.value for r in recs]
    for op, n in (("conv2d", 1), ("concat", 1), ("add", 3), ("layernorm", 3), ("linear", 5),
                  ("matmul", 2), ("softmax", 1), ("gelu", 1)):
        assert ops.count(op) == n, (op, ops)
    assert {"reshape", "slice"} <= set(ops)
    check_layers(q, recs, xq, rate=0.05)


# ---- what is refused: one line naming the user's source -------------------------------------
class Refused(nn.Module):
    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.fc = nn.Linear(D, D)
        self.fc2 = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm((T, D))
        self.w = nn.Parameter(torch.ones(D))

    def body(self, y: torch.Tensor) -> torch.Tensor:  # noqa: C901 - one branch per case
        c = self.case
        if c == "sdpa":
            return F.scaled_dot_product_attention(y, y, y)  # BAD:sdpa
        if c == "log_softmax":
            return F.log_softmax(y, dim=-1)  # BAD:log_softmax
        if c == "tensor_mul":
            return y * y  # BAD:tensor_mul
        if c == "lonely_scale":
            return y * 0.5  # BAD:lonely_scale
        if c == "ln_two_dims":
            return self.ln2(y)  # BAD:ln_two_dims
        if c == "layer_norm_fn":
            return F.layer_norm(y, (D,))  # BAD:layer_norm_fn
        if c == "fancy_index":
            return y[:, [0, 2]]  # BAD:fancy_index
        if c == "param_mul":
            return y * self.w  # BAD:param_mul
        if c == "einsum":
            return torch.einsum("btd,bsd->bts", y, y)  # BAD:einsum
        if c == "shape_scale":
            return (y @ y.transpose(-2, -1)) * y.size(-1) ** -0.5  # BAD:shape_scale
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.body(self.fc(x)))


REFUSED = [  # (case, fx node, what the message must say)
    ("sdpa", "scaled_dot_product_attention", "write the attention out"),
    ("log_softmax", "log_softmax", "return the logits"),
    ("tensor_mul", "mul", "no elementwise integer multiply"),
    ("lonely_scale", "mul", "not next to a matmul"),
    ("ln_two_dims", "ln2", "normalize over the last axis only"),
    ("layer_norm_fn", "layer_norm", "use the module nn.LayerNorm"),
    ("fancy_index", "getitem", "advanced indexing"),
    ("param_mul", "w", "attribute 'w'"),
    ("einsum", "einsum", r"a @ b \(torch.matmul\)"),
    ("shape_scale", "mul", "a factor computed from tensor shapes.*self.scale = head_dim"),
]


@pytest.mark.parametrize("case, node, msg", REFUSED, ids=[c[0] for c in REFUSED])
def test_unsupported_transformer_forms_name_the_line(case, node, msg):
    with pytest.raises(ModelError, match=msg) as ei:
        quantize_model(Refused(case), SPEC)
    e = ei.value
    assert (e.file, e.line, e.node) == (__file__, tagged_line(case), node), str(e)
    assert "\n" not in str(e)


class Crossing(nn.Module):
    """Data movement the integer model has no record for: across the batch axis, a broadcast."""

    def __init__(self, case: str) -> None:
        super().__init__()
        self.case = case
        self.fc = nn.Linear(D, D)
        self.out = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if self.case == "batch":
            y = y.transpose(0, 1)  # BAD:fuse_batch
        elif self.case == "softmax_dim":
            y = y.softmax(dim=1)  # BAD:fuse_softmax_dim
        return self.out(y)


@pytest.mark.parametrize("case, msg", [
    ("batch", "no slice and reshape of the integer tensor"),
    ("softmax_dim", "runs over the last axis"),
])
def test_fuse_refuses_movement_and_axes_it_cannot_express(case, msg):
    q = quantize_model(Crossing(case), SPEC)
    x = torch.randn(4, T, D)
    with pytest.raises((FuseError, ModelError), match=msg) as ei:
        calibrate(q, x)
        fuse(q, x[:2])
    assert ei.value.line == tagged_line(f"fuse_{case}")


# ---- the checkers can fail ---------------------------------------------------------------------
def test_mutants_are_caught(monkeypatch):
    torch.manual_seed(7)
    model = Mover("qkv_unbind")
    x = torch.randn(8, T, D)
    real = movement._slice_axis

    def next_third(shape, used):             # a planner that picks the next third (k for q)
        ax, a, b = real(shape, used)
        w = b - a
        return ax, (a + w) % shape[ax], (a + w) % shape[ax] + w

    monkeypatch.setattr(movement, "_slice_axis", next_third)
    with pytest.raises(AssertionError):
        test_attention_data_movement_equals_the_users_code_on_integers("qkv_unbind")
    monkeypatch.undo()
    q, recs, xq = flow(model, x)                 # an unfolded scale: the matmul is off
    bad = [r.replace(M0=r.M0 // 2) if r.op is OpKind.MATMUL else r for r in recs]
    assert max(s["max"] for s in layer_diffs(q, bad, xq).values()) > 1
    ln = Block(D, H)
    q, recs, xq = flow(ln, torch.randn(6, T, D), TOKENWISE)
    norm1 = next(r for r in recs if r.name == "norm1")
    rolled = [r.replace(gamma_q=np.roll(norm1.gamma_q, 1, axis=0),
                        beta_q=np.roll(norm1.beta_q, 1, axis=0)) if r.name == "norm1" else r
              for r in recs]                     # per-row constants on the wrong rows
    assert layer_diffs(q, rolled, xq)["norm1"]["max"] > 1
