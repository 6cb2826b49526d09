"""Hostile inputs, signals and faults (issue 12): every promise of docs/cli.md, case by case.

For every case: the documented exit code, exactly ONE stderr line starting ``t2c-sim`` that
names what the user got wrong (file, key, line, layer, option), no traceback anywhere, and an
output folder that is untouched or complete, never half-written. Signal cases also assert that
no process the command started (simulators, builds, pool workers, their children) survives.

The tables of inputs are in ``tests/hostile_cases.py`` (files, manifests, suites, CSVs, bundles,
options) and ``tests/hostile_dut_cases.py`` (DUT files, ``--dut-param``, ``--backpressure``, the
DUT keys of suites and bundles), run in-process through ``cli.main``; this file adds what needs
the file system or real processes: unwritable and locked folders, a full disk (a small tmpfs when
this user may mount one, else ``RLIMIT_FSIZE`` in a child process), signals during builds and runs
(fake ``iverilog``/``vvp`` on ``--tool-path`` that start a child like ``ivl`` and hang, so the
timing is deterministic; the real tools in the slow tier), concurrent runs, and
``--tool-path``/``--verilator-root`` reaching the builds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_cases import OK, USAGE, Case, all_cases, device_cases, old_out
from hostile_dut_cases import DUT_TABLES

from t2c_sim.cli import main
from t2c_sim.export import save_network
from t2c_sim.files import folder_lock
from t2c_sim.workloads import gen

EXIT_INFRA, EXIT_INTERRUPT, EXIT_TERMINATED = 3, 130, 143
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A valid records folder: conv1, pool, conv2, add, gap, flatten, fc (dense, 4x4 input)."""
    net = tmp_path_factory.mktemp("pristine") / "net"
    save_network(gen.random_network(np.random.default_rng(0), h=4, w=4, channels=4), net)
    return net


@pytest.fixture
def d(tmp_path: Path, pristine: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The case's folder (the working folder too): ``net/`` is a fresh copy of the records."""
    shutil.copytree(pristine, tmp_path / "net")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fmt(text: str, d: Path) -> str:
    return text.format(d=d, net=d / "net", out=d / "out", json=d / "est.json")


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


def one_line(err: str) -> str:
    """The single stderr line (the promise), asserting there is exactly one."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected ONE stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("t2c-sim"), lines[0]
    return lines[0]


def check(case: Case, d: Path, rc: int, out: str, err: str, before: dict | None) -> None:
    assert "Traceback" not in out + err, err
    assert rc == case.code, f"exit {rc}, expected {case.code}: {err!r}"
    if case.code == OK:
        assert not err.strip(), err
    else:
        line = one_line(err)
        for n in case.needles:
            assert fmt(n, d) in line, f"{fmt(n, d)!r} not in {line!r}"
        if "__not__" in case.files:
            assert case.files["__not__"] not in line, f"blamed the wrong file: {line!r}"
    if case.out == "absent":
        assert not (d / "out").exists(), sorted((d / "out").rglob("*"))
        assert not (d / "est.json").exists()
    elif case.out == "untouched":
        assert snapshot(d / "out") == before
    elif case.out == "json":  # estimate --json: complete and parseable
        assert json.loads((d / "est.json").read_text())["layers"]


@pytest.fixture
def watchdog():
    """A case that blocks (reading a FIFO, an endless loop over a huge shape) fails after 60 s
    instead of hanging the test run."""
    def expire(signum, frame):
        raise TimeoutError("the command did not finish within 60 s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


TABLE = all_cases() + [c for f in DUT_TABLES.values() for c in f()]


@pytest.mark.parametrize("case", TABLE, ids=[f"{c.kind}:{c.id}" for c in TABLE])
def test_hostile_input(case: Case, d: Path, capsys: pytest.CaptureFixture[str],
                       watchdog) -> None:
    if case.setup is not None:
        case.setup(d)
    before = snapshot(d / "out")
    rc = main([fmt(a, d) for a in case.argv])
    cap = capsys.readouterr()
    check(case, d, rc, cap.out, cap.err, before)


DEVICES = device_cases()


@pytest.mark.skipif(not IS_ROOT, reason="mknod of a character device needs root")
@pytest.mark.parametrize("case", DEVICES, ids=[f"{c.kind}:{c.id}" for c in DEVICES])
def test_device_nodes_are_never_read_or_replaced(case: Case, d: Path, capsys, watchdog) -> None:
    case.setup(d)
    dev = next(p for p in d.iterdir() if p.is_char_device())
    rc = main([fmt(a, d) for a in case.argv])
    cap = capsys.readouterr()
    check(case, d, rc, cap.out, cap.err, None)
    assert dev.is_char_device()  # still the device, not a file renamed over it


def test_symlink_target_is_left_alone(d: Path, capsys) -> None:
    """``estimate --json LINK``: refused; neither the link nor what it points to changes."""
    (d / "precious.txt").write_text("precious\n")
    os.symlink(d / "precious.txt", d / "link.json")
    assert main(["estimate", str(d / "net"), "--json", str(d / "link.json")]) == USAGE
    assert "symbolic link" in one_line(capsys.readouterr().err)
    assert (d / "link.json").is_symlink() and (d / "precious.txt").read_text() == "precious\n"


# ------------------------------------------------------------------ output folders
@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` unwritable: a read-only tmpfs over it as root (root ignores modes), else
    mode 0555. Yields the reason the OS will give."""
    folder.mkdir(exist_ok=True)
    if IS_ROOT:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                           capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"root but cannot mount a tmpfs: {r.stderr.decode().strip()}")
        try:
            yield "Read-only file system"
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        folder.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            folder.chmod(0o755)


