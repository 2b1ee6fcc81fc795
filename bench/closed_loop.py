"""The issue-14 policy comparison in closed loop: fixed schedule, 80 % rule, our
forecast-driven plan and the plan with perfect knowledge, 2,000 bins, 13 weeks, 3 seeds.

    python bench/closed_loop.py                       # the defaults below
    python bench/closed_loop.py --bins 500 --weeks 4 --seeds 1   # a quick look

The same as ``smartbins evaluate`` with its defaults; writes evaluate.md and the PNG plots
to --out (default bench-closed-loop/) and prints the table. Every figure comes from the
simulator's ground truth; the fixed schedule is the baseline, measured in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartbins.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", "bench-closed-loop"]
    raise SystemExit(main(["evaluate", *args]))
