"""Regression suites: YAML -> a flat, ordered list of :class:`Job` (plan before execution).

A suite file::

    name: smoke
    sims: [verilator]            # verilator, icarus, both, none (golden + estimate only)
    seeds: [0, 1]
    timeout_s: 300               # per simulator run
    hw:                          # files (relative to the suite file or the working folder)
      - ../hw/default.yaml       # or inline mappings of HwConfig fields
      - {rows: 2, cols: 8}
    jobs:
      - recipe: models/mlp.yaml
      - random: linear           # linear | conv | network (t2c_sim.workloads.gen generators)
        name: fc_2of4
        params: {c_in: 32, c_out: 12, rows: 6}
        sims: [icarus]           # per-job override of sims / seeds / hw
      - testbench: requant       # a unit testbench of the design (t2c_sim.regress.dut)
        params: {ACC_BITS: 24, MULT_BITS: 16, SHIFT_BITS: 6, Y_BITS: 8}   # or a list; default
        payload: {n_random: 3000}                                        # the bench's sets
      - onnx: models/rescnn.onnx # a quantized ONNX model (t2c_sim.regress.onnx_job)
        profile: ort_fp32        # ort_fp32 | half_even | ...; also nm, input, parity: ort
    dut: ../my_gemm/dut.yaml                # optional: the DUT file (default our accelerator)
    dut_params: {ACC_DEPTH: 8}              # optional: overrides of its Verilog parameters
    backpressure: [[0, 0], [30, 40]]        # optional: stream stall percent (input, output)

Jobs = entries x hardware configs x back-pressure settings x simulators x seeds (``dut``,
``dut_params`` and ``backpressure`` may also be set per job). Each job has a stable id: a hash
of everything that determines its result (kind, parameters, recipe file contents, hardware
parameters, simulator, seed, and the DUT file's contents, overrides and back-pressure when
they are set; for an onnx entry the model file's and input file's sha256 and its options), so
a rerun recognises finished jobs and a changed model or input runs again. Random layers
default to the hardware's ``n:m`` unless ``params`` sets ``n``/``m``. Without ``seeds`` (suite
or job) a recipe job uses the recipe's ``seed:``, a random or onnx entry seed 0 (an onnx entry
with ``input:`` always runs once, seed 0), a testbench its bench's seed. A ``testbench``
entry (its parameter sets x simulators x seeds) has no array and needs a simulator; it runs
the accelerator's own bench, so ``dut``, ``dut_params`` and ``backpressure`` do not apply to it.

Everything is validated before any job runs: every key, each recipe (loaded and checked, its
module names included), each random entry's parameters (names, types, the product of the size
parameters, one trial generation) and whether the DUT accepts its layers (the DUT's reason),
each onnx entry (imported, its input checked, its MAC layers offered to the DUT:
:mod:`t2c_sim.regress.onnx_job`), the DUT files and their overrides, job names (unique
across entries), and each simulated array against :func:`t2c_sim.limits.check_simulable`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2c_sim.config import HwConfig
from t2c_sim.cosim.dut import BUILTIN_DIR, default_dut, dut_path, load_dut
from t2c_sim.errors import ConfigError, T2CError
from t2c_sim.limits import (
    MAX_RANDOM_WORK,
    RANDOM_SIZE_PARAMS,
    check_hw_bounds,
    check_simulable,
)
from t2c_sim.readers import read_yaml
from t2c_sim.record import MAC_OPS
from t2c_sim.regress.dut import current_target
from t2c_sim.regress.hwfile import load_hw
from t2c_sim.regress.onnx_job import ONNX_KEYS, check_onnx_entry, onnx_params, parse_onnx_entry
from t2c_sim.regress.pipeline import parse_backpressure, parse_sims
from t2c_sim.regress.sources import GENERATORS, load_checked_recipe, records_from_random

RANDOM_KINDS = tuple(GENERATORS)
_SUITE_KEYS = {"name", "sims", "seeds", "hw", "jobs", "timeout_s", "description", "dut",
               "dut_params", "backpressure"}
_JOB_KEYS = {"recipe", "random", "testbench", "name", "params", "payload", "sims", "seeds",
             "hw", "timeout_s", "dut", "dut_params", "backpressure", *ONNX_KEYS}
_SOURCES = ("recipe", "random", "onnx", "testbench")
MAX_BENCH_PARAM = 65536  # a testbench's toplevel parameter (widths, depths, array sizes)


@dataclass(frozen=True)
class Job:
    """One unit of regression work: a network on one hardware config, simulator and seed."""

    name: str
    kind: str  # "recipe", "onnx", one of RANDOM_KINDS, "testbench", or "records" (--until-covered)
    hw: dict[str, int]
    sim: str | None
    seed: int
    recipe: str | None = None
    recipe_sha: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    dut: str | None = None
    dut_sha: str = ""
    dut_name: str = "t2c_accel"
    dut_params: dict[str, int] = field(default_factory=dict)
    backpressure: tuple[int, int] = (0, 0)
    onnx: str | None = None        # an onnx job: the model file, its sha256, the input batch's
    onnx_sha: str = ""
    input: str | None = None
    input_sha: str = ""

    @property
    def job_id(self) -> str:
        """Stable 16-hex-digit id of everything that determines the result."""
        key: dict[str, Any] = {"kind": self.kind, "recipe_sha": self.recipe_sha,
                               "params": self.params, "hw": self.hw, "sim": self.sim,
                               "seed": self.seed}
        if self.kind == "onnx":    # only then: the ids of recipe and random jobs are stable
            key["onnx_sha"] = self.onnx_sha
            key["input_sha"] = self.input_sha
        if self.dut is not None:  # only when set: the ids of our accelerator's jobs are stable
            key["dut_sha"] = self.dut_sha
        if self.dut_params:
            key["dut_params"] = self.dut_params
        if any(self.backpressure):
            key["backpressure"] = list(self.backpressure)
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def hw_config(self) -> HwConfig:
        """The array (every kind but ``testbench``, which has none)."""
        return HwConfig.from_dict(self.hw)

    def info(self) -> dict[str, Any]:
        """What reports show about the job."""
        return {"name": self.name, "kind": self.kind, "recipe": self.recipe,
                "params": self.params, "hw": self.hw, "hw_tag": hw_short(self.hw),
                "sim": self.sim, "seed": self.seed, "dut": self.dut_name,
                "dut_file": self.dut, "dut_params": self.dut_params,
                "backpressure": list(self.backpressure),
                **({"onnx": self.onnx, "input": self.input} if self.kind == "onnx" else {})}


def hw_short(hw: dict[str, int]) -> str:
    """``4x4 2:4`` plus any parameter that differs from the defaults (``-``: no array)."""
    if not hw:
        return "-"
    d = HwConfig().to_dict()
    extra = [f"{k}={v}" for k, v in hw.items()
             if k not in ("rows", "cols", "n", "m") and d.get(k) != v]
    return " ".join([f"{hw.get('rows')}x{hw.get('cols')} {hw.get('n')}:{hw.get('m')}", *extra])


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its name, source file and jobs in a deterministic order."""

    name: str
    path: str
    jobs: tuple[Job, ...]