OUT_CASES = [  # (id, argv, folder to make unwritable: out itself or its parent)
    ("run-out-unwritable", "run {net} --sim none --out {d}/ro/out", "ro"),
    ("run-out-is-unwritable", "run {net} --sim none --out {d}/ro", "ro"),
    ("regress-out-unwritable", "regress {d}/s.yaml -j 1 --out {d}/ro/out", "ro"),
    ("estimate-json-unwritable", "estimate {net} --json {d}/ro/est.json", "ro"),
]


@pytest.mark.parametrize("cid,argv,ro", OUT_CASES, ids=[f"output:{c[0]}" for c in OUT_CASES])
def test_unwritable_output_is_refused_before_any_work(cid, argv, ro, d: Path, capsys) -> None:
    from hostile_cases import SUITE

    (d / "s.yaml").write_text(SUITE)
    with read_only(d / ro) as reason:
        rc = main(fmt(argv, d).split())
        line = one_line(capsys.readouterr().err)
        assert rc == USAGE
        assert ("--json" if "json" in cid else "--out") in line and str(d / ro) in line
        assert reason in line
        assert list((d / ro).iterdir()) == []


LOCK_CASES = [  # (id, argv, folder held by "another process")
    ("run-vs-regress", "run {net} --sim none --out {out}", "out/jobs"),
    ("run-vs-run", "run {net} --sim none --out {out}", "out"),
    ("regress-vs-run", "regress {d}/s.yaml -j 1 --out {out}", "out"),
    ("regress-vs-regress", "regress {d}/s.yaml -j 1 --out {out}", "out/jobs"),
]


@pytest.mark.parametrize("cid,argv,held", LOCK_CASES,
                         ids=[f"concurrency:{c[0]}" for c in LOCK_CASES])
def test_folder_in_use_is_refused_up_front(cid, argv, held, d: Path, capsys) -> None:
    from hostile_cases import SUITE

    (d / "s.yaml").write_text(SUITE)
    old_out(d)
    (d / "out" / "jobs").mkdir()
    before = snapshot(d / "out")
    with folder_lock(d / held):
        rc = main(fmt(argv, d).split())
    line = one_line(capsys.readouterr().err)
    assert rc == USAGE and "in use" in line and str(d / held) in line
    assert snapshot(d / "out") == before


