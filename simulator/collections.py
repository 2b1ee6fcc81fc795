"""Collections: who empties which bin when. A fixed weekday plan, or a schedule file (closed loop).

**Fixed weekdays** (the current practice): each bin is emptied on fixed local weekdays, between
07:00 and 14:00 local time, as often as its stream and expected fill rate call for (every
other week, once, twice or three times a week), so that a bin reaches about 75 % between visits
on average; a fast week still overflows it, as in real life.

**Schedule file** (what a planner produces; the routing engineer writes the same format):

```
bin_id,time,truck
bin-00042,2026-03-02T07:40:00Z,truck-003
```

one row per emptying, ``time`` in ISO 8601 UTC (``Z`` or ``+00:00``), header required, rows in
any order. A row naming an unknown bin, or a time without a UTC offset, is an error that names
the line. :meth:`Collections.add` takes more visits while a run goes on, so a planner can be
called in the loop (each simulated day: read the truth or the readings, plan, hand the visits
back).
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.calendar import COPENHAGEN
from smartbins.errors import SmartbinsError

TARGET_PCT = 75.0
#: visits per week -> weekday sets (Monday = 0); 0.5 = every other week (even ISO weeks)
PATTERNS: dict[float, tuple[tuple[int, ...], ...]] = {
    0.5: ((0,), (1,), (2,), (3,), (4,)),
    1: ((0,), (1,), (2,), (3,), (4,)),
    2: ((0, 3), (1, 4)),
    3: ((0, 2, 4),),
}


class ScheduleError(SmartbinsError, ValueError):
    """A bad collection schedule file; the message names the file, line and problem."""


@dataclass(frozen=True, order=True)
class Visit:
    t_s: int
    bin_id: str
    truck: str = ""
    source: str = "schedule"


@dataclass(frozen=True)
class FixedPlan:
    """Per bin: visits per week, weekdays, minutes after 07:00 local."""

    per_week: tuple[float, ...]
    weekdays: tuple[tuple[int, ...], ...]
    minute: tuple[int, ...]


def fixed_plan(rates_pct_day: Sequence[float], seed: int) -> FixedPlan:
    rng = np.random.default_rng([seed, 0xC011])
    per_week, days, minutes = [], [], []
    for r in rates_pct_day:
        need = 7 * r / TARGET_PCT  # visits per week to stay near the target
        k = 0.5 if need <= 0.5 else 1 if need <= 1 else 2 if need <= 2 else 3
        options = PATTERNS[k]
        per_week.append(float(k))
        days.append(options[int(rng.integers(len(options)))])
        minutes.append(int(rng.integers(0, 7 * 60)))
    return FixedPlan(tuple(per_week), tuple(days), tuple(minutes))


def fixed_visits(
    plan: FixedPlan, bin_ids: Sequence[str], t0_s: int, t1_s: int
) -> list[Visit]:
    """Every visit of the fixed plan with t0 <= t < t1, sorted by time."""
    out: list[Visit] = []
    day = dt.datetime.fromtimestamp(t0_s, COPENHAGEN).date()
    last = dt.datetime.fromtimestamp(t1_s, COPENHAGEN).date()
    while day <= last:
        wd = day.weekday()
        even_week = day.isocalendar().week % 2 == 0
        base = dt.datetime(day.year, day.month, day.day, 7, tzinfo=COPENHAGEN)
        for i, b in enumerate(bin_ids):
            if wd not in plan.weekdays[i] or (plan.per_week[i] == 0.5 and not even_week):
                continue
            t = int((base + dt.timedelta(minutes=plan.minute[i])).timestamp())
            if t0_s <= t < t1_s:
                out.append(Visit(t, b, "", "fixed"))
        day += dt.timedelta(days=1)
    out.sort()
    return out


def parse_time(text: str) -> int:
    """ISO 8601 with a UTC offset -> UTC seconds; raises ValueError otherwise."""
    t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None or t.utcoffset() != dt.timedelta(0):
        raise ValueError(f"{text!r} is not UTC (end it with Z or +00:00)")
    return int(t.timestamp())


def format_time(t_s: int) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_schedule(path: Path | str, known_bins: Iterable[str] | None = None) -> list[Visit]:
    path = Path(path)
    known = set(known_bins) if known_bins is not None else None
    try:
        text = path.read_text()
    except OSError as e:
        raise ScheduleError(f"{path}: cannot read the schedule ({e.strerror})") from None
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None or [h.strip() for h in header] != ["bin_id", "time", "truck"]:
        raise ScheduleError(f"{path}:1: the header must be 'bin_id,time,truck', got {header!r}")
    out = []
    for n, row in enumerate(rows, 2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            raise ScheduleError(f"{path}:{n}: expected 3 columns bin_id,time,truck, got {row!r}")
        bin_id, when, truck = (c.strip() for c in row)
        if known is not None and bin_id not in known:
            raise ScheduleError(f"{path}:{n}: bin_id {bin_id!r} is not a bin of this city")
        try:
            t = parse_time(when)
        except ValueError as e:
            raise ScheduleError(f"{path}:{n}: time: {e}") from None
        out.append(Visit(t, bin_id, truck, "schedule"))
    out.sort()
    return out


def write_schedule(path: Path | str, visits: Iterable[Visit]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["bin_id", "time", "truck"])
        for v in sorted(visits):
            w.writerow([v.bin_id, format_time(v.t_s), v.truck])


class Collections:
    """Visits in time order; ``pop_due(t)`` hands out every visit at or before ``t``."""

    def __init__(self, visits: Iterable[Visit] = ()) -> None:
        self._heap: list[Visit] = list(visits)
        heapq.heapify(self._heap)

    def add(self, visits: Iterable[Visit]) -> None:
        for v in visits:
            heapq.heappush(self._heap, v)

    def pop_due(self, t_s: float) -> list[Visit]:
        out = []
        while self._heap and self._heap[0].t_s <= t_s:
            out.append(heapq.heappop(self._heap))
        return out

    def __len__(self) -> int:
        return len(self._heap)