def _resolve(path: str, base: Path, file: str, key: str) -> Path:
    p = Path(path)
    for cand in ([p] if p.is_absolute() else [Path.cwd() / p, base / p]):
        if cand.is_file():
            return cand.resolve()
    raise ConfigError(f"file {path!r} not found (relative to the working folder or "
                      f"{base})", file=file, key=key)


def _seeds(v: Any, file: str, key: str) -> list[int]:
    if isinstance(v, int) and not isinstance(v, bool):
        return [v]
    if isinstance(v, list) and v and all(isinstance(s, int) and not isinstance(s, bool)
                                         for s in v):
        return list(v)
    raise ConfigError(f"must be an integer or a non-empty list of integers, got {v!r}",
                      file=file, key=key)


def _hws(v: Any, base: Path, file: str, key: str) -> list[tuple[dict[str, int], str]]:
    """``[(hardware parameters, where they came from: a file or this suite's key)]``."""
    items = v if isinstance(v, list) else [v]
    if not items:
        raise ConfigError("must name at least one hardware config", file=file, key=key)
    out = []
    for i, item in enumerate(items):
        k = f"{key}[{i}]" if isinstance(v, list) else key
        if isinstance(item, str):
            hw_file = _resolve(item, base, file, k)
            out.append((load_hw(hw_file).to_dict(), str(hw_file)))
        elif isinstance(item, dict):
            try:
                hw = HwConfig.from_dict(item).to_dict()
                check_hw_bounds(hw)
            except ConfigError as e:
                raise e.with_context(file=file, key=f"{k}.{e.key}" if e.key else k) from None
            out.append((hw, k))
        else:
            raise ConfigError("must be a file name or a mapping of hardware parameters",
                              file=file, key=k)
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_ok(default: Any, v: Any) -> bool:
    """Whether ``v`` has the type of the generator parameter whose default is ``default``."""
    if isinstance(default, bool):
        return isinstance(v, bool)
    if _is_int(default) or default is inspect.Parameter.empty or default is None:
        return _is_int(v) or (default is not None and default is not inspect.Parameter.empty
                              and isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)))
    if isinstance(default, str):
        return isinstance(v, str)
    return True