def test_rerun_into_an_old_results_folder_replaces_the_whole_set(d: Path, capsys) -> None:
    old_out(d)
    assert main(["run", str(d / "net"), "--sim", "none", "--out", str(d / "out")]) == OK
    assert not capsys.readouterr().err.strip()
    names = {p.name for p in (d / "out").iterdir()}
    assert names == {"results.json", "junit.xml", "report.html", "keep.txt"}
    assert json.loads((d / "out" / "results.json").read_text())["title"] == "net"


# ------------------------------------------------------------------------ full disk
@pytest.fixture(params=["tmpfs", "rlimit"])
def tiny_fs(tmp_path: Path, request):
    """A full disk: a 1 MiB tmpfs (where this user may mount one), or ``None`` for the
    RLIMIT_FSIZE stand-in (always available: the two cover the same promise)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if request.param == "rlimit":
        yield None
        return
    if not IS_ROOT:
        pytest.skip("mounting a tmpfs needs root (the rlimit variant covers this case)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(fs: Path, leave: int) -> None:
    """Fill ``fs`` until about ``leave`` bytes are free."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    with open(fs / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


_LIMITED = """
import resource, signal, sys
import matplotlib.font_manager  # its font cache is written before the limit applies
from t2c_sim.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)
sys.exit(main(sys.argv[2:]))
"""


def _cli_limited(argv: list[str], cwd: Path, fsize: int) -> subprocess.CompletedProcess:
    """``t2c-sim argv`` in a child process whose file writes are limited to ``fsize`` bytes
    (RLIMIT_FSIZE): the stand-in for a full disk where no tmpfs can be mounted."""
    return subprocess.run([sys.executable, "-c", _LIMITED, str(fsize), *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CI="true"))


DISK_CASES = [  # (id, argv with {o} = the output folder on the full disk, the file named,
                #  bytes left free: room for junit.xml, not for report.html)
    ("run-reports", "run {net} --sim none --out {o}/out", "report.html", 6 << 10),
    ("run-over-old-reports", "run {net} --sim none --out {o}/out", "report.html", 6 << 10),
    ("estimate-json", "estimate {net} --json {o}/est.json", "est.json", 0),
    ("regress-results", "regress {d}/s.yaml -j 1 --out {o}/out", "", 0),
]


@pytest.mark.parametrize("cid,argv,named,leave", DISK_CASES,
                         ids=[f"disk:{c[0]}" for c in DISK_CASES])
def test_full_disk_names_the_file_and_leaves_no_partial_set(cid, argv, named, leave, d: Path,
                                                           tiny_fs, capsys) -> None:
    from hostile_cases import SUITE

    (d / "s.yaml").write_text(SUITE)
    base = tiny_fs if tiny_fs is not None else d / "plain"
    base.mkdir(exist_ok=True)
    if "old" in cid:  # an older complete set: it must survive as it was
        assert main(["run", str(d / "net"), "--sim", "none", "--out", str(base / "out")]) == OK
        capsys.readouterr()
    if "json" in cid:
        (base / "est.json").write_text('{"older": true}\n')
    before = snapshot(base / "out")
    old_json = (base / "est.json").read_bytes() if (base / "est.json").exists() else None
    args = fmt(argv.replace("{o}", str(base)), d).split()
    if tiny_fs is not None:
        fill(tiny_fs, leave)
        rc = main(args)
        err = capsys.readouterr().err
    else:  # no tmpfs: a file-size limit makes the same writes fail (EFBIG)
        r = _cli_limited(args, d, max(leave, 512))
        rc, err = r.returncode, r.stderr
    assert "Traceback" not in err
    line = one_line(err)
    assert rc == EXIT_INFRA, line
    assert "No space left on device [Errno 28]" in line or "File too large [Errno 27]" in line
    assert str(base) in line and named in line, line
    assert snapshot(base / "out") == before  # untouched: no new results.json without its html
    if old_json is not None:
        assert (base / "est.json").read_bytes() == old_json
    assert not [p for p in base.rglob(".*.tmp")]  # no temp files left behind


# --------------------------------------------------------------------- fake simulators
FAKE_TOOL = """#!/bin/sh
# A fake {name}: logs its pid, starts a child (like iverilog's ivl or make's g++) and hangs,
# unless T2C_FAKE_{upper}=ok (then it creates the -o output and succeeds at once).
echo "{name} $$" >> "$T2C_FAKE_LOG"
if [ "$T2C_FAKE_{upper}" = ok ]; then
  while [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done
  exit 0
fi
sleep 300 &
echo "child $!" >> "$T2C_FAKE_LOG"
wait
"""


