"""Data movement in the fused network: the user's reshapes, permutes, transposes, ``unbind`` and
indexing, turned into RESHAPE and SLICE records (docs/numerics.md section 10).

The user writes data movement in many ways (``qkv.reshape(B, N, 3, H, d).permute(2, 0, 3, 1,
4)`` then ``q, k, v = qkv.unbind(0)``; ``(attn @ v).transpose(1, 2).reshape(B, N, C)``;
``x.flatten(2).transpose(1, 2)``; ``x[:, 0]``). Instead of one rule per idiom, the fuse step
runs the user's own ops on an *index map*: a torch tensor of the moved tensor's shape whose
entries are the flat offsets, into the producer's integer array, of the element that lands
there (:func:`base_index`, :func:`replay`). A consumer then gets records that realize the map
(:func:`plan`): an optional SLICE (the elements used are a range of one axis: ``q`` out of
``qkv``), then one RESHAPE (``shape``, ``perm``, ``out_shape``), found by factoring the map
into axes of constant stride; or nothing when the map is the identity. Maps that are not a
permutation of a sub-block (a broadcast, an element used twice, data crossing the batch axis)
are refused naming the node and its source line.

Token-wise formats (SPEC section 8) belong to the consumer's rows; :func:`producer_row_scales`
carries them back through the same maps to the rows of the producer, which requantizes each
of its rows with the scale of the consumer row its elements land in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from t2c_sim.config import FuseOptions, OpKind
from t2c_sim.errors import FuseError
from t2c_sim.fuse.formats import QFormat, TensorVal, record_formats
from t2c_sim.quant.ops import Role, classify, where
from t2c_sim.record import LayerRecord

__all__ = ["View", "base_index", "replay", "plan", "Step", "emit", "producer_row_scales"]

I64 = torch.int64
#: Roles whose integers pass unchanged (their index map is the input's).
_SAME = (Role.ALIAS, Role.ACT, Role.BN)


class _Fuser(Protocol):
    mods: Mapping[str, nn.Module]
    opts: FuseOptions
    env: dict[fx.Node, Any]

    def out_format(self, node: fx.Node) -> QFormat: ...
    def shape(self, node: fx.Node) -> tuple[int, ...]: ...
    def add(self, rec: LayerRecord, node: fx.Node, val: TensorVal) -> None: ...


@dataclass(frozen=True)
class View:
    """A moved integer tensor not yet materialized: ``idx`` (torch shape of the moved tensor, or
    a tuple of such for ``unbind``/``chunk``) holds flat offsets into the integer array of ``src``,
    whose shape (batch first) is ``shape``."""

    src: TensorVal
    idx: Any
    shape: tuple[int, ...]


def int_shape(val: TensorVal, torch_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of ``val``'s integer array given its torch shape (``nhwc``: ``[B, H, W, C]``)."""
    if val.layout == "nhwc":
        b, c, h, w = torch_shape
        return (b, h, w, c)
    return tuple(torch_shape)


def base_index(val: TensorVal, torch_shape: tuple[int, ...]) -> torch.Tensor:
    """Index map of an integer tensor itself, in torch layout: element ``e`` of the torch tensor
    lives at offset ``idx[e]`` of the integer array (channel-last for 4-D tensors, ``(h, w, c)``
    order for a flattened feature map)."""
    if val.layout == "nhwc":
        b, c, h, w = torch_shape
        return torch.arange(b * h * w * c, dtype=I64).reshape(b, h, w, c).permute(0, 3, 1, 2)
    if val.layout == "flat_chw":
        c, h, w = val.chw
        b = torch_shape[0]
        return torch.arange(b * h * w * c, dtype=I64).reshape(b, h, w, c).permute(
            0, 3, 1, 2).reshape(b, -1)
    return torch.arange(int(np.prod(torch_shape)), dtype=I64).reshape(torch_shape)


def replay(node: fx.Node, env: Mapping[fx.Node, Any], mods: Mapping[str, nn.Module],
           idx: Mapping[fx.Node, Any]) -> Any:
    """Run ``node``'s own torch op with index maps in place of its tensor inputs (``idx``) and the
    traced values (shapes, ints) for every other argument."""
    def sub(a: fx.Node) -> Any:
        return idx[a] if a in idx else env[a]

    args = fx.node.map_arg(node.args, sub)
    kwargs = fx.node.map_arg(node.kwargs, sub)
    try:
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return mods[node.target](*args, **kwargs)
    except (RuntimeError, TypeError, IndexError, ValueError) as e:
        raise FuseError(f"cannot follow the data movement ({' '.join(str(e).split())})",
                        **where(node)) from None