def _check_params(kind: str, params: dict[str, Any], file: str, key: str) -> None:
    """Names and types of a random entry's ``params`` (the generator's keyword arguments)."""
    fn = GENERATORS[kind][0]
    sig = inspect.signature(fn).parameters
    allowed = [p for p in sig if p not in ("rng", "x_q", "inputs")]
    for k, v in params.items():
        if k not in allowed:
            raise ConfigError(f"unknown parameter of a random {kind} (known: "
                              f"{', '.join(allowed)})", file=file, key=f"{key}.{k}")
        default = sig[k].default
        if not _type_ok(default, v):
            want = ("true or false" if isinstance(default, bool) else
                    "a string" if isinstance(default, str) else "an integer")
            raise ConfigError(f"must be {want}, got {v!r}", file=file, key=f"{key}.{k}")


def _check_work(kind: str, params: dict[str, Any], file: str, key: str) -> None:
    """The product of the entry's size parameters (defaults included) is bounded."""
    sig = inspect.signature(GENERATORS[kind][0]).parameters
    full = {k: p.default for k, p in sig.items() if p.default is not inspect.Parameter.empty}
    full.update(GENERATORS[kind][1])
    full.update(params)
    work = 1
    for k in RANDOM_SIZE_PARAMS:
        v = full.get(k)
        for x in (v if isinstance(v, list) else [v]):
            if _is_int(x) and x > 0:
                work *= x
    if work > MAX_RANDOM_WORK:
        raise ConfigError(f"the size parameters ({', '.join(k for k in RANDOM_SIZE_PARAMS if k in full)}) "
                          f"multiply to {work}, more than the limit {MAX_RANDOM_WORK} (2^26) "
                          "for one random entry", file=file, key=key)


def _try_generate(kind: str, params: dict[str, Any], name: str, file: str, key: str) -> None:
    """Generate the entry once (seed 0) so that bad values fail here, not in every job."""
    _check_work(kind, params, file, key)
    try:
        records_from_random(kind, params, 0, name)
    except Exception as e:  # noqa: BLE001 - whatever the generator rejects is bad input
        msg = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"a random {kind} cannot be generated from these parameters: {msg}",
                          file=file, key=key) from None