def fake_tools(folder: Path) -> Path:
    bin_ = folder / "fakebin"
    bin_.mkdir()
    for name in ("iverilog", "vvp"):
        p = bin_ / name
        p.write_text(FAKE_TOOL.format(name=name, upper=name.upper()))
        p.chmod(0o755)
    return bin_


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_ = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        if stat_.read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            return False
    return True


def logged_pids(log: Path) -> list[int]:
    return [int(ln.split()[1]) for ln in log.read_text().splitlines() if ln.strip()] \
        if log.exists() else []


def procs_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions ``text`` (a test's unique folder)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (p / "cmdline").read_bytes() and alive(int(p.name)):
                    out.append(int(p.name))
    return out


def settled(probe, wait_s: float = 5.0) -> list[int]:
    """``probe()`` (live processes) once it is empty, or what it still lists after ``wait_s``: the
    kernel may need a moment to reap a killed process, and multiprocessing's resource tracker
    leaves only when it reads the end of its pipe, a moment after the command exited; a process
    that nobody stopped stays (the fake simulators hang for 300 s)."""
    t_end = time.monotonic() + wait_s
    while (left := probe()) and time.monotonic() <= t_end:
        time.sleep(0.05)
    return left


def wait_for(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    t_end = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the command ended early ({proc.returncode}): "
                        f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > t_end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Cli:
    """``t2c-sim`` as a separate process (own session, so cleanup can reach it)."""

    def __init__(self, d: Path, argv: list[str], **env: str) -> None:
        self.d = d
        self.log = d / "fake.log"
        e = dict(os.environ, CI="true", T2C_FAKE_LOG=str(self.log), **env)
        self.proc = subprocess.Popen([sys.executable, "-m", "t2c_sim.cli", *argv], cwd=d,
                                     env=e, text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def children_started(self, n: int = 1) -> bool:
        return self.log.exists() and self.log.read_text().count("child ") >= n

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail("the command did not stop")
        return self.proc.returncode, err

    def survivors(self) -> list[int]:
        return settled(lambda: sorted({p for p in logged_pids(self.log) if alive(p)}
                                      | set(procs_mentioning(str(self.d)))))

    def kill_all(self) -> None:
        for pid in set(logged_pids(self.log)) | set(procs_mentioning(str(self.d))):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


SIGNAL_CASES = [  # (id, command, phase, signal, exit code, stderr words)
    ("sigterm-build", "run", "build", signal.SIGTERM, EXIT_TERMINATED, ["terminated"]),
    ("sigint-build", "run", "build", signal.SIGINT, EXIT_INTERRUPT, ["interrupted"]),
    ("sigterm-run", "run", "run", signal.SIGTERM, EXIT_TERMINATED, ["terminated"]),
    ("sigint-run", "run", "run", signal.SIGINT, EXIT_INTERRUPT, ["interrupted"]),
    ("sigkill-build", "run", "build", signal.SIGKILL, -signal.SIGKILL, None),
    ("sigterm-run-pool", "run-pool", "run", signal.SIGTERM, EXIT_TERMINATED, ["terminated"]),
    ("sigint-run-pool", "run-pool", "run", signal.SIGINT, EXIT_INTERRUPT, ["interrupted"]),
    ("sigterm-regress-pool", "regress", "run", signal.SIGTERM, EXIT_TERMINATED,
     ["terminated", "0 of 2 jobs"]),
    ("sigint-regress-pool", "regress", "run", signal.SIGINT, EXIT_INTERRUPT,
     ["interrupted", "0 of 2 jobs"]),
    ("sigterm-repro", "repro", "run", signal.SIGTERM, EXIT_TERMINATED, ["terminated"]),
]


@pytest.mark.parametrize("cid,cmd,phase,sig,code,words", SIGNAL_CASES,
                         ids=[f"signal:{c[0]}" for c in SIGNAL_CASES])
def test_signal_kills_every_child_and_exits_with_the_documented_code(
        cid, cmd, phase, sig, code, words, d: Path) -> None:
    fake = fake_tools(d)
    sim = ["--sim", "icarus", "--tool-path", str(fake), "--build-root", str(d / "bs"),
           "--no-progress"]
    if cmd == "run":
        argv = ["run", str(d / "net"), "--layers", "fc", "--out", str(d / "out"), *sim]
    elif cmd == "run-pool":  # every layer, spread over a pool of 2 simulator processes
        argv = ["run", str(d / "net"), "-j", "2", "--out", str(d / "out"), *sim]
    elif cmd == "regress":
        (d / "s.yaml").write_text("name: s\nsims: icarus\njobs:\n"
                                  "  - {random: linear, name: a, params: {c_in: 8, c_out: 4, rows: 2}}\n"
                                  "  - {random: linear, name: b, params: {c_in: 8, c_out: 4, rows: 3}}\n")
        argv = ["regress", str(d / "s.yaml"), "-j", "2", "--out", str(d / "out"), *sim[2:]]
    else:
        from hostile_cases import _bundle

        _bundle(lambda b: None)(d)
        argv = ["repro", str(d / "b"), *sim]
    env = {"T2C_FAKE_IVERILOG": "ok"} if phase == "run" else {}
    cli = Cli(d, argv, **env)
    try:
        n = 2 if cmd in ("regress", "run-pool") else 1
        wait_for(lambda: cli.children_started(n), 120, f"the fake {phase}", cli.proc)
        os.kill(cli.proc.pid, sig)  # the command only, as `kill PID` or a supervisor does
        rc, err = cli.finish()
        assert rc == code, err
        if words is not None:
            line = one_line(err)
            assert "Traceback" not in err
            for w in words:
                assert w in line, line
        assert cli.survivors() == [], "processes outlived the command"
        if cmd == "run" and sig == signal.SIGKILL:  # no cleanup possible: nothing written
            assert not [p for p in (d / "out").rglob("*")]
        elif cmd in ("run", "run-pool"):  # interrupted before any report: no folder left
            assert not (d / "out").exists()
        if cmd == "regress":  # the suite reports exist and list the jobs as not run
            summary = json.loads((d / "out" / "summary.json").read_text())
            assert len(summary["jobs"]) == 2
            assert not [p for p in (d / "out").rglob(".*.tmp")]
    finally:
        cli.kill_all()


# A vvp that runs the real one for the campaign's baseline (the unmutated RTL must pass) and
# hangs like FAKE_TOOL for every mutant, so both workers are busy when the signal arrives.
MUTANT_VVP = """#!/bin/sh
case "$*" in */mutation/*/baseline/*) exec {vvp} "$@";; esac
echo "vvp $$" >> "$T2C_FAKE_LOG"
sleep 300 &
echo "child $!" >> "$T2C_FAKE_LOG"
wait
"""


def in_session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the command's: workers, trackers, simulators)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and alive(int(p.name)):
                    out.append(int(p.name))
    return out


@pytest.mark.sim
@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, EXIT_TERMINATED, "terminated"),
                                           (signal.SIGINT, EXIT_INTERRUPT, "interrupted")],
                         ids=["signal:sigterm-mutate-pool", "signal:sigint-mutate-pool"])
