"""Measurement on the real `micropython` with fake sensors: temperature compensation against
the exact speed of sound, spikes and timeouts that must not move the level, sensor errors that
give an error flag and never a bogus level."""

from __future__ import annotations

import json
import math

import pytest
from fwtools import FIRMWARE, FakeDevice, mp_run

from smartbins import protocol as p

TRUE_MM = 1500.0
CAL = {"cal": 3, "empty_mm": 2000, "full_mm": 300}


def one_reading(dev: FakeDevice, **scenario: object) -> dict:
    """Run one wake without network and return the reading it buffered."""
    dev.scenario(wifi=False, **scenario)
    before = {r["seq"] for r in dev.records()} if (dev.dir / "buffer.bin").exists() else set()
    dev.run(1)
    (new,) = [r for r in dev.records() if r["seq"] not in before]
    return new


@pytest.fixture
def calibrated(fake_device: FakeDevice) -> FakeDevice:
    fake_device.configure(
        {
            "device": "fw-test-0001",
            "password": "unused",
            "broker": {"host": "127.0.0.1", "port": 9},
            "calibration": CAL,
        }
    )
    return fake_device


def test_temperature_compensation_within_half_a_percent(calibrated: FakeDevice) -> None:
    """The fake's echo times come from 331.3·sqrt(1+T/273.15); the firmware compensates with
    331.3 + 0.606·T. From -20 to +50 °C the distance stays within 0.5 % of the truth."""
    worst = 0.0
    for t in range(-20, 51, 5):
        r = one_reading(calibrated, distance_mm=TRUE_MM, temp_c=float(t))
        assert r["temp"] == pytest.approx(t)
        err = abs(r["mm"] - TRUE_MM) / TRUE_MM
        worst = max(worst, err)
        assert err < 0.005, (t, r["mm"])
    # Without compensation (speed at 20 °C) the error at -20 °C would be about 7 %: the test
    # distinguishes compensation from none.
    assert worst > 0.0005


def test_failed_temp_sensor_is_flagged_and_compensates_at_20_c(calibrated: FakeDevice) -> None:
    r = one_reading(calibrated, distance_mm=TRUE_MM, temp_c=-20.0, temp_fail=True)
    assert r["flags"] & p.Flag.TEMP_SENSOR_ERROR
    assert "temp" not in r or r["temp"] is None
    assert abs(r["mm"] - TRUE_MM) / TRUE_MM > 0.05  # compensated as at 20 °C: visibly off


def test_spikes_and_timeouts_do_not_move_the_level(calibrated: FakeDevice) -> None:
    clean = one_reading(calibrated, distance_mm=TRUE_MM, temp_c=12.0)
    for pattern in (
        ["ok", "spike", "ok", "timeout", "ok", "ok", "spike"],
        ["timeout", "timeout", "ok", "ok", "spike", "ok", "timeout"],
        ["spike", "spike", "ok", "ok", "ok", "ok", "ok"],
    ):
        r = one_reading(calibrated, distance_mm=TRUE_MM, temp_c=12.0, pings=pattern)
        assert (r["mm"], r["fill"]) == (clean["mm"], clean["fill"]), pattern
        assert not r["flags"] & p.Flag.SENSOR_ERROR
    assert clean["fill"] == pytest.approx((2000 - TRUE_MM) * 100 / 1700, abs=0.2)


def test_too_many_timeouts_give_an_error_never_a_level(calibrated: FakeDevice) -> None:
    r = one_reading(
        calibrated, pings=["timeout", "timeout", "ok", "timeout", "ok", "timeout", "timeout"]
    )
    assert r.get("mm") is None and r.get("fill") is None
    assert r["flags"] & p.Flag.SENSOR_ERROR
    assert r["err"] == [int(p.SensorError.ECHO_TIMEOUT)]
    # ... and the protocol accepts it as a valid reading (with the clock set by a later wake).
    wire = {k: v for k, v in r.items() if k != "rtc" and v is not None and v != []}
    p.Reading(
        device="fw-test-0001",
        ts_ms=1764000000000,
        **{s.attr: wire.get(s.key) for s in p.READING_FIELDS if s.key in wire},
    )


def test_disagreeing_pings_give_unstable(calibrated: FakeDevice) -> None:
    """Two pings say 'full', two say 'empty': no majority, so no level."""
    pings = ["ok", "spike", "timeout", "spike", "ok", "timeout", "timeout"]
    r = one_reading(calibrated, pings=pings)
    assert r["mm"] is None and r["flags"] & p.Flag.SENSOR_ERROR
    assert r["err"] == [int(p.SensorError.UNSTABLE)]


def test_blind_zone_tilt_battery_and_fire(calibrated: FakeDevice) -> None:
    r = one_reading(calibrated, distance_mm=120.0)
    assert r["mm"] is None and r["err"] == [int(p.SensorError.BLIND_ZONE)]
    r = one_reading(calibrated, tilt_deg=70.0, bat_mv=3100)
    assert r["tilt"] == pytest.approx(70.0, abs=0.1)
    assert r["flags"] & p.Flag.TILT and r["flags"] & p.Flag.LOW_BATTERY
    assert r["interval"] == 14400  # low battery: the long interval
    r = one_reading(calibrated, temp_c=75.0)
    assert r["flags"] & p.Flag.FIRE and r["interval"] == 900
    r = one_reading(calibrated, temp_c=10.0)
    r = one_reading(calibrated, temp_c=31.0)  # a rise of 21 °C between two wakes
    assert r["flags"] & p.Flag.FIRE
    r = one_reading(calibrated, distance_mm=500.0, temp_c=10.0)  # 88 % full
    assert r["flags"] & p.Flag.NEAR_FULL and r["interval"] == 900


def test_pure_functions_under_micropython() -> None:
    reqs = [
        {"fn": "sound_speed", "args": [0.0]},
        {"fn": "robust_distance", "args": [[800, 801, None, 300, 799, 802, None]]},
        {"fn": "robust_distance", "args": [[800, None, None, None, None, None, 799]]},
        {"fn": "fill_pct", "args": [1150, 2000, 300]},
        {"fn": "tilt_deg", "args": [0.0, 0.0, -1.0]},
    ]
    out = [
        json.loads(x)
        for x in mp_run(
            FIRMWARE.parent / "tests/firmware/mp_measure.py",
            "".join(json.dumps(r) + "\n" for r in reqs),
        ).split("\n")
        if x
    ]
    assert out[0] == pytest.approx(331.3)
    assert out[1] == [800.5, 0]  # the 300 mm spike is rejected
    assert out[2] == [None, int(p.SensorError.ECHO_TIMEOUT)]
    assert out[3] == pytest.approx(50.0)
    assert out[4] == pytest.approx(180.0)
    assert math.isfinite(out[0])