def _timeout(v: Any, file: str, key: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
        raise ConfigError(f"must be a finite number of seconds > 0, got {v!r}", file=file,
                          key=key)
    return float(v)


def _name(v: Any, file: str, key: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)) or not str(v).strip():
        raise ConfigError(f"must be a non-empty string, got {v!r}", file=file, key=key)
    if not str(v).isprintable():
        raise ConfigError(f"must be printable (no newline or control character), got {v!r}",
                          file=file, key=key)
    return str(v)


def _int_map(v: Any, file: str, key: str) -> dict[str, int]:
    if not isinstance(v, dict) or not v or not all(isinstance(k, str) and _is_int(x)
                                                    for k, x in v.items()):
        raise ConfigError(f"must be a mapping of parameter names to integers, got {v!r}",
                          file=file, key=key)
    return dict(v)


def _testbench(e: dict[str, Any], file: str, key: str) -> tuple[str, list[dict[str, int]],
                                                                  dict[str, Any], int]:
    """``(bench name, parameter sets, payload, default seed)`` of a ``testbench`` entry."""
    name = e["testbench"]
    if not isinstance(name, str):
        raise ConfigError("must be the name of a testbench", file=file, key=f"{key}.testbench")
    try:
        bench = current_target().bench(name)
    except ConfigError as err:
        raise err.with_context(file=file, key=f"{key}.testbench") from None
    if "hw" in e:
        raise ConfigError("a testbench has no array: give its toplevel parameters in 'params'",
                          file=file, key=f"{key}.hw")
    v = e.get("params")
    if v is None:
        sets = [dict(p) for p in bench.param_sets]
    elif isinstance(v, list) and v:
        sets = [_int_map(p, file, f"{key}.params[{i}]") for i, p in enumerate(v)]
    else:
        sets = [_int_map(v, file, f"{key}.params")]
    known = {k for p in bench.param_sets for k in p}
    for i, ps in enumerate(sets if v is not None else []):
        where = f"{key}.params" + (f"[{i}]" if isinstance(v, list) else "")
        for k, x in ps.items():
            if k not in known:
                raise ConfigError(f"unknown parameter of {bench.top} (known: "
                                  f"{', '.join(sorted(known))})", file=file, key=f"{where}.{k}")
            if not 0 <= x <= MAX_BENCH_PARAM:
                raise ConfigError(f"must be in 0..{MAX_BENCH_PARAM}, got {x}", file=file,
                                  key=f"{where}.{k}")
    payload = e.get("payload") or {}
    if not isinstance(payload, dict) or not all(
            isinstance(k, str) and (_is_int(x) or isinstance(x, (str, bool)))
            for k, x in payload.items()):
        raise ConfigError("must be a mapping of names to integers, strings or booleans",
                          file=file, key=f"{key}.payload")
    bad = [k for k in ("params", "seed") if k in payload]
    if bad:
        raise ConfigError(f"'{bad[0]}' is set by the job, not the payload", file=file,
                          key=f"{key}.payload.{bad[0]}")
    seed = bench.payload.get("seed", 0)
    return name, sets, dict(payload), int(seed) if _is_int(seed) else 0


def _dut(v: Any, base: Path, file: str, key: str) -> tuple[str, str, str]:
    """``(path, sha of its contents, name)`` of a DUT file named by a suite (validated)."""
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"must be the path of a DUT file, got {v!r}", file=file, key=key)
    b = dut_path(v)   # a built-in DUT's name (t2c_axi_accel) unless a file of that name exists
    p = b if b.parent == BUILTIN_DIR and not (base / v).exists() else _resolve(v, base, file, key)
    spec = load_dut(p)   # its own errors name the DUT file and key
    h = hashlib.sha256(p.read_bytes())
    for src in spec.sources:  # the RTL is part of what determines a result
        h.update(src.read_bytes())
    return str(p), h.hexdigest(), spec.name


