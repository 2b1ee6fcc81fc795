"""The SQLite registry: migrations, bins and streams, and the device-to-bin history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smartbins import protocol as p
from smartbins.registry import (
    MIGRATIONS,
    SCHEMA_VERSION,
    THRESHOLDS,
    UNCALIBRATED_EMPTY_MM,
    UNCALIBRATED_FULL_MM,
    Registry,
    RegistryError,
)


@pytest.fixture
def reg(registry_path: Path) -> Registry:
    r = Registry(registry_path)
    r.add_municipality("0101", "Københavns Kommune")
    r.add_site("s1", "0101", 55.68, 12.57, "Kongens Nytorv")
    r.add_bin("b1", "s1", "Paper+Cardboard", 660)
    r.add_bin("b2", "s1", "glass", 1500)
    r.add_device("d1", at_ms=1_000)
    yield r
    r.close()


def test_new_database_is_migrated_to_the_current_version(registry_path: Path) -> None:
    with Registry(registry_path) as r:
        assert r.version == SCHEMA_VERSION
    with Registry(registry_path) as r:  # reopening migrates nothing and loses nothing
        assert r.version == SCHEMA_VERSION


def test_database_newer_than_the_code_is_refused(registry_path: Path) -> None:
    db = sqlite3.connect(registry_path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RegistryError, match="newer than this smartbins knows"):
        Registry(registry_path)


def test_bins_keep_the_canonical_stream(reg: Registry) -> None:
    assert reg.bin("b1").stream == "paper+cardboard"
    assert (reg.bin("b1").lat, reg.bin("b1").municipality_id) == (55.68, "0101")
    with pytest.raises(
        RegistryError, match="bin 'b3': stream 'food\\+glass': these fractions may not share"
    ):
        reg.add_bin("b3", "s1", "food+glass", 240)
    with pytest.raises(RegistryError, match="no site 'nowhere'"):
        reg.add_bin("b3", "nowhere", "glass", 240)


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "a#", "-lead", "x" * 65, "smartbins.gateway"])
def test_device_ids_are_safe_as_username_and_topic_level(reg: Registry, bad: str) -> None:
    with pytest.raises(RegistryError, match="a device id is 1-64 of"):
        reg.add_device(bad)


def test_a_device_has_a_known_distance_sensor(reg: Registry) -> None:
    reg.add_device("d-tof", sensor="tof")
    assert (reg.device("d-tof").sensor, reg.device("d1").sensor) == ("tof", "ultrasonic")
    with pytest.raises(RegistryError, match="sensor 'lidar' is not one of ultrasonic, tof"):
        reg.add_device("d-lidar", sensor="lidar")


def test_moving_a_device_keeps_its_history(reg: Registry) -> None:
    reg.link("d1", "b1", at_ms=1_000)
    reg.link("d1", "b2", at_ms=5_000)
    assert [(h.bin_id, h.from_ms, h.to_ms) for h in reg.history("d1")] == [
        ("b1", 1_000, 5_000),
        ("b2", 5_000, None),
    ]
    assert reg.bin_at("d1", 999) is None
    assert reg.bin_at("d1", 1_000) == "b1"
    assert reg.bin_at("d1", 4_999) == "b1"
    assert reg.bin_at("d1", 5_000) == "b2"
    with pytest.raises(RegistryError, match="is not after its link"):
        reg.link("d1", "b1", at_ms=4_000)


def test_a_bin_has_at_most_one_device(reg: Registry) -> None:
    reg.add_device("d2")
    reg.link("d1", "b1", at_ms=1_000)
    with pytest.raises(RegistryError, match="bin 'b1' already has device 'd1'"):
        reg.link("d2", "b1")


def test_failed_transaction_leaves_nothing(reg: Registry) -> None:
    with pytest.raises(RegistryError), reg.transaction():
        reg.add_device("d9")
        reg.link("d9", "no-such-bin")
    with pytest.raises(RegistryError, match="no device 'd9'"):
        reg.device("d9")


def test_calibration_versions_increase(reg: Registry) -> None:
    assert reg.set_calibration("d1", 1200, 150) == 1
    assert reg.set_calibration("d1", 1180, 150) == 2
    assert (reg.device("d1").empty_mm, reg.device("d1").cal) == (1180, 2)
    with pytest.raises(RegistryError, match="must be below empty_mm"):
        reg.set_calibration("d1", 100, 900)


def test_a_version_2_database_keeps_its_devices_and_gains_their_default_config(
    registry_path: Path,
) -> None:
    db = sqlite3.connect(registry_path)
    for migration in MIGRATIONS[:2]:
        db.executescript(migration)
    db.execute(
        "INSERT INTO devices (id, state, sensor, cal, empty_mm, full_mm, created_ms, updated_ms)"
        " VALUES ('old-1', 'active', 'ultrasonic', 4, 1500, 300, 1, 1)"
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    with Registry(registry_path) as r:
        assert r.version == SCHEMA_VERSION
        config = r.config("old-1", server_ts_ms=1_764_000_000_000)
    defaults = p.DeviceConfig("old-1", 1_764_000_000_000, 4, 1500, 300)
    assert config == defaults  # what it has been running with: protocol defaults


def test_every_threshold_has_a_column(reg: Registry) -> None:
    """A field added to protocol.DeviceConfig needs a migration: this test says so."""
    columns = {row[1] for row in reg.db.execute("PRAGMA table_info(devices)")}
    assert set(THRESHOLDS) <= columns
    assert len(THRESHOLDS) == len(p.CONFIG_FIELDS) - 4  # all but server_ts, cal, empty, full


def test_thresholds_are_kept_through_calibration_and_validated(reg: Registry) -> None:
    reg.add_device("d-cfg", thresholds={"interval_s": 1800, "tilt_deg": 30.0})
    assert reg.thresholds("d-cfg")["interval_s"] == 1800
    config = reg.set_thresholds("d-cfg", {"near_full_pct": 75.0})
    assert (config.interval_s, config.tilt_deg, config.near_full_pct) == (1800, 30.0, 75.0)
    # Uncalibrated: the firmware's own distances with cal 0, so it stays UNCALIBRATED.
    assert (config.cal, config.empty_mm, config.full_mm) == (
        0,
        UNCALIBRATED_EMPTY_MM,
        UNCALIBRATED_FULL_MM,
    )
    assert reg.set_calibration("d-cfg", 1300, 250) == 1
    config = reg.config("d-cfg")
    assert (config.cal, config.empty_mm, config.full_mm) == (1, 1300, 250)
    assert (config.interval_s, config.tilt_deg, config.near_full_pct) == (1800, 30.0, 75.0)
    before = reg.thresholds("d-cfg")
    with pytest.raises(RegistryError, match=r"config interval: 5 is out of range \[10, 604800\]"):
        reg.set_thresholds("d-cfg", {"interval_s": 5, "tilt_deg": 10.0})
    with pytest.raises(RegistryError, match="near_full: 'high' is not a number"):
        reg.set_thresholds("d-cfg", {"near_full_pct": "high"})  # type: ignore[dict-item]
    with pytest.raises(RegistryError, match="intervall_s: not a config threshold"):
        reg.set_thresholds("d-cfg", {"intervall_s": 60})
    with pytest.raises(RegistryError, match="config fire_temp"):
        reg.add_device("d-bad", thresholds={"fire_temp_c": -5.0})
    assert reg.thresholds("d-cfg") == before
    with pytest.raises(RegistryError, match="no device 'd-bad'"):
        reg.device("d-bad")
