"""Plain result objects of a run (one network on one hardware config): JSON in, JSON out.

``RunResult.to_dict()`` is what ``results.json`` holds; ``RunResult.from_dict`` reads it back
(the reports are rendered from these objects only, so a saved JSON can be re-rendered).

Verdicts: ``pass`` (RTL == golden), ``fail`` (a localized mismatch), ``error`` (the simulator
could not produce a result: build failure, hang, X/Z), ``golden`` (a non-MAC layer, or no
simulator requested: executed by the golden model only), ``skipped`` (excluded by ``--layers``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from t2c_sim.errors import RecordError
from t2c_sim.files import atomic_write_json, jsonable
from t2c_sim.readers import read_json

PASS, FAIL, ERROR, GOLDEN, SKIPPED = "pass", "fail", "error", "golden", "skipped"
VERDICT_ORDER = {FAIL: 0, ERROR: 1, PASS: 2, GOLDEN: 3, SKIPPED: 4}
RESULT_VERSION = 1


def _from(cls: type, d: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SimOutcome:
    """One layer on one simulator.

    Attributes:
        sim: ``verilator`` or ``icarus``.
        verdict: ``pass``, ``fail`` or ``error``.
        cycles_measured: cycles counted by the RTL (sum over tiles), if it ran.
        mismatch: the localized first mismatch (layer, tile, row, channel, expected, actual,
            acc_expected, acc_actual, message) when ``verdict == "fail"``.
        message: one line: the mismatch, or the simulator error.
        repro: path of the repro bundle written for a mismatch.
        wave: path of the waveform of the failing tile (or of the layer with ``--waves``).
        tiles: per tile ``{index, p0, c0, rows, cols, cycles_measured, cycles_predicted}``.
        wall_s: wall time of the co-simulation.
        cycles_model: the DUT's cycle model for the layer (``None``: no model).
        backpressure: ``[input, output]`` stall probabilities in percent when the run had
            back-pressure (stream DUTs); then ``cycles_measured - cycles_model`` are the stall
            cycles the stream partners caused.
    """

    sim: str
    verdict: str
    cycles_measured: int | None = None
    mismatch: dict[str, Any] | None = None
    message: str = ""
    repro: str | None = None
    wave: str | None = None
    tiles: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    cycles_model: int | None = None
    backpressure: list[int] | None = None

    @property
    def stall_cycles(self) -> int | None:
        """Measured minus modelled cycles under back-pressure (``None`` otherwise)."""
        if self.backpressure is None or self.cycles_measured is None or self.cycles_model is None:
            return None
        return self.cycles_measured - self.cycles_model


@dataclass
class LayerResult:
    """One layer of the network: static figures, cross-check statistics and simulator verdicts.

    Attributes:
        name, op: layer name and kind (``linear``, ``conv2d``, ``maxpool``...).
        shape: short human description (``8x16 -> 8x10``, ``conv 3x3 16->32 @14x14``).
        nm: N:M sparsity of the weights (``1:1`` for dense / non-MAC layers).
        macs: dense multiply-accumulates of the layer (one input).
        cycles_est: estimated accelerator cycles (``t2c_sim.estimate.cycles``), MAC layers.
        utilization: estimated useful-MAC utilization of the PE array in [0, 1].
        lsb: integer model vs fake-quant model for this layer: ``hist`` ({"diff": count}),
            ``max`` and ``nonzero_rate`` (from the recipe cross-check), if available.
        sims: one :class:`SimOutcome` per simulator (empty for golden-only layers).
        note: why a layer is golden-only / skipped, or other remarks.
        parity: golden vs ONNX Runtime per optimization level (``run --parity ort``):
            ``{level: {"kernel", "integer", "local", "chained", "verdict"}}``
            (:func:`t2c_sim.verify.ort_parity.ort_parity`); a ``fail`` verdict fails the layer.
        chain: chained mode (``run --chain``): per simulator, the layer's output computed from
            the RTL's own outputs vs the golden network (``{sim: {"n", "mismatch", "max",
            "first"}}``, :func:`t2c_sim.regress.chain.diff_stats`); the layer's ``sims``
            verdicts are then its RTL on that chained input.
    """

    name: str
    op: str
    shape: str = ""
    nm: str = "1:1"
    macs: int = 0
    cycles_est: int | None = None
    utilization: float | None = None
    lsb: dict[str, Any] | None = None
    sims: list[SimOutcome] = field(default_factory=list)
    note: str = ""
    golden_only: bool = False
    skipped: bool = False
    parity: dict[str, Any] | None = None
    chain: dict[str, Any] | None = None

    @property
    def parity_failed(self) -> bool:
        """Golden differs from ONNX Runtime on an integer kernel at some optimization level."""
        return any(isinstance(e, dict) and e.get("verdict") == FAIL
                   for e in (self.parity or {}).values())

    @property
    def verdict(self) -> str:
        """Worst verdict over the simulators (``golden``/``skipped`` when none ran); ``fail``
        when golden differs from ONNX Runtime on an integer kernel (``parity``)."""
        if self.parity_failed:
            return FAIL
        if self.skipped:
            return SKIPPED
        if not self.sims:
            return GOLDEN
        return min((s.verdict for s in self.sims), key=lambda v: VERDICT_ORDER.get(v, 9))

    @property
    def cycles_measured(self) -> int | None:
        vals = [s.cycles_measured for s in self.sims if s.cycles_measured is not None]
        return vals[0] if vals else None

    def outcome(self, sim: str) -> SimOutcome | None:
        return next((s for s in self.sims if s.sim == sim), None)


@dataclass
class RunResult:
    """A whole run: one network (recipe, records or random job) on one hardware config.

    Attributes:
        title: display name (recipe stem, job name).
        source: recipe path, records folder or generator description.
        hw: hardware parameters (``HwConfig.to_dict()``).
        sims: simulators requested (may be empty: golden + estimate only).
        seed: seed of the build / generator.
        command: the exact command line that produced it.
        layers: per-layer results in execution order.
        summary: end-to-end figures (e.g. top-1 agreement and accuracy of the float,
            fake-quant and integer models) from the cross-check.
        parity: the run-level part of an ONNX Runtime parity check (``runtime``, ``levels``,
            ``input`` and ``deployed`` comparisons, ``notes``); per layer in
            :attr:`LayerResult.parity`. The quantized input differing fails the run.
        wall_s: total wall time.
        out_dir: folder of the reports.
        chain: chained mode (``run --chain``): per simulator ``first_divergence`` (the first
            layer whose chained output differs from golden, ``None``: none), ``layers``,
            ``diverged``, ``broken`` (the layer whose RTL produced no output), ``output`` and
            ``output_layer`` (:func:`t2c_sim.regress.chain.chain_summary`). A divergence fails
            the run.
        dut: the DUT (``name``, ``file``, ``profile``, ``top``, ``parameters``,
            ``cycle_model``; :meth:`t2c_sim.cosim.dut.Dut.describe`).
        coverage: ``--coverage`` / ``--until-covered`` figures (:mod:`t2c_sim.regress.coverage`):
            ``functional`` (one entry per array: its coverage counts and summary) and ``code``
            (the per-file Verilator table, the paths of the merged data, lcov and HTML).
    """

    title: str
    source: str = ""
    hw: dict[str, int] = field(default_factory=dict)
    sims: list[str] = field(default_factory=list)
    seed: int = 0
    command: str = ""
    layers: list[LayerResult] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    out_dir: str = ""
    parity: dict[str, Any] = field(default_factory=dict)
    chain: dict[str, Any] = field(default_factory=dict)
    dut: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)

    @property
    def chain_diverged(self) -> bool:
        """Some simulator's chained outputs differ from the golden network."""
        return any(isinstance(v, dict) and v.get("first_divergence")
                   for v in self.chain.values())

    @property
    def verdict(self) -> str:
        """``fail`` if any layer mismatched (RTL vs golden, or golden vs ONNX Runtime on an
        integer kernel or the quantized input, or chained outputs vs the golden network),
        else ``error`` if any simulator errored, else ``pass`` if at least one layer was
        co-simulated, else ``golden``."""
        if any(isinstance(v, dict) and v.get("mismatch")
               for v in (self.parity.get("input") or {}).values()) or self.chain_diverged:
            return FAIL
        vs = {lr.verdict for lr in self.layers}
        for v in (FAIL, ERROR, PASS):
            if v in vs:
                return v
        return GOLDEN

    @property
    def stop_error(self) -> str | None:
        """Message of the simulator error that stopped the run early (``None``: it did not).

        :func:`~t2c_sim.regress.pipeline.evaluate` stops at the first ``error`` outcome.
        """
        return next((s.message for lr in self.layers for s in lr.sims if s.verdict == ERROR),
                    None)

    def counts(self) -> dict[str, int]:
        """Number of (layer, simulator) outcomes per verdict plus golden-only layers."""
        out = {PASS: 0, FAIL: 0, ERROR: 0, GOLDEN: 0, SKIPPED: 0}
        for lr in self.layers:
            if lr.sims:
                for s in lr.sims:
                    out[s.verdict] = out.get(s.verdict, 0) + 1
            else:
                out[lr.verdict] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        d = jsonable(asdict(self))
        d["version"] = RESULT_VERSION
        d["verdict"] = self.verdict
        for ld, lr in zip(d["layers"], self.layers):
            ld["verdict"] = lr.verdict
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        if not isinstance(d, dict) or "title" not in d:
            raise RecordError("not a t2c-sim run result (key 'title' missing)")
        layers = []
        for ld in d.get("layers", []):
            lr = _from(LayerResult, ld)
            lr.sims = [_from(SimOutcome, s) for s in ld.get("sims", [])]
            layers.append(lr)
        run = _from(RunResult, d)
        run.layers = layers
        return run

    def save(self, path: str | Path) -> Path:
        """Write ``to_dict()`` as JSON atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        """Read a ``results.json``; any problem is a :class:`RecordError` naming the file."""
        p = Path(path)
        d = read_json(p, "run result", error=RecordError)
        try:
            return cls.from_dict(d)
        except RecordError as e:
            raise e.with_context(file=str(p)) from None
        except (TypeError, ValueError, AttributeError) as e:
            raise RecordError(f"not a t2c-sim run result ({e})", file=str(p)) from None