def test_signal_stops_a_mutation_pool_with_the_documented_code(sig, code, word,
                                                                d: Path) -> None:
    """``mutate -j 2`` with both workers in a (hung) mutant simulation and the next mutants
    queued: the signal ends the command within a bound (the `layers` suite's tasks are larger
    than a pipe's buffer: a pool feeding them through its pipe never exited), with the code,
    one line, no process of its session left and a complete partial report (or none)."""
    vvp, iverilog = shutil.which("vvp"), shutil.which("iverilog")
    if vvp is None or iverilog is None:
        pytest.skip("Icarus not installed")
    fake = d / "fakebin"
    fake.mkdir()
    (fake / "iverilog").write_text(f'#!/bin/sh\nexec {iverilog} "$@"\n')
    (fake / "vvp").write_text(MUTANT_VVP.format(vvp=vvp))
    for p in fake.iterdir():
        p.chmod(0o755)
    out = d / "out"
    cli = Cli(d, ["mutate", "--suite", "layers", "--max-mutants", "12", "-j", "2",
                  "--no-equivalence", "--tool-path", str(fake), "--build-root", str(d / "bs"),
                  "--out", str(out), "--no-progress"])
    try:
        wait_for(lambda: cli.children_started(2), 300, "two hung mutant simulations", cli.proc)
        os.kill(cli.proc.pid, sig)
        rc, err = cli.finish(60)
        assert rc == code, err
        line = one_line(err)
        assert word in line and "partial report" in line, line
        assert cli.survivors() == [], "processes outlived the command"
        assert settled(lambda: in_session(cli.proc.pid)) == [], "pool workers outlived the command"
        assert not [p for p in d.rglob(".*.tmp")]
        if out.exists():  # what finished, both files or none
            assert sorted(p.name for p in out.iterdir()) == ["mutation.json", "report.html"]
            rep = json.loads((out / "mutation.json").read_text())
            assert rep["partial"] and len(rep["results"]) <= 10
        assert not (d / "bs" / "mutation").exists() or not any((d / "bs" / "mutation").iterdir())
    finally:
        cli.kill_all()


