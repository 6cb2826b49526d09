"""Executors: run a picklable function over items, yielding ``(item, result)`` as each ends.

- :class:`LocalExecutor`: ``workers == 1`` runs in this process (Ctrl-C stops at once);
  more workers use a process pool, forked when that is safe (Linux, this process has one
  thread and has not imported torch: the workers skip a new interpreter's start, 0.5-0.9 s),
  else spawned (nothing of the caller's state in the workers, safe with torch and threads).
  :meth:`LocalExecutor.start`, called by a command before it loads its work (a recipe
  imports torch; a run locks its results folder), starts them while it loads.
  Pool workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; only the
  parent reacts), on SIGTERM (how the parent stops them, or a ``kill`` of the whole group)
  kill the simulator and build process groups they started and exit, and exit on their own
  when the parent dies (a crash leaves no orphans).
- :class:`DaskExecutor`: a ``dask.distributed.Client`` connected to ``address`` (a running
  scheduler, e.g. ``tcp://host:8786``) or to a new ``LocalCluster`` of ``workers`` processes.

A result that is an exception instance means the executor itself failed for that item (worker
died, connection lost); job-level errors are results, not exceptions (see ``run_job``).

On ``KeyboardInterrupt`` both executors stop the work still running, first yield the items that
had already finished but were not yet collected (so the caller can store them), then re-raise.

:func:`map_via_files` sends each item to a local pool as a small :class:`TaskFile` (the item
waits in a pickle file): what a pool's feeder thread writes into its pipe stays far below the
pipe's buffer, so a worker that is gone (stopped by Ctrl-C/SIGTERM, failed to start) can never
leave that thread blocked in a write (CPython 3.11 joins it at exit: the command would never
end). Callers with large items use it (:mod:`t2c_sim.regress.parallel`'s units,
``t2c-sim mutate``'s mutant tasks).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from t2c_sim.errors import ConfigError, ExecutorError

log = logging.getLogger(__name__)

_PARENT_POLL_S = 0.5


def _worker_init(parent_pid: int, preload: tuple[str, ...] = ()) -> None:
    """Pool worker start-up: ignore SIGINT, clean up on SIGTERM, exit when ``parent_pid`` is
    gone; then import the ``preload`` modules (what the first task would import anyway)."""
    # imported here, in the worker only: the simulator tools pull in numpy, which the
    # command line does not need for --help
    from t2c_sim.cosim.sim.tools import kill_live_groups

    def on_sigterm(signum: int, frame: Any) -> None:
        # kill every simulator/build process group this worker started, then exit at once
        # (the job's work is lost; the parent stored every finished result)
        kill_live_groups()
        os._exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent_pid, kill_live_groups), daemon=True,
                     name="t2c-parent-watch").start()
    for name in preload:
        importlib.import_module(name)


def _ready() -> None:
    """The task :meth:`LocalExecutor.start` sends: makes the pool spawn a worker now."""


def _watch_parent(parent_pid: int, kill_groups: Callable[[], Any]) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    kill_groups()
    os._exit(1)  # the parent crashed: nobody will collect this worker's result


def _finished_now(pending: dict[Future, Any]) -> list[tuple[Any, Any]]:
    """Remove and return ``(item, result)`` of every pending future that completed normally."""
    out = []
    for fut in [f for f in pending if f.done() and not f.cancelled()]:
        it = pending.pop(fut)
        if fut.exception() is None:
            out.append((it, fut.result()))
    return out


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel queued work and end the workers (their jobs are lost)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API before 3.14
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=2.0)
        if p.is_alive():
            p.kill()
            p.join(timeout=2.0)
    if manager is not None:
        # let the pool's thread see its workers gone and close its wake-up pipe: CPython 3.11's
        # exit hook writes to that pipe without a lock, and a thread still closing it makes the
        # exit print "OSError: [Errno 9] Bad file descriptor" after our one-line message
        manager.join(timeout=5.0)


def fork_is_safe() -> bool:
    """Whether forking this process gives workers a sound copy: Linux (other systems' libraries
    are not fork-safe), one thread (a lock held by another thread stays locked in the child
    forever) and no torch imported (its thread pools do not survive a fork)."""
    return (sys.platform == "linux" and threading.active_count() == 1
            and "torch" not in sys.modules)


def _start_method() -> str:
    """``fork`` when :func:`fork_is_safe` (a worker starts in ~0.05 s instead of a new
    interpreter's ~0.5-0.9 s of imports), else ``spawn``."""
    if not fork_is_safe():
        return "spawn"
    sys.stdout.flush()  # a forked child would write again what these buffers hold unwritten
    sys.stderr.flush()
    return "fork"


class LocalExecutor:
    """Process-pool (or in-process, ``workers == 1``) execution on this machine.

    With ``keep=True`` the pool outlives one :meth:`map_unordered` call (its workers are
    started once for many calls, e.g. the waves of a chained run) until :meth:`close`; a call
    that is interrupted or left early still stops it at once.
    """

    def __init__(self, workers: int = 1, keep: bool = False) -> None:
        if workers < 1:
            raise ConfigError(f"-j must be >= 1, got {workers}", key="-j")
        self.workers = workers
        self.keep = keep
        self._pool: ProcessPoolExecutor | None = None
        self._early: ProcessPoolExecutor | None = None

    def start(self, n: int, preload: Sequence[str] = ()) -> None:
        """Start ``min(workers, n)`` pool workers now, each importing ``preload``, so that their
        start-up (the job's imports, ~0.2 s, and a new interpreter's when spawned) runs while
        the caller is still loading and checking its work; the next :meth:`map_unordered` uses
        them (a map of at most one item, or :meth:`close`, stops them). Nothing with one worker.

        The workers are forked when :func:`fork_is_safe` (a command calls this first thing:
        the fork copies little more than the command line's modules and holds none of its
        later locks or files), ``preload`` imported here first so that they inherit it; else
        spawned, each importing ``preload`` itself."""
        n = self.workers if self.keep else min(self.workers, n)
        if n <= 1 or self._pool is not None or self._early is not None:
            return
        if fork_is_safe():
            # import here first: forked workers inherit the modules (the caller needs them
            # anyway), instead of importing them in each worker while this process loads its
            # work (three processes on two cores: the first job started ~0.13 s later than
            # with -j 1); an import that brings torch or a thread makes the workers spawned
            for name in preload:
                importlib.import_module(name)
        pool = self._new_pool(n, tuple(preload), _start_method())
        for _ in range(n):  # the first submit forks them all; a spawn pool starts one per task
            pool.submit(_ready)
        self._early = pool

    def _new_pool(self, n: int, preload: tuple[str, ...] = (), method: str = "spawn"
                  ) -> ProcessPoolExecutor:
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # a spawned worker importing the caller's script, which starts a pool again
            raise ConfigError("a worker process is re-running the script that started it: put "
                              "the calls of the script under `if __name__ == \"__main__\":` "
                              "(worker processes import it), or use one process (jobs=1)",
                              key="-j")
        ctx = multiprocessing.get_context(method)
        return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init,
                                   initargs=(os.getpid(), preload))

    def _get_pool(self, n: int) -> ProcessPoolExecutor:
        if self._pool is not None:
            return self._pool
        pool, self._early = self._early, None
        if pool is None:
            pool = self._new_pool(self.workers if self.keep else n, method=_start_method())
        if self.keep:
            self._pool = pool
        return pool

    def describe(self) -> str:
        return f"local, {self.workers} worker(s)"

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]
                      ) -> Iterator[tuple[Any, Any]]:
        if self.workers == 1 or len(items) <= 1:
            self._stop_early()
            for it in items:
                yield it, fn(it)
            return
        pool = self._get_pool(min(self.workers, len(items)))
        pending: dict[Future, Any] = {}
        stopped = False
        try:
            pending = {pool.submit(fn, it): it for it in items}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    it = pending.pop(fut)
                    exc = fut.exception()
                    yield it, (exc if exc is not None else fut.result())
        except KeyboardInterrupt:
            finished = _finished_now(pending)
            _terminate(pool)
            self._pool = None
            stopped = True
            log.info("interrupted: %d finished job(s) collected, %d stopped", len(finished),
                     len(pending))
            yield from finished
            raise
        finally:
            if pending and not stopped:  # the consumer stopped early (an error on its side)
                _terminate(pool)
                self._pool = None
            elif not stopped and not self.keep:
                pool.shutdown(wait=True)

    def _stop_early(self) -> None:
        """Stop workers that :meth:`start` spawned and no map used (they hold no work)."""
        if self._early is not None:
            pool, self._early = self._early, None
            _terminate(pool)

    def close(self) -> None:
        """Shut the kept pool down, and stop the workers of an unused :meth:`start`."""
        self._stop_early()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True)


