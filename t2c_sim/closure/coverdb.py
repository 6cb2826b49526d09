"""Functional coverage data: hit counts per coverpoint and bin, merged as plain JSON.

A :class:`Coverage` is what a :class:`~t2c_sim.closure.funcov.CoverModel` fills: counts per
coverpoint and bin, the unreachable bins with their reasons, and the model key (the array
configuration) that says which coverages may merge. :meth:`Coverage.merge` adds counts, so
it is associative and commutative (regression jobs merge in any order); :func:`merge_all`
merges a regression's coverages per key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from t2c_sim.errors import ConfigError
from t2c_sim.files import atomic_write_text
from t2c_sim.readers import read_json

__all__ = ["BACKPRESSURE_BINS", "Coverage", "merge_all"]

BACKPRESSURE_BINS = ("none", "sparse", "bursty", "stalled")


@dataclass
class Coverage:
    """Hit counts per coverpoint and bin (JSON), with the unreachable bins and their reasons."""

    key: str
    counts: dict[str, dict[str, int]]
    unreachable: dict[str, str]

    def add(self, hits: Mapping[str, Iterable[str]]) -> Coverage:
        """Count one sample's hits (each bin at most once per sample)."""
        for p, bins in hits.items():
            if p not in self.counts:
                raise ConfigError(f"coverpoint {p!r} is not in the model", key=p)
            for b in bins:
                if b not in self.counts[p]:
                    raise ConfigError(f"bin {b!r} is not a bin of coverpoint {p!r}", key=p)
                self.counts[p][b] += 1
        return self

    def sample_backpressure(self, pattern: str) -> Coverage:
        """Record one back-pressure pattern seen on a stream DUT (one of BACKPRESSURE_BINS)."""
        return self.add({"backpressure": {pattern}})

    def merge(self, other: Coverage) -> Coverage:
        """A new coverage with the counts of both (same model key)."""
        if other.key != self.key:
            raise ConfigError(f"cannot merge coverage of model {other.key} into {self.key}")
        out = Coverage(self.key, {p: dict(b) for p, b in self.counts.items()},
                       dict(self.unreachable))
        for p, bins in other.counts.items():
            for b, n in bins.items():
                out.counts[p][b] += n
        return out

    def holes(self) -> list[tuple[str, str]]:
        """Reachable bins never hit, as ``(coverpoint, bin)`` in model order."""
        return [(p, b) for p, bins in self.counts.items() for b, n in bins.items()
                if n == 0 and f"{p}/{b}" not in self.unreachable]

    def percent(self) -> float:
        tot = [(p, b) for p, bins in self.counts.items() for b in bins
               if f"{p}/{b}" not in self.unreachable]
        return 100.0 * (len(tot) - len(self.holes())) / len(tot) if tot else 100.0

    def report(self) -> str:
        """Text: per coverpoint hit/reachable bins, then the holes, then the unreachable bins."""
        lines = [f"functional coverage {self.percent():.1f}%"]
        for p, bins in self.counts.items():
            reach = [b for b in bins if f"{p}/{b}" not in self.unreachable]
            hit = [b for b in reach if bins[b]]
            lines.append(f"  {p:24s} {len(hit):4d}/{len(reach):<4d}")
        holes = self.holes()
        lines.append(f"holes ({len(holes)}):" + "".join(f"\n  {p}/{b}" for p, b in holes))
        if self.unreachable:
            lines.append("unreachable:" + "".join(f"\n  {k}: {v}"
                                                  for k, v in sorted(self.unreachable.items())))
        return "\n".join(lines)

    def hit_reachable(self) -> tuple[int, int]:
        """``(bins hit, reachable bins)`` over every coverpoint and cross."""
        tot = sum(1 for p, bins in self.counts.items() for b in bins
                  if f"{p}/{b}" not in self.unreachable)
        return tot - len(self.holes()), tot

    def summary(self, max_holes: int = 200) -> dict:
        """What the reports show: per coverpoint ``[hit, reachable]``, the holes, the totals."""
        hit, tot = self.hit_reachable()
        pts = {}
        for p, bins in self.counts.items():
            reach = [b for b in bins if f"{p}/{b}" not in self.unreachable]
            pts[p] = [sum(1 for b in reach if bins[b]), len(reach)]
        holes = [f"{p}/{b}" for p, b in self.holes()]
        return {"percent": round(self.percent(), 2), "hit": hit, "reachable": tot,
                "points": pts, "holes": holes[:max_holes], "holes_total": len(holes),
                "unreachable": len(self.unreachable)}

    def to_dict(self) -> dict:
        return {"key": self.key, "counts": self.counts, "unreachable": self.unreachable}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: object, file: str | None = None) -> Coverage:
        """Read :meth:`to_dict` back; anything else is a :class:`ConfigError` naming ``file``."""
        try:
            cov = cls(str(d["key"]), {str(p): {str(b): int(n) for b, n in bins.items()}
                                      for p, bins in d["counts"].items()},
                      {str(k): str(v) for k, v in d["unreachable"].items()})
        except (ValueError, KeyError, AttributeError, TypeError) as e:
            raise ConfigError(f"not a coverage file ({type(e).__name__}: {e})",
                              file=file) from None
        if any(n < 0 for bins in cov.counts.values() for n in bins.values()):
            raise ConfigError("not a coverage file (a negative count)", file=file)
        return cov

    @classmethod
    def from_json(cls, text: str, file: str | None = None) -> Coverage:
        try:
            d = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"not a coverage file ({e})", file=file) from None
        return cls.from_dict(d, file)

    @classmethod
    def load(cls, path: str | Path) -> Coverage:
        return cls.from_dict(read_json(path, "coverage file"), str(path))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())


def merge_all(covs: Iterable[Coverage]) -> dict[str, Coverage]:
    """Coverages merged per model key (one per array configuration), in first-seen order."""
    out: dict[str, Coverage] = {}
    for c in covs:
        out[c.key] = out[c.key].merge(c) if c.key in out else c
    return out
