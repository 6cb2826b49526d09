"""Pruning schedules: when masks are updated and how far along the ramp each update is.

Step counting (used by every torch pruner in :mod:`t2c_sim.sparse`): ``step`` is the number of
*training* forwards completed before the current one (0 for the first training forward).
Evaluation forwards do not count. A mask update scheduled for step ``t`` happens at the
beginning of training forward number ``t`` and that forward already uses the new mask.

:class:`PruneSchedule` follows QSPARSE's ``prune(start, interval, repetition)``: updates at
``start + interval * k`` for ``k = 1..repetition``; after update ``k`` the pruned fraction of the
target is the cubic ramp ``p_k = 1 - (1 - k / repetition)^3`` (Zhu & Gupta 2017), so the
target is reached exactly at the last update ``end = start + interval * repetition``.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2c_sim.errors import ConfigError

__all__ = ["PruneSchedule", "cubic_ramp", "ONESHOT"]


def cubic_ramp(k: int, repetition: int) -> float:
    """Progress after ``k`` of ``repetition`` updates: ``1 - (1 - k/repetition)^3`` in [0, 1].

    >>> [round(cubic_ramp(k, 4), 4) for k in range(5)]
    [0.0, 0.5781, 0.875, 0.9844, 1.0]
    """
    if repetition < 1:
        raise ConfigError(f"repetition must be >= 1, got {repetition}", key="repetition")
    k = min(max(int(k), 0), repetition)
    return 1.0 - (1.0 - k / repetition) ** 3


@dataclass(frozen=True)
class PruneSchedule:
    """Updates at ``start + interval * k``, ``k = 1..repetition``; cubic progress.

    Attributes:
        start: steps before the ramp; the first update is at ``start + interval``
            (``start = -interval`` prunes at the very first training forward).
        interval: training forwards between updates (>= 1).
        repetition: number of updates (>= 1).
    """

    start: int = 1000
    interval: int = 1000
    repetition: int = 4

    def __post_init__(self) -> None:
        for key in ("start", "interval", "repetition"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"must be an integer, got {v!r}", key=key)
        if self.interval < 1:
            raise ConfigError(f"must be >= 1, got {self.interval}", key="interval")
        if self.repetition < 1:
            raise ConfigError(f"must be >= 1, got {self.repetition}", key="repetition")
        if self.start + self.interval < 0:
            raise ConfigError(f"first update start + interval = {self.start + self.interval} "
                              f"is negative", key="start")

    @property
    def update_steps(self) -> list[int]:
        """Steps at which masks are recomputed."""
        return [self.start + self.interval * (k + 1) for k in range(self.repetition)]

    @property
    def end(self) -> int:
        """Step of the last update (the target is reached from here on)."""
        return self.start + self.interval * self.repetition

    def updates_done(self, step: int) -> int:
        """Number of updates scheduled at or before ``step``."""
        if step < self.start + self.interval:
            return 0
        return min(self.repetition, (step - self.start) // self.interval)

    def is_update(self, step: int) -> bool:
        """True if a mask update is scheduled at ``step``."""
        d = step - self.start
        return d > 0 and d % self.interval == 0 and d // self.interval <= self.repetition

    def progress(self, step: int) -> float:
        """Cubic progress ``1 - (1 - k/repetition)^3`` with ``k = updates_done(step)``."""
        return cubic_ramp(self.updates_done(step), self.repetition)


#: Prune to the target at the first training forward (step 0), once.
ONESHOT = PruneSchedule(start=-1, interval=1, repetition=1)
