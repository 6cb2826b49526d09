"""Limits on every size that drives memory or time, checked where the size enters (docs/cli.md,
"Limits"). Each check raises :class:`~t2c_sim.errors.ConfigError` (or
:class:`~t2c_sim.errors.RecordError` for a record) naming the key and stating the limit, so a
hostile or mistaken input is refused in milliseconds instead of running for an hour or
exhausting the memory.

The limits and why:

- input files: YAML (recipes, suites, hardware) and SCALE-Sim CSVs at most
  :data:`MAX_TEXT_BYTES`; JSON manifests and results at most :data:`MAX_JSON_BYTES`; a YAML
  document expands (aliases counted at every use) to at most :data:`MAX_YAML_NODES` nodes;
- a simulated array: at most :data:`MAX_SIM_PES` processing elements and
  :data:`MAX_SIM_DEPTH` words per scratchpad. Measured on the 2-core development machine
  (Icarus 11 / Verilator 5.048): 32x32 builds in 2.3 s / 70 MB (Icarus) and 213 s / 0.6 GB
  (Verilator, 16x16: 21 s / 0.4 GB); 64x64 in 8.5 s / 240 MB (Icarus), 128x128 in 124 s /
  0.9 GB (Icarus), and a 256x256 array would take GBs and tens of minutes. ``estimate``
  builds nothing: any array up to :data:`MAX_HW_DIM` rows/columns and :data:`MAX_HW_DEPTH`
  words per scratchpad;
- a layer: every shape number at most :data:`MAX_DIM`, the reduction length ``K`` at most
  :data:`MAX_K`, and at most :data:`MAX_PASSES` passes of the PE array (``groups *
  ceil(P / rows) * ceil(C_out/groups / cols)``, ``rows`` at most ``out_depth``): the tile
  plan, the estimate and the co-simulation are linear in it (a tile takes ~5 us to plan and
  a plan has at most twice as many tiles as passes, tests/test_hostile.py);
- a record file: at most :data:`MAX_RECORD_ELEMENTS` integers over all of its arrays (checked
  from the ``.npy`` headers before anything is decompressed: an ``.npz`` is a zip file and a
  few kilobytes of zeros can expand to gigabytes);
- a random suite entry: the product of its size parameters (:data:`RANDOM_SIZE_PARAMS`, a
  bound on its MACs and array sizes) at most :data:`MAX_RANDOM_WORK`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from t2c_sim.errors import ConfigError

__all__ = ["MAX_TEXT_BYTES", "MAX_JSON_BYTES", "MAX_YAML_NODES", "MAX_SIM_PES", "MAX_SIM_DEPTH",
           "MAX_HW_DIM", "MAX_HW_DEPTH", "MAX_DIM", "MAX_K", "MAX_PASSES", "MAX_RECORD_ELEMENTS",
           "MAX_RANDOM_WORK", "RANDOM_SIZE_PARAMS", "SHAPE_FIELDS", "check_simulable",
           "check_hw_bounds", "check_shape", "check_dim", "human_bytes"]

MAX_TEXT_BYTES = 1 << 20          # 1 MiB: a YAML or CSV input file
MAX_JSON_BYTES = 64 << 20         # 64 MiB: a record manifest, network index, bundle, results
MAX_YAML_NODES = 100_000          # nodes of a YAML document with every alias expanded
MAX_SIM_PES = 1024                # rows * cols of an array that is built and simulated
MAX_SIM_DEPTH = 1 << 16           # words per scratchpad of a simulated array
MAX_HW_DIM = 1 << 16              # rows or cols of any array (estimate)
MAX_HW_DEPTH = 1 << 24            # words per scratchpad of any array (estimate)
MAX_DIM = 1 << 24                 # any shape number of a layer (channels, sizes, rows P)
MAX_K = 1 << 20                   # reduction length K of one dot product
MAX_PASSES = 1 << 20              # passes of the PE array over one layer
MAX_RECORD_ELEMENTS = 1 << 26     # integers over all arrays of one record file (512 MiB int64)
MAX_RANDOM_WORK = 1 << 26         # product of a random suite entry's size parameters
#: The size parameters of the random generators (t2c_sim.workloads.gen) whose product bounds
#: the memory and time of generating and running one random entry.
RANDOM_SIZE_PARAMS = ("batch", "rows", "h", "w", "kh", "kw", "c_in", "c_out", "channels",
                      "classes")

#: Integer shape fields of a layer record (``stride``, ``padding``, ``dilation`` are pairs).
SHAPE_FIELDS = ("c_in", "c_out", "kh", "kw", "groups", "h", "w")
_DEPTHS = ("act_depth", "w_depth", "out_depth", "ch_depth")


def human_bytes(n: int) -> str:
    """``1048576`` -> ``"1 MiB"`` (binary units, at most one decimal)."""
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
        v /= 1024
    return f"{n} B"  # pragma: no cover


def _pow2(n: int) -> str:
    e = n.bit_length() - 1
    return f"{n} (2^{e})" if n == 1 << e else str(n)


def check_hw_bounds(hw: Mapping[str, Any]) -> None:
    """Any array (``estimate``): rows/cols <= :data:`MAX_HW_DIM`, depths <= :data:`MAX_HW_DEPTH`.

    ``hw`` is a mapping of :class:`~t2c_sim.config.HwConfig` fields (ints already checked).
    """
    for k in ("rows", "cols"):
        v = hw.get(k)
        if isinstance(v, int) and v > MAX_HW_DIM:
            raise ConfigError(f"{v} is larger than the largest array dimension t2c-sim models, "
                              f"{_pow2(MAX_HW_DIM)}", key=k)
    for k in _DEPTHS:
        v = hw.get(k)
        if isinstance(v, int) and v > MAX_HW_DEPTH:
            raise ConfigError(f"{v} words is deeper than the largest scratchpad t2c-sim models, "
                              f"{_pow2(MAX_HW_DEPTH)} words", key=k)


def check_simulable(hw: Any) -> None:
    """An array that is built as RTL and simulated: rows * cols <= :data:`MAX_SIM_PES`, every
    scratchpad <= :data:`MAX_SIM_DEPTH` words (``hw``: a HwConfig or a mapping of its fields).

    Raises:
        ConfigError: key ``rows``/``cols`` or the depth, with the limit and why.
    """
    d = hw if isinstance(hw, Mapping) else hw.to_dict()
    rows, cols = int(d["rows"]), int(d["cols"])
    if rows * cols > MAX_SIM_PES:
        raise ConfigError(
            f"a {rows}x{cols} array ({rows * cols} PEs) is larger than the largest array t2c-sim "
            f"builds and simulates, {MAX_SIM_PES} PEs (e.g. 32x32): the RTL build grows with "
            "the PE count (Icarus 128x128: 2 min, 0.9 GB; Verilator needs far more); "
            "`t2c-sim estimate` takes any size", key="rows" if rows >= cols else "cols")
    for k in _DEPTHS:
        v = int(d[k])
        if v > MAX_SIM_DEPTH:
            raise ConfigError(f"{v} words is deeper than the largest scratchpad t2c-sim "
                              f"simulates, {_pow2(MAX_SIM_DEPTH)} words (the simulator holds "
                              "every word in memory)", key=k)


def check_dim(value: Any, key: str, *, minimum: int = 1, maximum: int = MAX_DIM) -> int:
    """``value`` as a shape number: an int (not bool, not float) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            raise ConfigError(f"must be an integer, got {value!r} (write it without a "
                              "decimal point or exponent)", key=key)
        raise ConfigError(f"must be an integer, got {value!r}", key=key)
    if value < minimum:
        raise ConfigError(f"must be >= {minimum}, got {value}", key=key)
    if value > maximum:
        raise ConfigError(f"{value} is larger than the limit {_pow2(maximum)}", key=key)
    return value


