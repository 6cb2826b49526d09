"""Layer record validation, .npz/.json round trip, tamper detection, hex packing, HwConfig."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t2c_sim.config import HwConfig, SparsitySpec
from t2c_sim.errors import ConfigError, RecordError
from t2c_sim.export import (
    load_network,
    load_record,
    pack_words,
    read_memh,
    save_network,
    save_record,
    unpack_words,
    write_memh,
)
from t2c_sim.record import LayerRecord
from t2c_sim.sparse.nm import compress, nm_mask


def _rec(rng, name="fc", n=2, m=4, c_in=10, c_out=3):
    k = -(-c_in // m) * m
    w = rng.integers(-128, 128, size=(c_out, k))
    w[:, c_in:] = 0
    w = np.where(nm_mask(w, n, m), w, 0)
    v, i = compress(w, n, m)
    return LayerRecord(name=name, op="linear", n=n, m=m, c_in=c_in, c_out=c_out, w_q=w, values=v,
                       indices=i, bias_eff=rng.integers(-1000, 1000, c_out),
                       M0=rng.integers(1, 2**31, c_out), sh=rng.integers(20, 40, c_out),
                       z_x=-3, z_y=5, lo=5, hi=127, mode="half_away",
                       x_q=rng.integers(-128, 128, size=(4, c_in)), meta={"scale_x": 0.02})


def test_roundtrip_preserves_every_field(tmp_path):
    rec = _rec(np.random.default_rng(0)).validate()
    save_record(rec, tmp_path / "fc")
    back = load_record(tmp_path / "fc.json")
    assert back.scalars() == rec.scalars()
    for k, v in rec.arrays().items():
        assert np.array_equal(getattr(back, k), v), k
    assert back.validate() is back


def test_tampered_or_missing_files_are_caught(tmp_path):
    rec = _rec(np.random.default_rng(1))
    npz, js = save_record(rec, tmp_path / "fc")
    other = _rec(np.random.default_rng(2))
    save_record(other, tmp_path / "other")
    (tmp_path / "other.npz").replace(npz)  # arrays of another record under this manifest
    with pytest.raises(RecordError, match="does not match its manifest"):
        load_record(tmp_path / "fc")
    js.write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_record(tmp_path / "fc")
    with pytest.raises(RecordError, match="not found"):
        load_record(tmp_path / "missing")
    js.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(RecordError, match="key 'format'"):
        load_record(tmp_path / "fc")


def test_validate_names_layer_and_field():
    rng = np.random.default_rng(3)
    rec = _rec(rng, name="blk.fc1")
    bad = rec.replace(w_q=rec.w_q.copy())
    bad.w_q[1, 0:4] = [1, 2, 3, 0]
    with pytest.raises(RecordError, match=r"layer blk.fc1 w_q: channel 1, group 0"):
        bad.validate()
    with pytest.raises(RecordError, match="decompress"):
        rec.replace(values=rec.values + 1).validate()
    with pytest.raises(RecordError, match="M0 must have shape"):
        rec.replace(M0=np.ones(7, dtype=np.int64)).validate()
    with pytest.raises(RecordError, match="clamp bounds"):
        rec.replace(lo=10, hi=5).validate()
    with pytest.raises(RecordError, match="x_q outside"):
        rec.replace(x_q=np.full((1, 10), 300)).validate()
    with pytest.raises(RecordError, match="integers"):
        LayerRecord(name="f", op="linear", w_q=np.ones((1, 1)) * 0.5)


def test_network_roundtrip(tmp_path):
    rng = np.random.default_rng(4)
    recs = [_rec(rng, name="a"), _rec(rng, name="b.c")]
    save_network(recs, tmp_path / "net")
    back = load_network(tmp_path / "net")
    assert [r.name for r in back] == ["a", "b.c"]
    assert np.array_equal(back[1].w_q, recs[1].w_q)


@pytest.mark.parametrize("bits,signed", [(4, True), (8, True), (8, False), (2, False), (32, True)])
def test_hex_pack_roundtrip(tmp_path, bits, signed):
    rng = np.random.default_rng(bits)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    f = rng.integers(lo, hi + 1, size=(17, 4))
    f[0] = [lo, hi, 0, lo]
    words = pack_words(f, bits, signed)
    assert np.array_equal(unpack_words(words, 4, bits, signed), f)
    p = write_memh(tmp_path / "m.hex", words, 4 * bits)
    assert read_memh(p) == words
    assert len(p.read_text().splitlines()[0]) == -(-4 * bits // 4)


def test_hex_lane_order_and_range_check():
    assert pack_words(np.array([[-1, 2]]), 4, True) == [0x2F]
    assert pack_words(np.array([[1, 0, 0]]), 8, False) == [0x000001]
    with pytest.raises(Exception, match="outside"):
        pack_words(np.array([[8]]), 4, True, name="act")


def test_hwconfig_and_sparsity_spec_errors():
    hw = HwConfig.from_dict({"rows": 2, "cols": 8, "n": 1, "m": 4})
    assert (hw.rows, hw.cols, hw.idx_bits) == (2, 8, 2)
    assert hw.tag != HwConfig().tag
    with pytest.raises(ConfigError, match=r"hw\.yaml, key 'colz'"):
        HwConfig.from_dict({"colz": 2}, file="hw.yaml")
    with pytest.raises(ConfigError, match="key 'rows'"):
        HwConfig.from_dict({"rows": 0}, file="hw.yaml")
    with pytest.raises(ConfigError, match="N <= M"):
        HwConfig(n=5, m=4)
    assert SparsitySpec.parse("2:4") == SparsitySpec(2, 4)
    assert SparsitySpec.parse("dense").dense
    with pytest.raises(ConfigError, match="2:4"):
        SparsitySpec.parse("2-4")
