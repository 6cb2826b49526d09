#!/usr/bin/env python3
"""`make bench`: runs every ``scripts/bench_*.py`` (each defines ``main() -> int``) in name order.

Each section prints its own figures (ratios measured side by side in one run). A section that
fails prints its error and makes the whole run exit non-zero, after the other sections ran.
Usage: ``python scripts/bench.py [SECTION ...]`` (e.g. ``golden``, ``cosim``, ``scalesim``).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    want = set(argv)
    failed = []
    for path in sorted(here.glob("bench_*.py")):
        section = path.stem[len("bench_"):]
        if want and section not in want:
            continue
        print(f"\n=== bench: {section} ===", flush=True)
        t0 = time.perf_counter()
        try:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            rc = int(mod.main() or 0)
        except Exception:  # noqa: BLE001 - report and continue with the next section
            traceback.print_exc()
            rc = 1
        print(f"--- {section}: {'ok' if rc == 0 else 'FAILED'} in {time.perf_counter() - t0:.1f} s")
        if rc:
            failed.append(section)
    if failed:
        print(f"bench: sections failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