def check_shape(*, name: str, p: int, c_out: int, k: int, groups: int, rows: int,
                cols: int, array: str | None = None) -> None:
    """A MAC layer's GEMM (``p`` rows, ``c_out`` channels in ``groups``, reduction ``k``) on a
    ``rows x cols`` array: every number <= :data:`MAX_DIM`, ``k`` <= :data:`MAX_K`, passes
    <= :data:`MAX_PASSES`. ``array`` names the array in the message (default ``rows x cols``).

    Raises:
        ConfigError: naming the layer and the limit.
    """
    for what, v in (("P (GEMM rows)", p), ("C_out", c_out)):
        if v > MAX_DIM:
            raise ConfigError(f"{what} = {v} is larger than the limit {_pow2(MAX_DIM)}",
                              layer=name)
    if k > MAX_K:
        raise ConfigError(f"the reduction length K = {k} is larger than the limit "
                          f"{_pow2(MAX_K)}", layer=name)
    cpg = max(1, c_out // max(1, groups))
    passes = max(1, groups) * -(-p // rows) * -(-cpg // cols)
    if passes > MAX_PASSES:
        raise ConfigError(f"{p} x {c_out} outputs need {passes} passes of the "
                          f"{array or f'{rows}x{cols}'} PE array, more than the limit "
                          f"{_pow2(MAX_PASSES)} (a larger array needs fewer)", layer=name)
