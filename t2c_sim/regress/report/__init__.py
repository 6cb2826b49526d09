"""Reports of run results: terminal table, JUnit XML, self-contained HTML, JSON.

Every renderer takes :class:`~t2c_sim.regress.results.RunResult` objects only, so a saved
``results.json`` can be rendered again without re-running anything.
"""

from t2c_sim.regress.report.html import render_html, render_suite_html
from t2c_sim.regress.report.junit import junit_xml
from t2c_sim.regress.report.terminal import failures_text, layer_table, suite_table
from t2c_sim.regress.report.write import write_reports, write_suite_reports

__all__ = ["layer_table", "suite_table", "failures_text", "junit_xml", "render_html",
           "render_suite_html", "write_reports", "write_suite_reports"]