@dataclass(frozen=True)
class TaskFile:
    """An item waiting in a pickle file: what travels through a local pool's pipe stays small
    (CPython 3.11's pool can deadlock feeding a large task to a worker that died: its feeder
    thread blocks in the pipe write, and the interpreter joins that thread at exit)."""

    path: str

    def load(self) -> Any:
        with open(self.path, "rb") as f:
            return pickle.load(f)


def _run_loaded(fn: Callable[[Any], Any], item: Any) -> Any:
    """Worker side of :func:`map_via_files`: ``fn`` of the item (read from its file)."""
    return fn(item.load() if isinstance(item, TaskFile) else item)


def map_via_files(ex: Any, fn: Callable[[Any], Any], items: Sequence[Any], folder: str | Path,
                  ) -> Iterator[tuple[Any, Any]]:
    """``ex.map_unordered(fn, items)``; on a :class:`LocalExecutor` that uses a pool, each item
    travels as a :class:`TaskFile` in a temporary folder under ``folder`` (removed at the end,
    also when interrupted). Yields ``(item, result)`` with the caller's own items; other
    executors (Dask: workers may not share this file system) get the items themselves."""
    if not isinstance(ex, LocalExecutor) or ex.workers == 1 or len(items) <= 1:
        yield from ex.map_unordered(fn, items)
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".t2c-tasks-", dir=folder))
    inner = None
    try:
        back: dict[str, Any] = {}
        for i, it in enumerate(items):
            path = tmp / f"task{i}.pkl"
            path.write_bytes(pickle.dumps(it, protocol=pickle.HIGHEST_PROTOCOL))
            back[str(path)] = it
        inner = ex.map_unordered(partial(_run_loaded, fn), [TaskFile(p) for p in back])
        for tf, res in inner:
            Path(tf.path).unlink(missing_ok=True)
            yield back[tf.path], res
    finally:
        if inner is not None:
            inner.close()
        shutil.rmtree(tmp, ignore_errors=True)