def test_concurrent_runs_one_folder(d: Path, capsys) -> None:
    """Two ``run``s into one folder: the second is refused up front; the first stops cleanly."""
    fake = fake_tools(d)
    argv = ["run", str(d / "net"), "--layers", "fc", "--sim", "icarus", "--tool-path", str(fake),
            "--build-root", str(d / "bs"), "--out", str(d / "out"), "--no-progress"]
    first = Cli(d, argv, T2C_FAKE_IVERILOG="ok")
    try:
        wait_for(first.children_started, 120, "the first run's simulator", first.proc)
        assert main(argv) == USAGE
        line = one_line(capsys.readouterr().err)
        assert "in use" in line and str(d / "out") in line
        os.kill(first.proc.pid, signal.SIGTERM)
        rc, err = first.finish()
        assert rc == EXIT_TERMINATED and "terminated" in one_line(err)
        assert first.survivors() == []
        assert not (d / "out").exists()
    finally:
        first.kill_all()


# ------------------------------------------------------------------------ tool options
def test_tool_path_reaches_the_build(d: Path, capsys, monkeypatch) -> None:
    """``--tool-path`` is used by the build itself, not only by the "is it installed" check:
    the fake iverilog there is what runs (PATH has a working iverilog, which must not run)."""
    fake = fake_tools(d)
    (fake / "iverilog").write_text('#!/bin/sh\necho "iverilog $$" >> "$T2C_FAKE_LOG"\n'
                                   'echo "fake iverilog: refusing" >&2\nexit 7\n')
    monkeypatch.setenv("T2C_FAKE_LOG", str(d / "fake.log"))
    rc = main(["run", str(d / "net"), "--layers", "fc", "--sim", "icarus", "--tool-path", str(fake),
               "--build-root", str(d / "bs"), "--out", str(d / "out"), "--no-progress"])
    err = capsys.readouterr().err
    line = one_line(err)
    assert rc == EXIT_INFRA and "build of t2c_harness (icarus) failed" in line, line
    log = Path(line.rsplit("log: ", 1)[1])
    assert "fake iverilog: refusing" in log.read_text()  # the tool that ran is the fake
    assert (d / "fake.log").read_text().startswith("iverilog ")


def test_verilator_root_reaches_the_build(d: Path, capsys, monkeypatch) -> None:
    root = d / "vroot"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "verilator").write_text('#!/bin/sh\necho "verilator $$" >> "$T2C_FAKE_LOG"\n'
                                            'echo "fake verilator: no" >&2\nexit 9\n')
    (root / "bin" / "verilator").chmod(0o755)
    monkeypatch.setenv("T2C_FAKE_LOG", str(d / "fake.log"))
    rc = main(["run", str(d / "net"), "--layers", "fc", "--sim", "verilator", "--verilator-root",
               str(root), "--build-root", str(d / "bs"), "--out", str(d / "out"),
               "--no-progress"])
    line = one_line(capsys.readouterr().err)
    assert rc == EXIT_INFRA and "build of t2c_harness (verilator) failed" in line, line
    assert (d / "fake.log").read_text().startswith("verilator ")


