"""JUnit XML (the Jenkins/GitLab/GitHub flavour): one ``<testcase>`` per layer x simulator.

Structure::

    <testsuites name=... tests= failures= errors= skipped= time=>
      <testsuite name="<run title>" ...>
        <properties><property name="hw.rows" value="4"/>...</properties>
        <testcase classname="<run title>.<layer>" name="<layer>[verilator]" time="1.2">
          <failure type="mismatch" message="<one-line localized mismatch>">details</failure>
        </testcase>
        <testcase classname=... name="<pool layer>[golden]"><skipped message="golden-only"/></testcase>

A mismatch is a ``<failure>``; a simulator error (build failure, hang, X/Z) is an ``<error>``;
golden-only and ``--layers``-excluded layers are ``<skipped>``. With an ONNX Runtime parity
check, each layer x optimization level (and the quantized input) is one more ``<testcase>``
named ``<layer>[ort <level>]``; golden differing on an integer kernel is a
``<failure type="parity">`` (:mod:`t2c_sim.regress.report.parity`). In chained mode
(``run --chain``) each layer x simulator is one more ``<testcase>`` named ``<layer>[chain
<sim>]``, a ``<failure type="chain">`` where the chained output differs from the golden network
(:mod:`t2c_sim.regress.report.chain`).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from t2c_sim.regress.report.chain import chain_cases
from t2c_sim.regress.report.parity import parity_cases
from t2c_sim.regress.results import ERROR, FAIL, PASS, RunResult


def _suite(run: RunResult, name: str | None = None) -> ET.Element:
    ts = ET.Element("testsuite", name=name or run.title)
    props = ET.SubElement(ts, "properties")
    for k, v in run.hw.items():
        ET.SubElement(props, "property", name=f"hw.{k}", value=str(v))
    for k in ("name", "file", "profile", "top", "cycle_model"):
        if run.dut.get(k) is not None:
            ET.SubElement(props, "property", name=f"dut.{k}", value=str(run.dut[k]))
    for k, v in (run.dut.get("parameters") or {}).items():
        ET.SubElement(props, "property", name=f"dut.param.{k}", value=str(v))
    ET.SubElement(props, "property", name="seed", value=str(run.seed))
    ET.SubElement(props, "property", name="command", value=run.command)
    n = fails = errs = skips = 0
    total = 0.0
    for lr in run.layers:
        cls = f"{run.title}.{lr.name}"
        if not lr.sims:
            tc = ET.SubElement(ts, "testcase", classname=cls, name=f"{lr.name}[golden]", time="0")
            ET.SubElement(tc, "skipped", message=lr.note or lr.verdict)
            n += 1
            skips += 1
            continue
        for o in lr.sims:
            tc = ET.SubElement(ts, "testcase", classname=cls, name=f"{lr.name}[{o.sim}]",
                               time=f"{o.wall_s:.3f}")
            n += 1
            total += o.wall_s
            if o.verdict == FAIL:
                fails += 1
                el = ET.SubElement(tc, "failure", type="mismatch", message=o.message)
                detail = [o.message]
                if o.mismatch:
                    detail.append(json.dumps({k: v for k, v in o.mismatch.items() if k != "map"}))
                if o.repro:
                    detail.append(f"repro: t2c-sim repro {o.repro}")
                if o.wave:
                    detail.append(f"wave: {o.wave}")
                el.text = "\n".join(detail)
            elif o.verdict == ERROR:
                errs += 1
                el = ET.SubElement(tc, "error", type="simulation", message=o.message)
                el.text = o.message
            elif o.verdict != PASS:
                skips += 1
                ET.SubElement(tc, "skipped", message=o.message or o.verdict)
            out = ET.SubElement(tc, "system-out")
            out.text = (f"cycles_measured={o.cycles_measured} cycles_est={lr.cycles_est} "
                        f"tiles={len(o.tiles)}")
            if o.backpressure:
                out.text += (f" backpressure={o.backpressure[0]},{o.backpressure[1]} "
                             f"cycles_model={o.cycles_model} stall_cycles={o.stall_cycles}")
    pn, pf = parity_cases(ts, run)
    cn, cf = chain_cases(ts, run)
    n, fails = n + pn + cn, fails + pf + cf
    ts.set("tests", str(n))
    ts.set("failures", str(fails))
    ts.set("errors", str(errs))
    ts.set("skipped", str(skips))
    ts.set("time", f"{run.wall_s or total:.3f}")
    return ts


def junit_xml(runs: Sequence[RunResult], name: str = "t2c-sim",
              suite_names: Sequence[str] | None = None) -> str:
    """Serialize ``runs`` (one ``<testsuite>`` each) as a JUnit XML document."""
    root = ET.Element("testsuites", name=name)
    totals = dict(tests=0, failures=0, errors=0, skipped=0)
    time = 0.0
    for i, run in enumerate(runs):
        ts = _suite(run, suite_names[i] if suite_names else None)
        root.append(ts)
        for k in totals:
            totals[k] += int(ts.get(k, "0"))
        time += float(ts.get("time", "0"))
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
