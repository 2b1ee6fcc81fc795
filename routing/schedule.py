"""Convert a plan to the simulator's collection-schedule file (``bin_id,time,truck``).

One row per bin emptied: every bin of a stop is emptied when service at that stop
starts. Times in the plan are seconds after ``shift_start``; the file holds them as
ISO 8601 UTC (``2026-11-25T07:03:00Z``). Only this function's writer does I/O.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from routing.model import ProblemData
from routing.solve import Result

HEADER = ("bin_id", "time", "truck")


def _iso_utc(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_collection_schedule(
    result: Result,
    data: ProblemData,
    shift_start: datetime,
    bin_ids_per_stop: Sequence[Sequence[str]],
    truck_ids: Sequence[str],
) -> list[tuple[str, str, str]]:
    """Rows ``(bin_id, time, truck)`` sorted by time, then truck, then bin id.

    ``shift_start`` must be timezone-aware (it is the instant the solver's time 0
    refers to); ``bin_ids_per_stop[i]`` lists the bins at stop i; ``truck_ids[v]``
    names truck v.
    """
    if shift_start.tzinfo is None:
        raise ValueError(
            f"shift_start must be timezone-aware, got naive {shift_start.isoformat()}; "
            f"pass e.g. datetime(..., tzinfo=datetime.UTC)"
        )
    if len(bin_ids_per_stop) != data.num_stops:
        raise ValueError(
            f"bin_ids_per_stop has {len(bin_ids_per_stop)} entries for {data.num_stops} stops"
        )
    if len(truck_ids) != data.num_vehicles:
        raise ValueError(f"truck_ids has {len(truck_ids)} ids for {data.num_vehicles} trucks")
    nd, ns = data.num_depots, data.num_stops
    rows: list[tuple[float, str, str, str]] = []
    for route in result.routes:
        for loc, start_s in zip(route.visits, route.service_start_s, strict=True):
            if nd <= loc < nd + ns:
                when = _iso_utc(shift_start + timedelta(seconds=float(start_s)))
                for bin_id in bin_ids_per_stop[loc - nd]:
                    rows.append((float(start_s), str(bin_id), when, str(truck_ids[route.vehicle])))
    rows.sort(key=lambda r: (r[0], r[3], r[1]))
    return [(b, when, truck) for _, b, when, truck in rows]


def write_collection_schedule(path: str | Path, rows: Sequence[tuple[str, str, str]]) -> None:
    """Write rows as CSV with the header ``bin_id,time,truck``."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