@pytest.mark.sim
def test_tool_path_alone_finds_icarus(d: Path, capsys, monkeypatch) -> None:
    """A PATH without the simulators plus ``--tool-path`` pointing at them: the run passes."""
    iverilog = shutil.which("iverilog")
    if iverilog is None:
        pytest.skip("iverilog not installed")
    tools = d / "tools"
    tools.mkdir()
    for t in ("iverilog", "vvp"):
        os.symlink(shutil.which(t), tools / t)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert shutil.which("iverilog") is None
    rc = main(["run", str(d / "net"), "--layers", "fc", "--sim", "icarus", "--tool-path",
               str(tools), "--build-root", str(d / "bs"), "--out", str(d / "out"),
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == OK, cap.err
    res = json.loads((d / "out" / "results.json").read_text())
    fc = next(ly for ly in res["layers"] if ly["name"] == "fc")
    assert fc["sims"][0]["verdict"] == "pass"


# ------------------------------------------------------------- real tools (slow tier)
def _descendant_named(root_pid: int, names: tuple[str, ...]) -> bool:
    kids: dict[int, list[int]] = {}
    comm: dict[int, str] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                st = (p / "stat").read_text()
                comm[int(p.name)] = st[st.index("(") + 1:st.rindex(")")]
                kids.setdefault(int(st.rsplit(")", 1)[1].split()[1]), []).append(int(p.name))
    todo, seen = [root_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        if pid != root_pid and comm.get(pid, "").startswith(names):
            return True
        todo += kids.get(pid, [])
    return False


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("sim,names", [("icarus", ("ivl", "iverilog")),
                                       ("verilator", ("cc1plus", "g++", "make"))],
                         ids=["signal:real-icarus-build", "signal:real-verilator-build"])
def test_sigterm_during_a_real_build_leaves_no_compiler(sim, names, d: Path) -> None:
    hw = ["--hw-param", "rows=32", "--hw-param", "cols=32"] if sim == "icarus" else []
    cli = Cli(d, ["run", str(d / "net"), "--layers", "fc", "--sim", sim, "--build-root",
                  str(d / "bs"), "--out", str(d / "out"), "--no-progress", *hw])
    try:
        wait_for(lambda: _descendant_named(cli.proc.pid, names), 300, f"the {sim} compiler",
                 cli.proc)
        os.kill(cli.proc.pid, signal.SIGTERM)
        rc, err = cli.finish(60)
        assert rc == EXIT_TERMINATED and "terminated" in one_line(err)
        assert cli.survivors() == []
        assert not (d / "out").exists()
    finally:
        cli.kill_all()


def test_job_errors_end_in_one_stderr_line_and_complete_reports(d: Path, capsys) -> None:
    """A regression whose jobs end in a simulator error exits 3 with one ``job error`` line
    (it used to exit 3 with an empty stderr) and complete suite reports."""
    fake = fake_tools(d)
    (fake / "iverilog").write_text("#!/bin/sh\necho 'fake iverilog: fatal' >&2\nexit 7\n")
    (d / "s.yaml").write_text("name: s\nsims: icarus\n" + JOB_TWO)
    rc = main(["regress", str(d / "s.yaml"), "-j", "1", "--tool-path", str(fake), "--build-root",
               str(d / "bs"), "--out", str(d / "out"), "--no-progress"])
    line = one_line(capsys.readouterr().err)
    assert rc == EXIT_INFRA and "job error" in line and "2 of 2 jobs" in line, line
    assert "build of t2c_harness (icarus) failed" in line
    summary = json.loads((d / "out" / "summary.json").read_text())
    assert [j["verdict"] for j in summary["jobs"]] == ["error", "error"]
    assert {p.name for p in (d / "out").iterdir()} >= {"summary.json", "junit.xml", "report.html"}


JOB_TWO = ("jobs:\n  - {random: linear, name: a, params: {c_in: 8, c_out: 4, rows: 2}}\n"
           "  - {random: linear, name: b, params: {c_in: 8, c_out: 4, rows: 3}}\n")


# ------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("extra,expected", [([], 7), (["--seed", "3"], 3), (["--seed", "0"], 0)],
                         ids=["seed:recipe-seed", "seed:option-overrides", "seed:option-zero"])
def test_recipe_seed_is_honoured_unless_seed_is_given(extra, expected, d: Path, capsys,
                                                     monkeypatch) -> None:
    from hostile_cases import RECIPE

    import t2c_sim.recipe as recipe_pkg

    seen = []

    class Stop(Exception):
        pass

    def build(recipe, seed=None, cache_dir=None):
        seen.append(seed)
        raise Stop

    monkeypatch.setattr(recipe_pkg, "build", build)
    (d / "r.yaml").write_text(RECIPE + "seed: 7\n")
    main(["run", str(d / "r.yaml"), "--sim", "none", "--out", str(d / "out"), *extra])
    capsys.readouterr()
    assert seen == [expected]


def test_suite_recipe_job_takes_the_recipe_seed(d: Path) -> None:
    from hostile_cases import RECIPE

    from t2c_sim.regress.suite import load_suite

    (d / "r.yaml").write_text(RECIPE + "seed: 5\n")
    (d / "s.yaml").write_text("name: s\nsims: none\njobs:\n  - {recipe: r.yaml}\n"
                              "  - {recipe: r.yaml, name: again, seeds: [1, 2]}\n"
                              "  - {random: linear, params: {c_in: 8, c_out: 4, rows: 2}}\n")
    jobs = load_suite(d / "s.yaml").jobs
    assert [(j.name, j.seed) for j in jobs] == [("r", 5), ("again", 1), ("again", 2),
                                                ("random_linear_2", 0)]


# ---------------------------------------------------------------- the passes bound
def _passes(p: int, c_out: int, groups: int, rows: int, cols: int) -> int:
    return groups * -(-p // rows) * -(-(c_out // groups) // cols)


@pytest.mark.parametrize("seed", range(3), ids=[f"limits:passes-bound-{s}" for s in range(3)])
def test_passes_bound_the_tile_plan(seed: int) -> None:
    """The limit counts passes of the array (with the rows an output scratchpad holds); the
    planner's real tile count never exceeds twice that, on ordinary and on degenerate arrays
    (a 1-word output scratchpad, 1-column arrays), so bounding passes bounds planning time."""
    from t2c_sim.config import HwConfig, OpKind
    from t2c_sim.estimate import tile_plan
    from t2c_sim.record import LayerRecord

    rng = np.random.default_rng(seed)
    checked = 0
    for _ in range(40):
        rows, cols = int(rng.choice([1, 2, 4, 8, 16])), int(rng.choice([1, 2, 4, 8, 16]))
        m = int(rng.choice([1, 2, 4]))
        hw = HwConfig(rows=rows, cols=cols, n=1, m=m,
                      # K always fits the banks (no K-split: one run per tile)
                      act_depth=int(rng.choice([1024, 4096])),
                      w_depth=int(rng.choice([1024, 4096])),
                      out_depth=int(rng.choice([1, 2, 8, 4096])),
                      ch_depth=int(rng.choice([1, 4, 256])) * cols)
        groups = int(rng.choice([1, 2]))
        c_in, c_out = groups * int(rng.integers(1, 9)), groups * int(rng.integers(1, 40))
        h = int(rng.integers(1, 12))
        rec = LayerRecord(name="x", op=OpKind.CONV2D, c_in=c_in, c_out=c_out, h=h, w=h, kh=1,
                          kw=1, groups=groups, n=1, m=m)
        plan = tile_plan(rec, hw)
        bound = _passes(plan.p, c_out, groups, min(rows, hw.out_depth), cols)
        assert len(plan.tiles) <= 2 * bound, (hw, rec.c_out, plan.p, len(plan.tiles), bound)
        checked += 1
    assert checked == 40
