"""Executors: run a picklable function over items, yielding ``(item, result)`` as each ends.

- :class:`LocalExecutor`: ``workers == 1`` runs in this process (Ctrl-C stops at once);
  more workers use a ``spawn`` process pool (no state leaks between jobs, safe with torch).
- :class:`DaskExecutor`: a ``dask.distributed.Client`` connected to ``address`` (a running
  scheduler, e.g. ``tcp://host:8786``) or to a new ``LocalCluster`` of ``workers`` processes.

A result that is an exception instance means the executor itself failed for that item (worker
died, connection lost); job-level errors are results, not exceptions (see ``run_job``).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from t2c_sim.errors import ConfigError, SimulationError

log = logging.getLogger(__name__)


class LocalExecutor:
    """Process-pool (or in-process, ``workers == 1``) execution on this machine."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"-j must be >= 1, got {workers}", key="-j")
        self.workers = workers

    def describe(self) -> str:
        return f"local, {self.workers} worker(s)"

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]
                      ) -> Iterator[tuple[Any, Any]]:
        if self.workers == 1 or len(items) <= 1:
            for it in items:
                yield it, fn(it)
            return
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)), mp_context=ctx)
        try:
            pending: dict[Future, Any] = {pool.submit(fn, it): it for it in items}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    it = pending.pop(fut)
                    exc = fut.exception()
                    yield it, (exc if exc is not None else fut.result())
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Nothing to release (the pool lives only inside :meth:`map_unordered`)."""


class DaskExecutor:
    """Execution on a Dask distributed cluster (:class:`dask.distributed.Client`)."""

    def __init__(self, address: str | None = None, workers: int = 1) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise SimulationError("the dask executor needs dask[distributed]: "
                                  "pip install 'dask[distributed]'") from None
        self._cluster = None
        try:
            if address:
                self.client = Client(address, timeout="20s")
            else:
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                self.client = Client(self._cluster)
        except (OSError, TimeoutError) as e:
            raise SimulationError(f"cannot connect to the Dask scheduler {address!r}: {e}") from None
        self.address = address or self.client.scheduler.address

    def describe(self) -> str:
        n = len(self.client.scheduler_info().get("workers", {}))
        return f"dask at {self.address}, {n} worker(s)"

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]
                      ) -> Iterator[tuple[Any, Any]]:
        from dask.distributed import as_completed

        futs = {}
        for it in items:
            f = self.client.submit(fn, it, pure=False)
            futs[f.key] = (f, it)
        try:
            for f in as_completed([f for f, _ in futs.values()]):
                it = futs[f.key][1]
                if f.status == "error":
                    yield it, f.exception()
                else:
                    yield it, f.result()
        finally:
            for f, _ in futs.values():
                if not f.done():
                    f.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
