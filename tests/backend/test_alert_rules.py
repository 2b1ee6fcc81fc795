"""The alert rules and store without a broker: conditions per kind, deduplication, a
redelivered reading changing nothing, offline with an injected clock, clearing."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend import alerts
from smartbins import protocol as p
from smartbins.registry import Registry

T0 = 1_800_000_000_000
THRESHOLDS = {"fire_temp_c": 70.0, "tilt_deg": 45.0, "low_battery_mv": 3300}


def reading(seq: int, ts: int, **kw: object) -> p.Reading:
    values = {"distance_mm": 500, "fill_pct": 50.0, "temp_c": 15.0, "tilt_deg": 1.0,
              "battery_mv": 3900, **kw}
    return p.Reading(device="d1", seq=seq, boot=1, ts_ms=ts, fw="1", interval_s=600,
                     **values)  # type: ignore[arg-type]


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    r = Registry(tmp_path / "r.sqlite")
    r.add_municipality("0101", "K")
    r.add_site("s", "0101", 55.0, 12.0)
    r.add_bin("b", "s", "glass", 1500, full_pct=80.0)
    r.add_device("d1", at_ms=T0 - 1)
    r.link("d1", "b", at_ms=T0 - 1)
    return r


@pytest.mark.parametrize(("kind", "values"), [
    ("full", {"fill_pct": 85.0}),
    ("fire", {"temp_c": 75.0}),
    ("fire", {"flags": int(p.Flag.FIRE)}),
    ("tilt", {"tilt_deg": 90.0}),
    ("low_battery", {"battery_mv": 3200}),
    ("sensor_fault", {"distance_mm": None, "fill_pct": None, "errors": (3,)}),
    ("sensor_fault", {"fill_pct": 250.0}),
])
def test_each_kind_is_raised_by_its_condition_only(kind: str, values: dict) -> None:
    raised = {k for k, (up, _) in alerts.conditions(reading(1, T0, **values), THRESHOLDS, 80.0,
                                                    1).items() if up}
    assert raised == {kind}


def test_stuck_distance_is_a_sensor_fault() -> None:
    c = alerts.conditions(reading(1, T0), THRESHOLDS, 80.0, alerts.STUCK_READINGS)
    assert c["sensor_fault"] == (True, "distance stuck at 500 mm for 48 readings")


def test_dedup_redelivery_clearing_and_offline(reg: Registry) -> None:
    ch = ("webhook",)
    assert len(alerts.process_reading(reg, reading(1, T0, temp_c=80.0), ch, T0)) == 1
    assert alerts.process_reading(reg, reading(1, T0, temp_c=80.0), ch, T0) == []  # redelivered
    assert alerts.process_reading(reg, reading(2, T0 + 1, temp_c=90.0), ch, T0) == []  # same fire
    assert [a.kind for a in alerts.alerts(reg, "0101", "open")] == ["fire"]
    alerts.process_reading(reg, reading(3, T0 + 2, temp_c=20.0), ch, T0 + 2)  # cleared
    (fire,) = alerts.alerts(reg, "0101")
    assert fire.state == "resolved"
    assert [e["actor"] for e in alerts.history(reg, fire.id)] == ["engine", "engine"]
    assert len(alerts.due(reg, "webhook", T0 + 2)) == 1  # one delivery: the opening
    # Offline: three intervals (600 s) after the newest reading, not before.
    assert alerts.check_offline(reg, ch, T0 + 2 + 1_800_000) == []
    (new,) = alerts.check_offline(reg, ch, T0 + 3 + 1_800_000)
    assert alerts.check_offline(reg, ch, T0 + 9_000_000) == []  # deduplicated
    alerts.process_reading(reg, reading(4, T0 + 9_000_000), ch, T0 + 9_000_000)
    assert alerts.alert(reg, new).state == "resolved"


def test_delivery_backoff_doubles(reg: Registry) -> None:
    alerts.process_reading(reg, reading(1, T0, tilt_deg=80.0), ("webhook",), T0)
    ((event, _),) = alerts.due(reg, "webhook", T0)
    alerts.failed(reg, event, "webhook", T0, "down")
    assert alerts.due(reg, "webhook", T0 + 999) == []
    assert len(alerts.due(reg, "webhook", T0 + 1000)) == 1
    alerts.failed(reg, event, "webhook", T0 + 1000, "down")
    assert alerts.due(reg, "webhook", T0 + 2999) == []
    alerts.delivered(reg, event, "webhook", T0 + 3000)
    assert alerts.due(reg, "webhook", T0 + 10**9) == []


def test_seeded_devices_are_found_offline(reg: Registry) -> None:
    assert alerts.seed_devices(reg, {"d1": (T0, 600)}) == 1
    assert alerts.seed_devices(reg, {"d1": (T0 + 5, 600)}) == 0  # what the engine saw wins
    assert len(alerts.check_offline(reg, (), T0 + 1_800_001)) == 1