def _dut_params(v: Any, file: str, key: str) -> dict[str, int]:
    if not isinstance(v, dict) or not all(isinstance(k, str) and _is_int(x) for k, x in v.items()):
        raise ConfigError(f"must map Verilog parameter names to integers, got {v!r}", file=file,
                          key=key)
    return dict(v)


def _bps(v: Any, file: str, key: str) -> list[tuple[int, int]]:
    items = v if isinstance(v, list) and v and isinstance(v[0], list) else [v]
    try:
        return [parse_backpressure(it) for it in items]
    except ConfigError as e:
        raise e.with_context(file=file, key=key) from None


def _check_on_dut(kind: str, params: dict[str, Any], name: str, hw: dict[str, int],
                  dut: tuple[str, str, str] | None, dparams: dict[str, int], file: str,
                  key: str) -> None:
    """The DUT accepts the entry's random layers (one trial generation, seed 0)."""
    try:
        hwc = HwConfig.from_dict(hw)
        spec = load_dut(dut[0]) if dut else default_dut(hwc).spec
        d = spec.bind(hwc, dparams)
        for rec in records_from_random(kind, params, 0, name).records:
            if rec.op in MAC_OPS:
                d.check(rec)
    except T2CError as e:
        raise ConfigError(f"the DUT refuses this entry: {e}", file=file, key=key) from None


def _check_dut_params(dut: tuple[str, str, str] | None, dparams: dict[str, int],
                      hw: dict[str, int], file: str, key: str) -> None:
    """The overrides name parameters of the DUT and bind (checked even for golden-only jobs)."""
    if not dparams:
        return
    hwc = HwConfig.from_dict(hw)
    spec = load_dut(dut[0]) if dut else default_dut(hwc).spec
    known = [n for n, _ in spec.parameters]
    for k in dparams:
        if k not in known:
            raise ConfigError(f"unknown parameter of DUT {spec.name} (known: "
                              f"{', '.join(known) or 'none'})", file=file, key=f"{key}.{k}")
    try:
        spec.bind(hwc, dparams)
    except ConfigError as e:
        raise ConfigError(e.detail, file=file, key=key) from None


