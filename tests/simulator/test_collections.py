"""Collections: fixed weekdays, or a schedule file (bin_id,time,truck; ISO 8601 UTC)."""

import datetime as dt
import sqlite3

import pytest

from simulator.city import generate
from simulator.collections import (
    Collections,
    ScheduleError,
    Visit,
    fixed_plan,
    fixed_visits,
    format_time,
    read_schedule,
    write_schedule,
)
from simulator.fleet import build_world, run_fast
from simulator.world import WorldOptions

START = 1_760_000_000  # 2025-10-09


def test_fixed_plan_visits_on_fixed_local_weekdays_in_the_morning():
    plan = fixed_plan([1.0, 10.0, 40.0], seed=1)
    assert plan.per_week == (0.5, 1.0, 3.0)
    visits = fixed_visits(plan, ["a", "b", "c"], START, START + 28 * 86400)
    by_bin = {b: [v for v in visits if v.bin_id == b] for b in "abc"}
    assert len(by_bin["a"]) == 2 and len(by_bin["b"]) == 4 and len(by_bin["c"]) == 12
    from simulator.calendar import COPENHAGEN

    for v in visits:
        local = dt.datetime.fromtimestamp(v.t_s, COPENHAGEN)
        assert 7 <= local.hour < 14 and local.weekday() < 5
    days = {dt.datetime.fromtimestamp(v.t_s, COPENHAGEN).weekday() for v in by_bin["b"]}
    assert len(days) == 1


def test_schedule_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "s.csv"
    visits = [Visit(START + 3600, "bin-00001", "truck-000"), Visit(START, "bin-00000", "t2")]
    write_schedule(path, visits)
    text = path.read_text().splitlines()
    assert text[0] == "bin_id,time,truck" and text[1] == f"bin-00000,{format_time(START)},t2"
    assert read_schedule(path, ["bin-00000", "bin-00001"]) == sorted(visits)
    path.write_text("bin_id,time,truck\nbin-00000,2025-10-09T10:00:00,t\n")
    with pytest.raises(ScheduleError, match=r"s.csv:2: time: .* is not UTC"):
        read_schedule(path)
    path.write_text("bin_id,time,truck\nnope,2025-10-09T10:00:00Z,t\n")
    with pytest.raises(ScheduleError, match=r"s.csv:2: bin_id 'nope' is not a bin"):
        read_schedule(path, ["bin-00000"])
    path.write_text("bin,when\n")
    with pytest.raises(ScheduleError, match="header"):
        read_schedule(path)


def test_schedule_file_drives_emptyings_in_a_closed_loop(tmp_path):
    city = generate(10, 1)
    sched = tmp_path / "plan.csv"
    write_schedule(sched, [Visit(START + 86400, b.id, "truck-001") for b in city.bins[:4]])
    visits = Collections(read_schedule(sched, [b.id for b in city.bins]))
    opts = WorldOptions(seed=1, start_s=START, days=3, fixed_schedule=False)

    added = []

    def planner(world, t_s):  # called each simulated midnight: empty everything over 50 %
        mine = [Visit(t_s + 8 * 3600, world.bin_ids[i], "truck-002")
                for i in range(len(world.bin_ids)) if world.field.level[i] > 50]
        added.extend(mine)
        world.collections.add(mine)

    world = build_world(10, opts, tmp_path / "t.sqlite", collections=visits)
    run_fast(world, on_day=planner)
    db = sqlite3.connect(tmp_path / "t.sqlite")
    rows = db.execute("SELECT bin_id, t_ms, level_after, truck, source FROM emptyings").fetchall()
    first = [r for r in rows if r[3] == "truck-001"]
    assert sorted(r[0] for r in first) == [b.id for b in city.bins[:4]]
    assert all(abs(r[1] - (START + 86400) * 1000) <= 300_000 and r[2] < 5 for r in first)
    assert len([r for r in rows if r[3] == "truck-002"]) == len(added)
    assert all(r[4] == "schedule" for r in rows)
