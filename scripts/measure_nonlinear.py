#!/usr/bin/env python3
"""Error of the integer transformer ops against their float functions, over their input range.

Prints the Markdown table quoted in docs/numerics.md section 9 ("Measured error"): for GELU
every 8-bit input, for softmax and LayerNorm every pair of 8-bit inputs plus seeded rows of
197 tokens / 192 channels with several spreads, for the matmul random full-range operands
against the exact rational result (:func:`t2c_sim.verify.nonlinear_error.standard_report`).
Errors are in output LSBs against the clamped real value; 0.5 is what correct rounding costs.
``--seed`` changes the random rows, ``--rows`` their number per spread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2c_sim.verify.nonlinear_error import standard_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=256, help="random rows per spread (1..100000)")
    args = ap.parse_args()
    if not 1 <= args.rows <= 100_000:
        print(f"--rows must be in 1..100000, got {args.rows}", file=sys.stderr)
        return 2
    print("| op | inputs | outputs | max err (LSB) | mean err (LSB) | != correctly rounded |")
    print("|---|---|---|---|---|---|")
    for r in standard_report(seed=args.seed, long_rows=args.rows):
        print(r.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