# ---- planning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One record of a plan: ``op`` (RESHAPE or SLICE) with its ``params`` and the shape (without
    the batch axis) it produces."""

    op: OpKind
    params: dict[str, Any]
    out: tuple[int, ...]


def _axis_factors(v: np.ndarray) -> list[tuple[int, int]] | None:
    """Split one consumer axis into factors of constant stride: ``v`` (offsets along the axis,
    ``v[0] = 0``) -> ``[(size, stride)]`` outermost first, or ``None``."""
    n = v.size
    if n == 1:
        return [(1, 0)]
    d = int(v[1])
    if d <= 0:
        return None
    r = 1
    while r < n and int(v[r]) == r * d:
        r += 1
    if r == n:
        return [(n, d)]
    if n % r:
        return None
    outer = v[::r]
    if not np.array_equal(v.reshape(n // r, r), outer[:, None] + d * np.arange(r)[None, :]):
        return None
    f = _axis_factors(outer - outer[0])
    return None if f is None else f + [(r, d)]


def _factors(i0: np.ndarray) -> tuple[list[tuple[int, int, int]], int] | None:
    """``i0`` (offsets of one batch element) as a strided view: ``([(axis, size, stride)], offset)``
    over fine axes (each consumer axis split into factors), verified on every element."""
    off = int(i0.reshape(-1)[0])
    fine: list[tuple[int, int, int]] = []
    for ax in range(i0.ndim):
        sel = tuple(slice(None) if a == ax else 0 for a in range(i0.ndim))
        f = _axis_factors(i0[sel] - off)
        if f is None:
            return None
        fine += [(ax, n, t) for n, t in f]
    want = np.full((1,), off, dtype=np.int64)
    for _, n, t in fine:
        want = (want[:, None] + t * np.arange(n, dtype=np.int64)[None, :]).reshape(-1)
    if not np.array_equal(want, i0.reshape(-1)):
        return None
    return fine, off


def _pure(shape: tuple[int, ...], i0: np.ndarray) -> list[Step] | None:
    """Records for a map that uses every element exactly once: one RESHAPE (or nothing)."""
    out = tuple(i0.shape)
    if np.array_equal(i0.reshape(-1), np.arange(i0.size)):
        return [] if out == shape else [Step(OpKind.RESHAPE, {"shape": list(out)}, out)]
    got = _factors(i0)
    if got is None or got[1] != 0:
        return None
    fine = [(k, n, t) for k, (_, n, t) in enumerate(got[0]) if n > 1]
    order = sorted(fine, key=lambda f: f[2])            # by stride: innermost first
    expect = 1
    for _, n, t in order:
        if t != expect:
            return None
        expect *= n
    if expect != i0.size:
        return None
    src = [f for f in reversed(order)]                  # source fine axes, outermost first
    pos = {k: i for i, (k, _, _) in enumerate(src)}
    perm = [pos[k] for k, _, _ in fine]                 # consumer fine axes, in consumer order
    g = [n for _, n, _ in src]
    params: dict[str, Any] = {}
    if tuple(g) != shape:
        params["shape"] = g
    if perm != list(range(len(perm))):
        params["perm"] = perm
    fine_out = tuple(n for _, n, _ in fine)
    if fine_out != out:
        params["out_shape"] = list(out)
    return [Step(OpKind.RESHAPE, params, out)]


def _slice_axis(shape: tuple[int, ...], used: np.ndarray) -> tuple[int, int, int] | None:
    """``(axis, start, stop)`` when the used offsets are exactly a range of one axis (``q`` out of
    ``qkv``, the class token out of the tokens)."""
    for ax in range(len(shape)):
        inner = int(np.prod(shape[ax + 1:], dtype=np.int64))
        pos = (used // inner) % shape[ax]
        a, b = int(pos.min()), int(pos.max()) + 1
        if used.size == (b - a) * (int(np.prod(shape, dtype=np.int64)) // shape[ax]):
            return ax, a, b
    return None


def _fine_slices(shape: tuple[int, ...], i0: np.ndarray) -> list[Step] | None:
    """The general selection: reshape to the fine source axes, then one SLICE per partial axis."""
    got = _factors(i0)
    if got is None:
        return None
    fine, off = got
    used = sorted(((n, t) for _, n, t in fine if n > 1), key=lambda f: f[1])
    size = int(np.prod(shape, dtype=np.int64))
    axes: list[list[int]] = []      # [size, count] innermost first; an unused gap has count 1
    expect = 1
    for n, t in used:
        if t < expect or t % expect:
            return None
        if t > expect:
            axes.append([t // expect, 1])
        axes.append([n, n])
        expect = t * n
    if size % expect:
        return None
    if size > expect:
        axes.append([size // expect, 1])
    rem, starts = off, []                                # the offset in mixed radix
    for m, _ in axes:
        starts.append(rem % m)
        rem //= m
    if rem:
        return None
    merged, starts = axes[::-1], starts[::-1]            # outermost first
    f_shape = tuple(m for m, _ in merged)
    steps: list[Step] = []
    if f_shape != shape:
        steps.append(Step(OpKind.RESHAPE, {"shape": list(f_shape)}, f_shape))
    cur = list(f_shape)
    for ax, ((m, cnt), st) in enumerate(zip(merged, starts)):
        if cnt == m:
            continue
        if st + cnt > m:
            return None
        cur[ax] = cnt
        steps.append(Step(OpKind.SLICE, {"axis": ax + 1, "start": st, "stop": st + cnt},
                          tuple(cur)))
    return steps


def plan(shape: tuple[int, ...], idx: torch.Tensor) -> list[Step] | None:
    """Records (without the batch axis) that turn an integer array of ``[B, *shape]`` into
    ``idx``'s shape following ``idx`` (flat offsets per element, batch included); ``None`` when
    no SLICE + RESHAPE chain does (data crossing the batch axis, duplicates, broadcasts).

    >>> i = torch.arange(2 * 3 * 4).reshape(2, 3, 4).transpose(1, 2)   # x.transpose(1, 2)
    >>> [(s.op.value, s.params) for s in plan((3, 4), i)]
    [('reshape', {'perm': [1, 0]})]
    """
    a = idx.detach().cpu().numpy().astype(np.int64)
    if a.ndim < 1:
        return None
    b = a.shape[0]
    size = int(np.prod(shape, dtype=np.int64))
    per = size * np.arange(b, dtype=np.int64).reshape((b,) + (1,) * (a.ndim - 1))
    i0 = a[0]
    if a.size == 0 or not np.array_equal(a - per, np.broadcast_to(i0, a.shape)):
        return None                                     # every batch element moves alike
    if i0.size == 0 or int(i0.min()) < 0 or int(i0.max()) >= size or \
            np.unique(i0).size != i0.size:
        return None
    if i0.size == size:
        return _pure(tuple(shape), i0)
    used = np.unique(i0)
    sl = _slice_axis(tuple(shape), used)
    if sl is not None:
        ax, start, stop = sl
        cur = list(shape)
        cur[ax] = stop - start
        steps = [Step(OpKind.SLICE, {"axis": ax + 1, "start": start, "stop": stop}, tuple(cur))]
    else:
        steps = _fine_slices(tuple(shape), i0)
        if steps is None:
            return None
        cur = list(steps[-1].out)
    rest = _pure(tuple(cur), np.searchsorted(used, i0))  # offsets in the sliced array
    return None if rest is None else steps + rest


def cost(steps: list[Step] | None) -> tuple[int, int]:
    """How much a plan moves: (records, axes a permutation moves); ``None`` is infinite."""
    if steps is None:
        return (1 << 30, 0)
    moved = sum(sum(i != p for i, p in enumerate(s.params.get("perm", []))) for s in steps)
    return (len(steps), moved)


def emit(fz: _Fuser, name: str, node: fx.Node, src: TensorVal, fmt: QFormat,
         steps: list[Step], torch_out: tuple[int, ...], layout: str) -> TensorVal:
    """Add the records of ``steps`` (named ``name``, ``name.1``, ...; the last one ``name``) and
    return the tensor they produce."""
    if not steps:
        return TensorVal(src.record, src.fmt_node, layout, src.chw)
    prev = src.record
    for i, s in enumerate(steps):
        rname = name if i == len(steps) - 1 else f"{name}.{i}"
        c = s.out[-1] if s.out else 1
        rec = LayerRecord(name=rname, op=s.op, inputs=(prev,), **record_formats(fmt, fmt, fz.opts),
                          c_in=c, c_out=c, lo=fmt.qmin, hi=fmt.qmax, params=s.params,
                          meta=dict(module=node.name, layout=layout, node=node.name,
                                    out_shape=list(s.out), torch_out_shape=list(torch_out)))
        fz.add(rec, node, TensorVal(rname, src.fmt_node, layout))
        prev = rname
    return TensorVal(prev, src.fmt_node, layout)


# ---- token-wise formats: consumer rows -> producer rows -------------------------------------------
def _consumer_maps(node: fx.Node, env: Mapping[fx.Node, Any], mods: Mapping[str, nn.Module],
                   quant: nn.Module, idx: Any, out: list[torch.Tensor]) -> None:
    for u in node.users:
        if u.op == "output":
            continue
        op = classify(u, mods)
        if op.role is Role.SHAPE:
            continue
        if op.role in _SAME:
            _consumer_maps(u, env, mods, quant, idx, out)
        elif op.role in (Role.MOVE, Role.FLATTEN):
            _consumer_maps(u, env, mods, quant, replay(u, env, mods, {node: idx}), out)
        elif u.op == "call_module":
            mod = mods[u.target]
            if any(q is quant for q in mod.modules()):
                out.append(idx)


def producer_row_scales(fz: _Fuser, node: fx.Node, rows_shape: tuple[int, ...], idx0: torch.Tensor,
                        fmt: QFormat, layer: str) -> QFormat:
    """``fmt`` (token-wise: one scale per row of its consumer's input) as one scale per row of the
    producer ``node``'s integer array ``rows_shape`` (its last axis holds the features).

    Every element of a producer row must land in consumer rows of one scale (a head split or
    merge keeps rows whole); rows no consumer reads (the tokens beside the class token) get the
    largest scale. ``idx0`` is the producer's own index map (:func:`base_index`).
    """
    if not fmt.tokenwise:
        return fmt
    quant = fz.mods.get(fmt.source)
    if quant is None:
        raise FuseError(f"token-wise quantizer '{fmt.source}' is not a module of the model",
                        layer=layer)
    own = fz.mods.get(node.target) if node.op == "call_module" else None
    if own is not None and getattr(own, "oq", None) is quant:    # its own output quantizer
        return fmt
    maps: list[torch.Tensor] = []
    _consumer_maps(node, fz.env, fz.mods, quant, idx0, maps)
    if not maps:
        raise FuseError(f"no consumer reads it through '{fmt.source}'", layer=layer)
    s = torch.as_tensor(quant.scale).detach().to(torch.float64)
    n = int(np.prod(rows_shape))
    per = np.full(n, np.nan)
    for m in maps:
        if m.dim() < 1 or s.numel() != int(np.prod(m.shape[:-1])):
            raise FuseError(f"token-wise scales of '{fmt.source}' ({s.numel()}) do not match its "
                            f"input rows {tuple(m.shape[:-1])}", layer=layer)
        e = s.reshape(tuple(m.shape[:-1]) + (1,)).expand(m.shape).reshape(-1).numpy()
        prev = per[m.reshape(-1).numpy()]
        if np.any(~np.isnan(prev) & (prev != e)):
            raise FuseError(f"its output is read token-wise through '{fmt.source}' in two ways "
                            "with different scales", layer=layer)
        per[m.reshape(-1).numpy()] = e
    rows = per.reshape(-1, rows_shape[-1])
    known = ~np.isnan(rows)
    has = known.any(axis=1)
    lo = np.where(known, rows, np.inf).min(axis=1)
    hi = np.where(known, rows, -np.inf).max(axis=1)
    bad = has & (lo != hi)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise FuseError(f"row {r} of its output lands in consumer rows of different token-wise "
                        f"scales ('{fmt.source}'); a producer requantizes whole rows", layer=layer)
    return replace(fmt, scale=np.where(has, lo, lo[has].max()))
