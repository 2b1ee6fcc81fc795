"""The collection-schedule file the simulator reads."""

from __future__ import annotations

import csv
from datetime import UTC, datetime

import pytest

from routing.schedule import to_collection_schedule, write_collection_schedule
from routing.solve import solve
from routing.stop import MaxIterations


def test_every_bin_of_every_visited_stop_gets_one_row(two_chamber_city, tmp_path):
    data = two_chamber_city.data()
    res = solve(data, MaxIterations(20), seed=1)
    assert res.is_feasible
    start = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    rows = to_collection_schedule(res, data, start, two_chamber_city.bin_ids_per_stop(),
                                  ["truck-A", "truck-B"])
    assert sorted(r[0] for r in rows) == sorted(
        b for bins in two_chamber_city.bin_ids_per_stop() for b in bins)
    times = [r[1] for r in rows]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    assert times[0] > "2026-11-25T06:00:00Z"
    assert {r[2] for r in rows} <= {"truck-A", "truck-B"}
    write_collection_schedule(tmp_path / "schedule.csv", rows)
    with open(tmp_path / "schedule.csv") as fh:
        back = list(csv.reader(fh))
    assert back[0] == ["bin_id", "time", "truck"]
    assert [tuple(r) for r in back[1:]] == rows


def test_naive_shift_start_is_refused(two_chamber_city):
    data = two_chamber_city.data()
    res = solve(data, MaxIterations(1), seed=1)
    with pytest.raises(ValueError, match="shift_start must be timezone-aware"):
        to_collection_schedule(res, data, datetime(2026, 11, 25, 6, 0),
                               two_chamber_city.bin_ids_per_stop(), ["a", "b"])
