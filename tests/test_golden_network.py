"""Network runner, attach_results, random generators (each checked against the independent PyTorch
integer path), and the no-torch rule of t2c_sim.golden."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from t2c_sim.config import OpKind
from t2c_sim.errors import RecordError
from t2c_sim.golden import attach_results, run_network
from t2c_sim.verify.torch_int import run_layer_torch, run_network_torch
from t2c_sim.workloads.gen import random_conv_record, random_linear_record, random_network


def torch_oracle_mismatches(rec, *inputs) -> list[str]:
    """Where ``rec``'s stored golden ``acc``/``y`` differ from the independent PyTorch integer
    path (:mod:`t2c_sim.verify.torch_int`, which shares no code with the golden model) run on
    ``inputs`` (default ``rec.x_q``), dense and on the compressed N:M form."""
    bad = []
    for nm_mode in ("dense", "sparse"):
        if nm_mode == "sparse" and rec.values is None:
            continue
        acc, y = run_layer_torch(rec, *inputs, nm_mode=nm_mode)
        if not np.array_equal(y.numpy(), rec.y):
            bad.append(f"{rec.name} y ({nm_mode})")
        if (acc is None) != (rec.acc is None) or (
                acc is not None and not np.array_equal(acc.numpy(), rec.acc)):
            bad.append(f"{rec.name} acc ({nm_mode})")
    return bad


@pytest.mark.parametrize("seed,nm", [(0, (1, 1)), (1, (2, 4)), (2, (1, 2))])
def test_network_keeps_intermediates(seed, nm):
    """Every layer's stored inputs, acc and y against the torch integer path, layer by layer
    and end to end; the wiring (which output feeds which input) against the records."""
    rng = np.random.default_rng(seed)
    print("seed", seed)
    recs = random_network(rng, batch=2, h=6, w=4, n=nm[0], m=nm[1])
    assert [r.op for r in recs] == [OpKind.CONV2D, OpKind.MAXPOOL, OpKind.CONV2D, OpKind.ADD,
                                    OpKind.GAVGPOOL, OpKind.FLATTEN, OpKind.LINEAR]
    x = recs[0].x_q
    oracle = run_network_torch(recs, x)
    for nm_mode in ("fast", "reference"):
        trace = run_network(recs, x, nm_mode=nm_mode)
        assert trace.order == [r.name for r in recs]
        for rec in recs:
            srcs = [x if s == "input" else oracle[s][1].numpy() for s in rec.inputs]
            seen = trace.inputs[rec.name]
            assert len(seen) == len(srcs)
            assert all(np.array_equal(a, b) for a, b in zip(seen, srcs))
            acc, y = oracle[rec.name]
            assert np.array_equal(trace.y(rec.name), y.numpy())
            assert (trace.acc(rec.name) is None) == (acc is None)
            if acc is not None:
                assert np.array_equal(trace.acc(rec.name), acc.numpy())
            # the results the generator attached, against the oracle on the same inputs
            assert torch_oracle_mismatches(rec, *seen) == []
        assert trace.output.shape == (2, 10)
        assert np.array_equal(trace.inputs["add"][0], trace.y("pool"))
        assert np.array_equal(trace.inputs["add"][1], trace.y("conv2"))


def test_torch_oracle_check_catches_a_one_lsb_error():
    rec = random_linear_record(np.random.default_rng(11), c_in=16, c_out=4, rows=3, n=2, m=4)
    assert torch_oracle_mismatches(rec) == []
    y = rec.y.copy()
    y[1, 2] += 1 if y[1, 2] < rec.hi else -1
    assert torch_oracle_mismatches(rec.replace(y=y)) == [f"{rec.name} y (dense)",
                                                         f"{rec.name} y (sparse)"]
    acc = rec.acc.copy()
    acc[0, 0] += 1
    assert torch_oracle_mismatches(rec.replace(acc=acc)) == [f"{rec.name} acc (dense)",
                                                             f"{rec.name} acc (sparse)"]


def test_attach_results_returns_filled_copies():
    rng = np.random.default_rng(3)
    recs = random_network(rng)
    bare = [r.replace(x_q=None, acc=None, y=None) for r in recs]
    trace = run_network(bare, recs[0].x_q)
    filled = attach_results(bare, trace)
    assert all(r.y is None and r.x_q is None for r in bare)  # originals untouched
    for f, r in zip(filled, recs):
        assert f is not r and f.name == r.name
        assert np.array_equal(f.x_q, r.x_q)
        assert np.array_equal(f.y, r.y)
        assert (f.acc is None) == (r.acc is None)
        if f.acc is not None:
            assert np.array_equal(f.acc, r.acc)
    with pytest.raises(RecordError, match="ghost"):
        attach_results([recs[0].replace(name="ghost")], trace)


def test_network_errors_name_the_layer():
    rng = np.random.default_rng(4)
    recs = random_network(rng)
    x = recs[0].x_q
    bad = list(recs)
    bad[2] = bad[2].replace(inputs=("nope",))
    with pytest.raises(RecordError, match="conv2.*nope"):
        run_network(bad, x)
    later = list(recs)
    later[1] = later[1].replace(inputs=("fc",))  # a later layer is not available yet
    with pytest.raises(RecordError, match="pool.*fc"):
        run_network(later, x)
    shape = list(recs)
    shape[3] = shape[3].replace(inputs=("pool", "conv1"))  # 4x4 vs 8x8
    with pytest.raises(RecordError, match="add"):
        run_network(shape, x)
    with pytest.raises(RecordError, match="conv1"):
        run_network(recs, x[:, :6])
    dup = list(recs) + [recs[-1]]
    with pytest.raises(RecordError, match="duplicate"):
        run_network(dup, x)


def _saturated_fraction(rec) -> float:
    return float(np.mean((rec.y == rec.lo) | (rec.y == rec.hi)))


def _relu(rec) -> bool:
    return rec.lo > rec.y_range[0]


@pytest.mark.parametrize("seed", range(4))
def test_generators_make_valid_spread_records(seed):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    recs = [
        random_linear_record(rng, c_in=64, c_out=16, rows=32, n=2, m=4),
        random_linear_record(rng, c_in=30, c_out=8, rows=20, a_bits=4, a_signed=False, w_bits=4,
                             y_bits=4, y_signed=False, relu=True),
        random_linear_record(rng, c_in=20, c_out=8, rows=12, token_wise=True),
        random_conv_record(rng, c_in=8, c_out=8, h=8, w=8, n=1, m=4, relu=True),
        random_conv_record(rng, c_in=6, c_out=6, h=7, w=7, groups=6, stride=2, mult_bits=16),
    ]
    for rec in recs:
        rec.validate()
        assert rec.z_x != 0 and rec.z_y != 0
        assert rec.x_q is not None and rec.acc is not None and rec.y is not None
        # a fused ReLU clamps about half of the outputs to lo; nothing else should saturate much
        assert _saturated_fraction(rec) < (0.75 if _relu(rec) else 0.25), rec.name
        assert np.mean(rec.y == rec.hi) < 0.25, rec.name
        assert len(np.unique(rec.y)) >= 4, rec.name
        assert torch_oracle_mismatches(rec) == [], rec.name   # independent integer path
    assert recs[1].lo == max(0, recs[1].z_y)  # ReLU raised lo
    assert np.count_nonzero(recs[0].w_q) <= recs[0].w_q.size // 2


def test_generators_are_deterministic():
    a = random_network(np.random.default_rng(9), n=2, m=4)
    b = random_network(np.random.default_rng(9), n=2, m=4)
    for ra, rb in zip(a, b):
        assert np.array_equal(ra.y, rb.y) and np.array_equal(ra.x_q, rb.x_q)


def test_golden_never_imports_torch():
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        import numpy as np
        import t2c_sim.golden
        from t2c_sim.workloads.gen import random_network
        from t2c_sim.golden import run_network
        recs = random_network(np.random.default_rng(0), n=2, m=4)
        trace = run_network(recs, recs[0].x_q, nm_mode="reference")
        assert "torch" not in sys.modules
        try:
            import torch  # noqa: F401
        except ImportError:
            print("BLOCKED", trace.output.shape)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "BLOCKED (1, 10)" in res.stdout
