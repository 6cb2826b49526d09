"""Write every report of a run (or a regression) into a folder, as one unit.

All-or-nothing per output folder: the reports are rendered in memory, written to temp files
beside their targets, and renamed into place only when every one is complete
(:func:`t2c_sim.files.atomic_write_set`), ``results.json``/``summary.json`` last. A failure
(a full disk on ``report.html``) leaves the folder as it was: no new ``results.json`` claims a
result whose HTML report is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2c_sim.files import atomic_write_set, json_text, text_writer
from t2c_sim.regress.report.html import render_html, render_suite_html
from t2c_sim.regress.report.junit import junit_xml
from t2c_sim.regress.results import ERROR, LayerResult, RunResult, SimOutcome


def _error_run(info: dict) -> RunResult:
    """A job that ended before evaluating anything, as one ``<error>`` testcase."""
    status = str(info.get("status", ERROR))
    verdict = ERROR if status in (ERROR, "not run") else status
    return RunResult(title=str(info.get("name", "job")), hw=dict(info.get("hw") or {}),
                     sims=[str(info.get("sim") or "none")], seed=int(info.get("seed", 0)),
                     layers=[LayerResult(name="job", op="job", sims=[SimOutcome(
                         str(info.get("sim") or "none"), verdict,
                         message=str(info.get("message") or status))])])


def write_reports(run: RunResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``results.json``, ``junit.xml`` and ``report.html`` into ``out_dir``."""
    out = Path(out_dir)
    texts = {"junit": (out / "junit.xml", junit_xml([run], name=run.title)),
             "html": (out / "report.html", render_html(run)),
             "json": (out / "results.json", json_text(run.to_dict()))}
    atomic_write_set([(p, text_writer(t)) for p, t in texts.values()])
    return {k: p for k, (p, _) in texts.items()}


def write_suite_reports(title: str, jobs: Sequence[tuple[str, RunResult | None, dict]],
                        out_dir: str | Path, coverage: dict[str, Any] | None = None
                        ) -> dict[str, Path]:
    """Write ``summary.json``, ``junit.xml`` and ``report.html`` for a regression (with a
    ``coverage`` section when given: :func:`t2c_sim.regress.coverage.suite_coverage`)."""
    out = Path(out_dir)
    runs = [(jid, run if run is not None else _error_run(info), info) for jid, run, info in jobs]
    summary: dict[str, Any] = {"title": title, "jobs": [
        {"job_id": jid, **info, "verdict": run.verdict if run else info.get("status", "error")}
        for jid, run, info in jobs]}
    if coverage is not None:
        summary["coverage"] = coverage
    texts = {"junit": (out / "junit.xml", junit_xml(
                 [r for _, r, _ in runs], name=title,
                 suite_names=[f"{info.get('name', jid)}[{jid[:10]}]" for jid, _, info in runs])),
             "html": (out / "report.html", render_suite_html(title, jobs, coverage)),
             "json": (out / "summary.json", json_text(summary))}
    atomic_write_set([(p, text_writer(t)) for p, t in texts.values()])
    return {k: p for k, (p, _) in texts.items()}