class DaskExecutor:
    """Execution on a Dask distributed cluster (:class:`dask.distributed.Client`).

    Args:
        address: scheduler address (``tcp://host:port``); ``None`` starts a ``LocalCluster``.
        workers: worker processes of that ``LocalCluster``.
        connect_timeout_s: how long to wait for the scheduler before giving up.

    Raises:
        ConfigError: ``address`` is malformed (names ``--scheduler``).
        ExecutorError: dask is not installed, or the scheduler does not answer in time.
    """

    def __init__(self, address: str | None = None, workers: int = 1,
                 connect_timeout_s: float = 10.0) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("the dask executor needs dask[distributed]: "
                                "pip install 'dask[distributed]'") from None
        if workers < 1:
            raise ConfigError(f"-j must be >= 1, got {workers}", key="-j")
        self._cluster = None
        try:
            if address:
                self.client = Client(address, timeout=f"{connect_timeout_s}s")
            else:
                self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                             processes=True, dashboard_address=None)
                self.client = Client(self._cluster)
        except (OSError, TimeoutError) as e:
            msg = " ".join(str(e).split()) or type(e).__name__
            raise ExecutorError(f"cannot connect to the Dask scheduler {address!r}: {msg}") \
                from None
        except (ValueError, TypeError) as e:
            msg = " ".join(str(e).split()) or type(e).__name__
            raise ConfigError(f"not a Dask scheduler address {address!r} (expected "
                              f"tcp://HOST:PORT): {msg}", key="--scheduler") from None
        self.address = address or self.client.scheduler.address

    def describe(self) -> str:
        n = len(self.client.scheduler_info().get("workers", {}))
        return f"dask at {self.address}, {n} worker(s)"

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]
                      ) -> Iterator[tuple[Any, Any]]:
        from dask.distributed import as_completed

        futs: dict[str, tuple[Any, Any]] = {}
        collected: set[str] = set()
        try:
            for it in items:
                f = self.client.submit(fn, it, pure=False)
                futs[f.key] = (f, it)
            for f in as_completed([f for f, _ in futs.values()]):
                it = futs[f.key][1]
                collected.add(f.key)
                if f.status == "error":
                    yield it, f.exception()
                else:
                    yield it, f.result()
        except KeyboardInterrupt:
            late = [(f, it) for k, (f, it) in futs.items()
                    if k not in collected and f.status == "finished"]
            self._cancel(futs, collected)
            for f, it in late:
                collected.add(f.key)
                try:
                    res = f.result(timeout=5)
                except Exception as e:  # noqa: BLE001 - the job stays unfinished, reruns later
                    log.info("interrupted: result of %s not fetched: %s", f.key, e)
                    continue
                yield it, res
            raise
        finally:
            self._cancel(futs, collected)

    @staticmethod
    def _cancel(futs: dict[str, tuple[Any, Any]], collected: set[str]) -> None:
        left = [f for k, (f, _) in futs.items() if k not in collected and not f.done()]
        for f in left:
            f.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
