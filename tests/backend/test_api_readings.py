"""Readings through the API: latest state of every bin, one bin's history joined through the
device-to-bin history and downsampled for long ranges, filters by stream and area."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from api_world import HOUR_MS, World, readings_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend import readings
from smartbins import storage
from smartbins.servers import InfluxDB

API = "/api/v1/municipalities/0101"


def test_latest_state_of_every_bin(world: World) -> None:
    r = world.client.get(f"{API}/state", headers=world.auth("a-viewer"))
    assert r.status_code == 200, r.text
    by_bin = {s["bin_id"]: s for s in r.json()}
    assert sorted(by_bin) == ["a-bin-1", "a-bin-2", "a-bin-3", "a-bin-4", "a-bin-5"]
    one = by_bin["a-bin-1"]
    assert one["device_id"] == world.ids["a"]["device_id"]
    assert one["fill_pct"] == 40.0 + 47 * 0.5
    assert (one["temp_c"], one["battery_mv"], one["rssi_dbm"]) == (12.5, 3900 - 47, -70)
    assert one["flags"] == [] and one["full"] is False
    assert one["last_seen_ms"] > world.now_ms - 2 * HOUR_MS
    assert by_bin["a-bin-3"]["fill_pct"] is None and by_bin["a-bin-3"]["device_id"] is None
    r = world.client.get(f"{API}/state", params={"stream": "glass"},
                         headers=world.auth("a-viewer"))
    assert [s["bin_id"] for s in r.json()] == ["a-bin-2"]
    r = world.client.get(f"{API}/state", params={"area": "center"},
                         headers=world.auth("a-viewer"))
    assert [s["bin_id"] for s in r.json()] == ["a-bin-1", "a-bin-3"]
    r = world.client.get(f"{API}/state", params={"stream": "lava"},
                         headers=world.auth("a-viewer"))
    assert r.status_code == 400 and "stream: stream 'lava': unknown fraction" in r.json()["detail"]


def test_history_raw_and_downsampled(world: World) -> None:
    h = world.auth("a-viewer")
    end = world.now_ms
    r = world.client.get(f"{API}/bins/a-bin-1/readings",
                         params={"start_ms": end - 50 * HOUR_MS, "end_ms": end}, headers=h)
    body = r.json()
    assert body["every_s"] is None and len(body["points"]) == 48
    assert body["points"][0]["fill_pct"] == 40.0
    r = world.client.get(f"{API}/bins/a-bin-1/readings",
                         params={"start_ms": end - 30 * 24 * HOUR_MS, "end_ms": end}, headers=h)
    body = r.json()
    assert body["every_s"] == 3600 and 48 <= len(body["points"]) <= 49
    r = world.client.get(f"{API}/bins/a-bin-1/readings",
                         params={"start_ms": end - 48 * HOUR_MS, "end_ms": end,
                                 "every_s": 86400}, headers=h)
    assert 2 <= len(r.json()["points"]) <= 3
    r = world.client.get(f"{API}/bins/a-bin-1/readings", params={"start_ms": end,
                                                                  "end_ms": end - 1}, headers=h)
    assert (r.status_code, r.json()["detail"]) == (
        400, f"end_ms: {end - 1} must be after start_ms {end}")


def test_history_follows_the_device_to_bin_history(fresh_world: World) -> None:
    w = fresh_world
    dev = w.ids["a"]["device_id"]
    r = w.client.get(f"{API}/bins/a-bin-1/readings", headers=w.auth("a-viewer"),
                     params={"start_ms": w.now_ms - 50 * HOUR_MS, "end_ms": w.now_ms})
    first = r.json()["points"][0]["time_ms"]
    moved_at = first + 24 * HOUR_MS  # readings 0..23 on bin 1, 24..47 on bin 5
    with w.registry() as reg:
        reg.link(dev, "a-bin-5", at_ms=moved_at)
    h = w.auth("a-viewer")
    params = {"start_ms": first - 1, "end_ms": w.now_ms}
    one = w.client.get(f"{API}/bins/a-bin-1/readings", params=params, headers=h).json()
    five = w.client.get(f"{API}/bins/a-bin-5/readings", params=params, headers=h).json()
    assert len(one["points"]) == 24 and len(five["points"]) == 24
    assert max(p["time_ms"] for p in one["points"]) < moved_at
    assert min(p["time_ms"] for p in five["points"]) == moved_at
    state = {s["bin_id"]: s for s in w.client.get(f"{API}/state", headers=h).json()}
    assert state["a-bin-5"]["device_id"] == dev and state["a-bin-1"]["device_id"] is None


def test_bucket_choice() -> None:
    day = 86_400_000
    assert readings.bucket_for(0, day, None) is None
    assert readings.bucket_for(0, 7 * day, None) == 900
    assert readings.bucket_for(0, 30 * day, None) == 3600
    assert readings.bucket_for(0, 400 * day, None) == 6 * 3600
    assert readings.bucket_for(0, day, 600) == 600


def test_every_influxql_value_is_checked() -> None:
    for bad in ("x' OR 1=1 --", "a b", "", "d\n1"):
        try:
            storage.history_query(bad, 0, 1)
        except ValueError as e:
            assert "is not a device id" in str(e)
        else:
            raise AssertionError(bad)
    for bad_time in (-1, 1.5, "1", True, 10**16):
        try:
            storage.latest_query(bad_time)  # type: ignore[arg-type]
        except ValueError as e:
            assert "since_ms" in str(e)
        else:
            raise AssertionError(bad_time)


def test_the_cached_answer_follows_new_readings(fresh_world: World) -> None:
    w = fresh_world
    h = w.auth("a-viewer")
    first = w.client.get(f"{API}/state", headers=h).json()
    assert first[0]["fill_pct"] == 63.5 and first[0]["full"] is False
    c = w.influx.client(w.database)
    c.write_lines(readings_lines(w.ids["a"]["device_id"], w.now_ms, 1, 99.0),
                  precision=storage.PRECISION)
    c.close()
    w.client.app.state.readings.refresh()
    now = w.client.get(f"{API}/state", headers=h).json()[0]
    assert (now["fill_pct"], now["full"], now["last_seen_ms"]) == (99.0, True, w.now_ms)


def test_first_load_looks_back_until_every_device_is_found(fresh_world: World) -> None:
    w = fresh_world
    c = w.influx.client(w.database)
    c.write_lines(readings_lines("long-silent", w.now_ms - 10 * 24 * HOUR_MS, 1, 30.0),
                  precision=storage.PRECISION)
    c.close()
    fresh = readings.Readings(w.client.app.state.readings._make_client, 2.0)
    fresh.load()
    latest = fresh.latest()
    assert latest["long-silent"].time_ms == w.now_ms - 10 * 24 * HOUR_MS
    assert {w.ids["a"]["device_id"], w.ids["b"]["device_2"]} <= set(latest)


_value = st.one_of(st.none(), st.floats(-50, 5000, allow_nan=False).map(lambda v: round(v, 3)))
_ids = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    points=st.lists(
        st.tuples(st.integers(0, 3 * 86_400_000), _value, _value, _value, _value, _value),
        max_size=60,
        unique_by=lambda p: p[0],
    ),
    every_s=st.sampled_from([60, 300, 3600, 6 * 3600, 86_400]),
)
def test_buckets_averaged_in_python_equal_influxdbs(
    influxdb: InfluxDB, points: list[tuple[Any, ...]], every_s: int
) -> None:
    """The API averages short bucketed histories itself: it must give InfluxDB's own answer to
    the GROUP BY time() query (alignment, mean/min/max over present values, empty buckets
    left out), on irregular times and missing fields."""
    t0 = 1_700_000_000_000
    device = f"bucket-{next(_ids)}"
    lines = []
    for t, *values in sorted(points):
        fields = [f"{k}={v!r}" for k, v in zip(storage.HISTORY_FIELDS, values, strict=True)
                  if v is not None]
        lines.append(f"{storage.MEASUREMENT},{storage.DEVICE_TAG}={device} "
                     f"{','.join(fields or ['seq=1.0'])} {(t0 + t) * 1_000_000}")
    c = influxdb.client("buckets")
    c.execute('CREATE DATABASE "buckets"')
    if lines:
        c.write_lines(lines, precision="ns")
    lo, hi = t0 + 7_000, t0 + 3 * 86_400_000 + 1
    raw = c.query(storage.history_query(device, lo, hi))
    rows = [tuple(v) for s in raw for v in s["values"]]
    grouped = c.query(storage.history_query(device, lo, hi, every_s))
    c.close()
    want = [tuple(v) for s in grouped for v in s["values"]]
    got = storage.history_buckets(rows, every_s)
    assert [r[0] for r in got] == [r[0] for r in want]
    for g, w in zip(got, want, strict=True):
        assert [v is None for v in g] == [v is None for v in w], (g, w)
        assert [v for v in g if v is not None] == pytest.approx(
            [v for v in w if v is not None], rel=1e-12, abs=1e-9), (g, w)


def test_refresh_looks_back_over_the_margin_every_so_often(fresh_world: World) -> None:
    """Each refresh takes readings from the newest time seen on; every MARGIN_EVERY_S one
    looks back REFRESH_MARGIN_MS for readings that reached InfluxDB late (injected clock)."""
    w = fresh_world
    t = [1000.0]
    rd = readings.Readings(w.client.app.state.readings._make_client, 2.0, clock=lambda: t[0])
    rd.load()
    rd.refresh()  # the first refresh looks back over the margin
    newest = max(x.time_ms for x in rd.latest().values())
    c = w.influx.client(w.database)
    c.write_lines(readings_lines("late-comer", newest - 5 * 60_000, 1, 30.0),
                  precision=storage.PRECISION)
    c.write_lines(readings_lines("on-time", newest + 60_000, 1, 40.0),
                  precision=storage.PRECISION)
    c.close()
    t[0] += 2
    rd.refresh()
    assert "on-time" in rd.latest() and "late-comer" not in rd.latest()
    t[0] += readings.MARGIN_EVERY_S
    rd.refresh()
    assert rd.latest()["late-comer"].time_ms == newest - 5 * 60_000
