"""Network runner, attach_results, random generators, and the no-torch rule of t2c_sim.golden."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from t2c_sim.config import OpKind
from t2c_sim.errors import RecordError
from t2c_sim.golden import attach_results, run_layer, run_network
from t2c_sim.workloads.gen import random_conv_record, random_linear_record, random_network


@pytest.mark.parametrize("seed,nm", [(0, (1, 1)), (1, (2, 4)), (2, (1, 2))])
def test_network_keeps_intermediates(seed, nm):
    rng = np.random.default_rng(seed)
    print("seed", seed)
    recs = random_network(rng, batch=2, h=6, w=4, n=nm[0], m=nm[1])
    assert [r.op for r in recs] == [OpKind.CONV2D, OpKind.MAXPOOL, OpKind.CONV2D, OpKind.ADD,
                                    OpKind.GAVGPOOL, OpKind.FLATTEN, OpKind.LINEAR]
    x = recs[0].x_q
    for nm_mode in ("fast", "reference"):
        trace = run_network(recs, x, nm_mode=nm_mode)
        assert trace.order == [r.name for r in recs]
        for rec in recs:
            srcs = [x if s == "input" else trace.y(s) for s in rec.inputs]
            seen = trace.inputs[rec.name]
            assert len(seen) == len(srcs)
            assert all(np.array_equal(a, b) for a, b in zip(seen, srcs))
            # each stored result equals a fresh single-layer run on the stored inputs
            out = run_layer(rec, *seen)
            assert np.array_equal(trace.y(rec.name), out.y)
            assert np.array_equal(rec.y, out.y)  # generator attached the same results
            if out.acc is None:
                assert trace.acc(rec.name) is None
            else:
                assert np.array_equal(trace.acc(rec.name), out.acc)
        assert trace.output.shape == (2, 10)
        assert np.array_equal(trace.inputs["add"][0], trace.y("pool"))
        assert np.array_equal(trace.inputs["add"][1], trace.y("conv2"))


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
        out = run_layer(rec)
        assert np.array_equal(out.y, rec.y) and np.array_equal(out.acc, rec.acc)
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