def load_suite(path: str | Path, *, dut: str | None = None,
               dut_params: dict[str, int] | None = None) -> Suite:
    """Read and validate a suite file; every error names the file and the key.

    ``dut`` / ``dut_params`` (the command line's ``--dut`` / ``--dut-param``) replace the
    suite's and every job's DUT file / parameter overrides.
    """
    file = str(path)
    data = read_yaml(path, "suite")
    if not isinstance(data, dict):
        raise ConfigError("a suite must be a mapping with a 'jobs' list", file=file)
    for k in data:
        if k not in _SUITE_KEYS:
            raise ConfigError(f"unknown suite key (known: {', '.join(sorted(_SUITE_KEYS))})",
                              file=file, key=str(k))
    base = Path(path).resolve().parent
    name = _name(data.get("name"), file, "name") or Path(path).stem
    if "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"must not contain '/' or start with '.' (it names the results "
                          f"folder), got {name!r}", file=file, key="name")
    try:
        sims = list(parse_sims(data.get("sims", "verilator"))) or [None]
    except ConfigError as e:
        raise e.with_context(file=file, key="sims") from None
    seeds = _seeds(data["seeds"], file, "seeds") if "seeds" in data else None
    hws = _hws(data["hw"], base, file, "hw") if "hw" in data else [(HwConfig().to_dict(), "hw")]
    timeout = _timeout(data.get("timeout_s"), file, "timeout_s")
    sdut = _dut(data["dut"], base, file, "dut") if "dut" in data else None
    sdparams = _dut_params(data["dut_params"], file, "dut_params") if "dut_params" in data else {}
    if dut is not None:
        sdut = _dut(dut, Path.cwd(), dut, "--dut")
    if dut_params is not None:
        sdparams = dict(dut_params)
    sbps = _bps(data["backpressure"], file, "backpressure") if "backpressure" in data \
        else [(0, 0)]
    entries = data.get("jobs")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("must be a non-empty list", file=file, key="jobs")
    jobs: list[Job] = []
    seen: set[str] = set()
    names: dict[str, int] = {}
    for i, e in enumerate(entries):
        key = f"jobs[{i}]"
        if not isinstance(e, dict):
            raise ConfigError("must be a mapping with 'recipe', 'random', 'onnx' or 'testbench'",
                              file=file, key=key)
        for k in e:
            if k not in _JOB_KEYS:
                raise ConfigError(f"unknown job key (known: {', '.join(sorted(_JOB_KEYS))})",
                                  file=file, key=f"{key}.{k}")
        given = [k for k in _SOURCES if k in e]
        if len(given) != 1:
            raise ConfigError("needs exactly one of 'recipe', 'random', 'onnx' or 'testbench'"
                              + (f" (got {' and '.join(given)})" if given else ""),
                              file=file, key=key)
        if "onnx" not in e:
            for k in ONNX_KEYS:
                if k in e:
                    raise ConfigError(f"only an onnx entry takes {k!r}", file=file,
                                      key=f"{key}.{k}")
        if "payload" in e and "testbench" not in e:
            raise ConfigError("only a testbench entry has a payload", file=file,
                              key=f"{key}.payload")
        params = e.get("params") or {}
        if not isinstance(params, dict) and "testbench" not in e:
            raise ConfigError("must be a mapping", file=file, key=f"{key}.params")
        recipe, sha = None, ""
        default_seeds = [0]
        tb_sets: list[dict[str, int]] = []
        onnx = None
        if "testbench" in e:
            kind = "testbench"
            bench, tb_sets, payload, seed0 = _testbench(e, file, key)
            default_seeds = [seed0]
            jname = _name(e.get("name"), file, f"{key}.name") or f"tb_{bench}"
            for k in ("dut", "dut_params", "backpressure"):
                if k in e:
                    raise ConfigError("a testbench runs the accelerator's own bench; "
                                      f"{k} does not apply", file=file, key=f"{key}.{k}")
        elif "onnx" in e:
            kind = "onnx"
            onnx = parse_onnx_entry(e, lambda v, k: _resolve(v, base, file, k), file, key)
            params = onnx_params(onnx)
            jname = _name(e.get("name"), file, f"{key}.name") or Path(onnx.path).stem
        elif "recipe" in e:
            kind = "recipe"
            if not isinstance(e["recipe"], str):
                raise ConfigError("must be a recipe file name", file=file, key=f"{key}.recipe")
            rp = _resolve(e["recipe"], base, file, f"{key}.recipe")
            # the whole recipe is validated now: an error names the recipe file and its key,
            # before any job runs (it used to end each job in an error after the suite started)
            default_seeds = [load_checked_recipe(rp).seed]
            recipe, sha = str(rp), hashlib.sha256(rp.read_bytes()).hexdigest()
            jname = _name(e.get("name"), file, f"{key}.name") or rp.stem
        else:
            kind = str(e["random"])
            if kind not in RANDOM_KINDS:
                raise ConfigError(f"unknown random kind {kind!r} (expected one of "
                                  f"{', '.join(RANDOM_KINDS)})", file=file, key=f"{key}.random")
            _check_params(kind, params, file, f"{key}.params")
            jname = _name(e.get("name"), file, f"{key}.name") or f"random_{kind}_{i}"
        try:
            jsims = list(parse_sims(e["sims"])) or [None] if "sims" in e else sims
        except ConfigError as err:
            raise err.with_context(file=file, key=f"{key}.sims") from None
        if jname in names:
            raise ConfigError(f"job name {jname!r} is already used by jobs[{names[jname]}] "
                              "(names tell the jobs apart in the reports; add name:)",
                              file=file, key=f"{key}.name")
        names[jname] = i
        jseeds = (_seeds(e["seeds"], file, f"{key}.seeds") if "seeds" in e
                  else [0] if onnx is not None and onnx.input is not None
                  else seeds if seeds is not None else default_seeds)
        jtimeout = _timeout(e["timeout_s"], file, f"{key}.timeout_s") if "timeout_s" in e \
            else timeout
        if kind == "testbench":
            if not any(jsims):
                raise ConfigError("a testbench needs a simulator (verilator or icarus), not "
                                  "none", file=file, key=f"{key}.sims" if "sims" in e else "sims")
            for ps in tb_sets:
                for sim in jsims:
                    for seed in jseeds:
                        job = Job(name=jname, kind=kind, hw={}, sim=sim, seed=seed,
                                  params={"testbench": bench, "params": ps, "payload": payload},
                                  timeout_s=jtimeout)
                        if job.job_id not in seen:
                            seen.add(job.job_id)
                            jobs.append(job)
            continue
        jhws = _hws(e["hw"], base, file, f"{key}.hw") if "hw" in e else hws
        jdut = _dut(e["dut"], base, file, f"{key}.dut") if "dut" in e and dut is None else sdut
        jdparams = _dut_params(e["dut_params"], file, f"{key}.dut_params") \
            if "dut_params" in e and dut_params is None else sdparams
        jbps = _bps(e["backpressure"], file, f"{key}.backpressure") if "backpressure" in e \
            else sbps
        pkey = "--dut-param" if dut_params is not None else \
            f"{key}.dut_params" if "dut_params" in e else "dut_params"
        tried: set[tuple[int, int]] = set()
        checked: set[tuple[Any, ...]] = set()
        imports: dict[int, Any] = {}
        for hw, hw_where in jhws:
            if any(jsims):
                try:
                    check_simulable(hw)
                except ConfigError as err:
                    where = {"file": hw_where} if hw_where.endswith((".yaml", ".yml")) \
                        else {"file": file, "key": f"{hw_where}.{err.key}"}
                    raise err.with_context(**where) from None
            _check_dut_params(jdut, jdparams, hw, file, pkey)
            if onnx is not None:   # the import, the input, the DUT: before any job runs
                hw = check_onnx_entry(onnx, hw, "hw" in e or "hw" in data, any(jsims), jdut,
                                      jdparams, file, key, imports)
            p = dict(params)
            if kind in RANDOM_KINDS:
                p.setdefault("n", hw["n"])
                p.setdefault("m", hw["m"])
                if (p["n"], p["m"]) not in tried:
                    tried.add((p["n"], p["m"]))
                    _try_generate(kind, p, jname, file, f"{key}.params")
                ck = (tuple(sorted(hw.items())), p["n"], p["m"])
                if any(jsims) and ck not in checked:
                    checked.add(ck)
                    _check_on_dut(kind, p, jname, hw, jdut, jdparams, file, f"{key}")
            for bp in jbps:
                for sim in jsims:
                    for seed in jseeds:
                        job = Job(name=jname, kind=kind, hw=hw, sim=sim, seed=seed,
                                  recipe=recipe, recipe_sha=sha, params=p, timeout_s=jtimeout,
                                  dut=jdut[0] if jdut else None, dut_sha=jdut[1] if jdut else "",
                                  dut_name=jdut[2] if jdut else "t2c_accel",
                                  dut_params=jdparams, backpressure=bp if sim else (0, 0),
                                  onnx=onnx.path if onnx else None,
                                  onnx_sha=onnx.sha if onnx else "",
                                  input=onnx.input if onnx else None,
                                  input_sha=onnx.input_sha if onnx else "")
                        if job.job_id not in seen:
                            seen.add(job.job_id)
                            jobs.append(job)
    return Suite(name=name, path=file, jobs=tuple(jobs))
