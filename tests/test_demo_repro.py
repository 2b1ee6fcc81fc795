"""`smartbins demo` with the same seed gives the same readings (issue 11 item 9;
docs/simulator.md promises it): the same city, the same readings produced, and, because the
fleet drains its buffers after the run, the same readings stored."""

from __future__ import annotations

import re
import subprocess
import sys


def demo_report(*extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "smartbins.cli", "demo", "--bins", "8", "--days", "1",
         "--seed", "5", *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # From the table's header to the end: per stream bins, readings, fill, emptyings,
    # overflows, then the ground-truth line (dead letters included).
    return result.stdout[result.stdout.index("\nstream ") :]


def test_same_seed_same_readings() -> None:
    first, second = demo_report(), demo_report()
    assert first == second
    produced, stored, waiting = map(int, re.search(
        r"(\d+) readings produced; (\d+) stored in InfluxDB, each exactly once; (\d+) not "
        r"stored yet", first).groups())  # fmt: skip
    assert produced > 0 and waiting == 0 and stored <= produced
