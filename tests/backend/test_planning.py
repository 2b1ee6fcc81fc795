"""The planning service end to end: registry + readings in a real InfluxDB -> forecast ->
select -> route -> the plan document; and `smartbins plan` writing its files.

The city is small and built here, with fill series whose future is known: a bin that is
nearly full and filling fast must be in the plan, a nearly empty slow one must not, and every
plan must pass the routing core's checker.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend import plan_store
from backend.planning import (
    PlanningError,
    PlanRequest,
    next_collection_days,
    next_workdays,
    plan,
    plan_and_store,
)
from routing.feasibility import check_routes
from smartbins import assets, storage
from smartbins import protocol as p
from smartbins.registry import Registry
from smartbins.servers import InfluxDB

NOW_S = 1_796_230_800  # Wednesday 2026-12-02 17:00 UTC
PLAN_DATE = "2026-12-03"  # Thursday; next opportunities Friday and Monday
HOUR = 3600
DAYS = 14
M = "0101"


def _series(level_now: float, rate_day: float, hours: int) -> list[float]:
    """Hourly fills ending at ``level_now``, rising ``rate_day`` % a day, emptied (to 3 %)
    whenever the level would pass 95 %: a sawtooth with a known rate."""
    out, level = [], level_now
    for _ in range(hours):
        out.append(level)
        level -= rate_day / 24
        if level < 3:
            level = 95.0
    return out[::-1]


#: bin id suffix -> (level now [%], rate [% per day]); "hot" overflows before Friday for sure,
#: "cold" will not for weeks.
PROFILES = {"hot": (92.0, 30.0), "cold": (6.0, 2.0)} | {
    f"n{k}": (10.0 + 6.0 * k, 8.0 + k) for k in range(10)
} | {"blind": (60.0, 3.0)}
#: "blind" read 60 % and rose slowly until its last 10 hours, when it answered only BLIND_ZONE
#: (the waste at the sensor: an overfull bin reads nothing else)
BLIND_HOURS = 10


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("planning")
    database = f"plan_{os.getpid()}"
    client = influxdb.client(database)
    client.execute(f'CREATE DATABASE "{database}"')
    reg = Registry(tmp / "registry.sqlite")
    assets.add_municipality(reg, M, "Kommune")
    assets.add_depot(reg, M, "depot", 55.66, 12.60, "Depot")
    assets.add_disposal_site(reg, M, "arc", 55.63, 12.65, ["residual"], "ARC", "")
    assets.add_truck(reg, M, "truck-1", "depot", [assets.Compartment("residual", 8_000)])
    assets.add_truck(reg, M, "truck-2", "depot", [assets.Compartment("residual", 8_000)])
    t_first = (NOW_S - DAYS * 86400) * 1000
    lines: list[str] = []
    new = []
    for k, name in enumerate(sorted(PROFILES)):
        site = f"site-{name}"
        angle = 2 * math.pi * k / len(PROFILES)
        assets.add_site(reg, M, site, 55.68 + 0.02 * math.sin(angle),
                        12.57 + 0.03 * math.cos(angle), name, f"Gade {k + 1}")
        new.append(assets.NewBin(f"bin-{name}", site, "residual", 660, area="center"))
    assets.add_bins(reg, M, new)
    for name, (level, rate) in sorted(PROFILES.items()):
        dev = f"dev-{name}"
        reg.add_device(dev, at_ms=t_first - 1)
        reg.link(dev, f"bin-{name}", at_ms=t_first - 1)
        fills = _series(level, rate, DAYS * 24)
        for h, fill in enumerate(fills):
            ts = t_first + (h + 1) * HOUR * 1000
            r = p.Reading(device=dev, seq=h, boot=1, ts_ms=ts, fw="1.0.0", interval_s=3600,
                          distance_mm=500, fill_pct=round(fill, 2), battery_mv=3900)
            if name == "blind" and h >= len(fills) - BLIND_HOURS:
                r = p.Reading(device=dev, seq=h, boot=1, ts_ms=ts, fw="1.0.0", interval_s=3600,
                              flags=int(p.Flag.SENSOR_ERROR), battery_mv=3900,
                              errors=(int(p.SensorError.BLIND_ZONE),))
            lines.append(storage.to_line(storage.reading_point(r)))
    client.write_lines(lines, precision=storage.PRECISION)
    yield reg, client, tmp
    reg.close()
    client.close()


def _request(**kw: object) -> PlanRequest:
    return PlanRequest(M, PLAN_DATE, "residual", iterations=300, **kw)  # type: ignore[arg-type]


def test_plan_takes_what_must_go_and_leaves_what_can_wait(city: tuple) -> None:
    reg, client, _ = city
    doc = plan(reg, client.query, _request(), now_s=NOW_S)
    planned = {b["bin_id"] for t in doc["trucks"] for s in t["stops"] for b in s["bins"]}
    skipped = {s["bin_id"]: s for s in doc["skipped"]}
    assert "bin-hot" in planned  # certain to overflow before Friday's shift: always planned
    # a bin that answers only BLIND_ZONE is at least full, not one whose level is unknown
    assert "bin-blind" in planned and doc["forecast"]["bin-blind"]["fill_pct"] >= 100
    assert "bin-cold" in skipped and skipped["bin-cold"]["overflow_probability"] < 0.01
    assert planned.isdisjoint(skipped) and planned | set(skipped) == {
        f"bin-{n}" for n in PROFILES
    }
    # every skipped bin carries the risk the plan accepts for it, and a reason
    assert all(0 <= s["overflow_probability"] <= 1 and s["reason"] for s in doc["skipped"])
    assert doc["violations"] == []
    # forecasts: the hot bin is expected well over 90 % at tomorrow's service
    assert doc["forecast"]["bin-hot"]["fill_pct"] > 90
    assert doc["forecast"]["bin-cold"]["fill_pct"] < 20


def test_every_plan_passes_the_checker(city: tuple) -> None:
    """The document's routes, rebuilt as the routing core's visits, pass its checker."""
    from backend import planning

    reg, client, _ = city
    seen = []
    real = planning.plan_day

    def spy(*a, **kw):  # type: ignore[no-untyped-def]
        dp = real(*a, **kw)
        seen.append(dp)
        return dp

    planning.plan_day = spy
    try:
        for seed in (1, 2, 3):
            plan(reg, client.query, _request(seed=seed), now_s=NOW_S)
    finally:
        planning.plan_day = real
    assert len(seen) == 3
    for dp in seen:
        routes = [(r.vehicle, list(r.visits)) for r in dp.result.routes]
        violations, _, _ = check_routes(dp.data, routes)
        assert violations == []


def test_same_request_same_plan(city: tuple) -> None:
    reg, client, _ = city
    a = plan(reg, client.query, _request(), now_s=NOW_S)
    b = plan(reg, client.query, _request(), now_s=NOW_S)
    for d in (a, b):
        d.pop("created_ms"), d.pop("source")
    assert a == b


def test_bad_requests_name_the_field(city: tuple) -> None:
    reg, client, _ = city
    with pytest.raises(PlanningError, match="date"):
        plan(reg, client.query, PlanRequest(M, "2026-13-01"), now_s=NOW_S)
    with pytest.raises(PlanningError, match="stream"):
        plan(reg, client.query, PlanRequest(M, PLAN_DATE, "glass"), now_s=NOW_S)
    with pytest.raises(PlanningError, match="stream"):
        plan(reg, client.query, PlanRequest(M, PLAN_DATE, "glas"), now_s=NOW_S)
    with pytest.raises(PlanningError, match="municipality_id"):
        plan(reg, client.query, PlanRequest("0999", PLAN_DATE), now_s=NOW_S)


def test_the_next_collection_is_searched_on_working_days() -> None:
    """From a weekday the search starts that day; from a weekend (tomorrow, asked on a Friday
    or a Saturday) it starts on Monday: trucks go out on working days only."""
    thursday = next_collection_days(PLAN_DATE)
    assert thursday[:4] == [PLAN_DATE, "2026-12-04", "2026-12-07", "2026-12-08"]
    for weekend in ("2026-12-05", "2026-12-06"):
        days = next_collection_days(weekend)
        assert days[0] == "2026-12-07" and days == next_collection_days("2026-12-07")
    for days in (thursday, next_collection_days("2026-12-05")):
        assert len(days) == 11 and all(dt.date.fromisoformat(d).weekday() < 5 for d in days)
    with pytest.raises(PlanningError, match="date"):
        next_collection_days("2026-12-32")


def test_stored_plan_is_the_one_the_dashboard_reads(city: tuple) -> None:
    reg, client, _ = city
    doc = plan_and_store(reg, client.query, _request(), now_s=NOW_S)
    again = plan_store.get(reg, M, doc["id"])
    assert again["trucks"] == doc["trucks"] and again["date"] == PLAN_DATE


def test_cli_plan_writes_sheets_and_schedule(
    city: tuple, influxdb: InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smartbins.cli import main

    _, client, tmp = city
    out = tmp_path / "out"
    config = tmp_path / "api.toml"
    secret = tmp_path / "influx"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, influxdb.password.encode() + b"\n")
    os.close(fd)
    config.write_text(
        f'[registry]\npath = "{tmp / "registry.sqlite"}"\n'
        f'[influxdb]\nurl = "{influxdb.url}"\ndatabase = "{client.database}"\n'
        f'username = "{influxdb.username}"\npassword_file = "{secret}"\n'
    )
    rc = main(["plan", "--config", str(config), "--municipality", M, "--date", PLAN_DATE,
               "--stream", "residual", "--iterations", "200", "--now", str(NOW_S),
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "plan.json").read_text())
    geo = json.loads((out / "plan.geojson").read_text())
    assert geo["type"] == "FeatureCollection"
    lines = [f for f in geo["features"] if f["geometry"]["type"] == "LineString"]
    assert {f["properties"]["truck_id"] for f in lines} == {t["truck_id"] for t in doc["trucks"]}
    for t in doc["trucks"]:
        sheet = (out / f"route-{t['truck_id']}.html").read_text()
        text = (out / f"route-{t['truck_id']}.txt").read_text()
        for s in t["stops"]:
            assert s["address"] in sheet and s["address"] in text
    with open(out / "schedule.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["bin_id"] for r in rows} == {
        b["bin_id"] for t in doc["trucks"] for s in t["stops"] for b in s["bins"]
    }
    assert "route sheet" in capsys.readouterr().out


def test_missing_readings_are_reported_not_guessed(city: tuple) -> None:
    reg, client, _ = city
    assets.add_bins(reg, M, [assets.NewBin("bin-new", "site-hot", "residual", 240)])
    try:
        doc = plan(reg, client.query, _request(), now_s=NOW_S)
        (s,) = [s for s in doc["skipped"] if s["bin_id"] == "bin-new"]
        assert s["reason"] == "no readings to forecast from" and s["overflow_probability"] == 1
        assert "bin-new" not in doc["forecast"]
    finally:
        assets.retire_bin(reg, "bin-new")


def test_fill_history_query_rejects_bad_times() -> None:
    with pytest.raises(ValueError, match="start_ms"):
        storage.fill_history_query(-5, 10)


@pytest.fixture(scope="module")
def api(city: tuple, influxdb: InfluxDB, tmp_path_factory: pytest.TempPathFactory):
    from fastapi.testclient import TestClient

    from backend.app import create_app
    from backend.settings import InfluxSettings, RegistrySettings, Settings
    from smartbins import tokens

    reg, client, tmp = city
    secret = tmp_path_factory.mktemp("api") / "influx"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, influxdb.password.encode() + b"\n")
    os.close(fd)
    settings = Settings(
        registry=RegistrySettings(path=tmp / "registry.sqlite"),
        influxdb=InfluxSettings(url=influxdb.url, database=client.database,
                                username=influxdb.username, password_env="SMARTBINS_UNSET",
                                password_file=secret),
    )
    who = {role: tokens.create(reg, role, role, [M])[1] for role in ("viewer", "planner")}
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c, {k: {"Authorization": f"Bearer {v}"} for k, v in who.items()}


def test_api_forecasts_and_bin_curve(api) -> None:
    c, auth = api
    r = c.get(f"/api/v1/municipalities/{M}/forecasts", headers=auth["viewer"])
    assert r.status_code == 200, r.text
    by_bin = {f["bin_id"]: f for f in r.json()}
    assert by_bin["bin-hot"]["level_pct"] > by_bin["bin-cold"]["level_pct"]
    assert by_bin["bin-cold"]["overflow_probability"] < by_bin["bin-hot"]["overflow_probability"]
    r = c.get(f"/api/v1/municipalities/{M}/bins/bin-hot/forecast?hours=24&step_h=6",
              headers=auth["viewer"])
    assert r.status_code == 200, r.text
    curve = r.json()["points"]
    assert len(curve) == 5 and all(p["lo_pct"] <= p["fill_pct"] <= p["hi_pct"] for p in curve)
    assert r.json()["time_to_full_ms"] is not None
    assert c.get(f"/api/v1/municipalities/{M}/forecasts").status_code == 401
    r = c.get(f"/api/v1/municipalities/{M}/bins/bin-hot/forecast?hours=1", headers=auth["viewer"])
    assert r.status_code == 422 and "hours" in r.text


def test_api_generate_needs_a_planner_and_stores_the_plan(api) -> None:
    c, auth = api
    url = f"/api/v1/municipalities/{M}/plans/generate"
    body = {"date": PLAN_DATE, "stream": "residual", "time_limit_s": 1}
    assert c.post(url, json=body, headers=auth["viewer"]).status_code == 403
    r = c.post(url, json={**body, "stream": "glas"}, headers=auth["planner"])
    assert r.status_code == 400 and "stream" in r.json()["detail"]
    r = c.post(url, json=body, headers=auth["planner"])
    assert r.status_code == 201, r.text
    plan_doc = r.json()
    r = c.get(f"/api/v1/municipalities/{M}/plans/{plan_doc['id']}", headers=auth["viewer"])
    assert r.status_code == 200 and r.json()["trucks"] == plan_doc["trucks"]


def test_forecast_overflow_alert_raised_once_and_resolved_when_planned(city: tuple) -> None:
    """A bin that will overflow but that no truck can take raises one forecast-overflow alert
    (deduplicated across plans); once a truck can take it, the next plan takes it and the
    alert is resolved."""
    from backend import alerts

    reg, client, _ = city
    assets.add_bins(reg, M, [assets.NewBin("bin-glass", "site-hot", "glass", 660)])
    reg.add_device("dev-glass", at_ms=(NOW_S - DAYS * 86400) * 1000 - 1)
    reg.link("dev-glass", "bin-glass", at_ms=(NOW_S - DAYS * 86400) * 1000 - 1)
    t0 = (NOW_S - DAYS * 86400) * 1000
    client.write_lines([
        storage.to_line(storage.reading_point(p.Reading(
            device="dev-glass", seq=h, boot=1, ts_ms=t0 + (h + 1) * HOUR * 1000, fw="1.0.0",
            interval_s=3600, distance_mm=500, fill_pct=round(fill, 2), battery_mv=3900)))
        for h, fill in enumerate(_series(93.0, 25.0, DAYS * 24))
    ], precision=storage.PRECISION)
    req = PlanRequest(M, PLAN_DATE, None, iterations=200)
    try:
        doc = plan_and_store(reg, client.query, req, now_s=NOW_S, channels=("mqtt",))
        (s,) = [s for s in doc["skipped"] if s["bin_id"] == "bin-glass"]
        assert s["reason"] == "no truck carries its stream" and s["overflow_probability"] > 0.5
        (a,) = alerts.alerts(reg, M, kind="forecast_overflow")
        assert (a.device_id, a.bin_id, a.state) == ("dev-glass", "bin-glass", "open")
        plan_and_store(reg, client.query, req, now_s=NOW_S, channels=("mqtt",))
        assert len(alerts.alerts(reg, M, kind="forecast_overflow")) == 1  # not repeated
        assets.add_truck(reg, M, "truck-glass", "depot", [assets.Compartment("glass", 8_000)])
        assets.update_disposal_site(reg, "arc", {"streams": ["residual", "glass"]})
        doc = plan_and_store(reg, client.query, req, now_s=NOW_S, channels=("mqtt",))
        assert "bin-glass" in {b["bin_id"] for t in doc["trucks"] for s in t["stops"]
                               for b in s["bins"]}
        (a,) = alerts.alerts(reg, M, kind="forecast_overflow")
        assert a.state == "resolved"
    finally:
        reg.unlink("dev-glass")
        assets.retire_bin(reg, "bin-glass")



def _add_bins(reg: Registry, client, stream: str, profiles: dict[str, tuple[float, float]]):
    """Bins of ``stream`` at site-cold with a device each and 14 days of sawtooth readings."""
    t0 = (NOW_S - DAYS * 86400) * 1000
    assets.add_bins(reg, M, [assets.NewBin(f"bin-{n}", "site-cold", stream, 660)
                             for n in profiles])
    lines = []
    for n, (level, rate) in profiles.items():
        reg.add_device(f"dev-{n}", at_ms=t0 - 1)
        reg.link(f"dev-{n}", f"bin-{n}", at_ms=t0 - 1)
        lines += [storage.to_line(storage.reading_point(p.Reading(
            device=f"dev-{n}", seq=h, boot=1, ts_ms=t0 + (h + 1) * HOUR * 1000, fw="1.0.0",
            interval_s=3600, distance_mm=500, fill_pct=round(fill, 2), battery_mv=3900)))
            for h, fill in enumerate(_series(level, rate, DAYS * 24))]
    client.write_lines(lines, precision=storage.PRECISION)


def test_a_stream_goes_out_only_when_one_of_its_bins_is_due(city: tuple) -> None:
    """Trips, as in the closed loop: residual has a bin certain to overflow before Friday, so
    it goes out and takes what would be at risk before its look-ahead; the glass bins are all
    far from full, so glass makes no trip today and its bins wait for Friday, each with its
    risk and the reason. Once a glass bin is due, glass goes out."""
    reg, client, _ = city
    if not any(c.stream == "glass" for t in assets.trucks(reg, M) for c in t.compartments):
        assets.add_truck(reg, M, "truck-glass", "depot", [assets.Compartment("glass", 8_000)])
        assets.update_disposal_site(reg, "arc", {"streams": ["residual", "glass"]})
    slow = {"g-low": (20.0, 4.0), "g-mid": (45.0, 5.0)}
    _add_bins(reg, client, "glass", slow)
    try:
        doc = plan(reg, client.query, PlanRequest(M, PLAN_DATE, None, iterations=200),
                   now_s=NOW_S)
        assert doc["max_risk"] == 0.95 and doc["violations"] == []
        res, glass = doc["trips"]["residual"], doc["trips"]["glass"]
        assert glass == {"trip": False, "lookahead_days": glass["lookahead_days"],
                         "next_opportunity": "2026-12-04"}  # Friday: the next working day
        k = res["lookahead_days"]
        assert res["trip"] and res["next_opportunity"] == next_workdays(PLAN_DATE, k)[-1]
        planned = {b["bin_id"]: b["stream"] for t in doc["trucks"] for s in t["stops"]
                   for b in s["bins"]}
        assert "bin-hot" in planned and "glass" not in planned.values()
        skipped = {s["bin_id"]: s for s in doc["skipped"]}
        for n in slow:
            assert skipped[f"bin-{n}"]["reason"] == (
                "no glass trip today: none of its bins is due before 2026-12-04")
            assert skipped[f"bin-{n}"]["overflow_probability"] < 0.01
        for s in doc["skipped"]:
            if s["stream"] == "residual":
                assert s["reason"].endswith(f"({res['next_opportunity']})")
        # the next collection of glass: planned day by day, each quiet day stored with no
        # trucks, up to the first working day on which one of its bins is due
        doc = plan_and_store(reg, client.query, PlanRequest(M, PLAN_DATE, "glass",
                                                            iterations=100),
                             now_s=NOW_S, next_collection=True)
        assert doc["date"] > PLAN_DATE and doc["trucks"] and doc["trips"]["glass"]["trip"]
        assert "bin-g-mid" in {b["bin_id"] for t in doc["trucks"] for s in t["stops"]
                               for b in s["bins"]}
        quiet = [d for d in next_collection_days(PLAN_DATE) if d < doc["date"]]
        assert quiet[0] == PLAN_DATE and all(d[5:] not in ("12-05", "12-06") for d in quiet)
        for d in quiet:
            (q,) = plan_store.for_date(reg, M, d, "glass")
            assert q["trucks"] == [] and not q["trips"]["glass"]["trip"]
        # a glass bin certain to overflow before Friday sends glass out, with what is on the way
        _add_bins(reg, client, "glass", {"g-hot": (96.0, 30.0)})
        doc = plan(reg, client.query, PlanRequest(M, PLAN_DATE, None, iterations=200),
                   now_s=NOW_S)
        assert doc["trips"]["glass"]["trip"]
        planned = {b["bin_id"] for t in doc["trucks"] for s in t["stops"] for b in s["bins"]}
        assert "bin-g-hot" in planned and doc["violations"] == []
    finally:
        for n in [*slow, "g-hot"]:
            if any(b.id == f"bin-{n}" for b in assets.bins(reg, M)):
                reg.unlink(f"dev-{n}")
                assets.retire_bin(reg, f"bin-{n}")
