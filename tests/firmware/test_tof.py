"""The VL53L1X time-of-flight driver (firmware/vl53l1x.py) on the real `micropython`, against
hw_fake's register-level fake sensor: the distance it reads, no speed-of-sound compensation,
bad range statuses and measurements that never come give the error flag and never a level, a
sensor that is not there, not booted or not a VL53L1X is a bus error that says why, and a
whole wake with `sensor: tof` delivers the right fill through a real broker."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from fwtools import FIRMWARE, Acknowledger, FakeDevice, Fleet, mp_run

from smartbins import protocol as p
from smartbins.provisioning import Credentials
from smartbins.registry import SENSORS

CAL = {"cal": 2, "empty_mm": 1800, "full_mm": 200}
TIMEOUT = int(p.SensorError.ECHO_TIMEOUT)
BUS = int(p.SensorError.BUS_ERROR)
# Registers (ST's VL53L1X datasheet and ultra-lite driver), as the driver must use them.
SYSTEM_STATUS, MODEL_ID, CONFIG, MODE_START, CLEAR, VHV_BOUND, VHV_INIT = (
    0x00E5,
    0x010F,
    0x002D,
    0x0087,
    0x0086,
    0x0008,
    0x000B,
)


def driver(*scenarios: dict[str, Any], n: int = 7) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run vl53l1x.pings() once per scenario under micropython; (module facts, answers)."""
    stdin = "".join(json.dumps({"scenario": sc, "n": n}) + "\n" for sc in scenarios)
    lines = mp_run(FIRMWARE.parent / "tests/firmware/mp_vl53l1x.py", stdin).splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:]]


@pytest.fixture
def tof(fake_device: FakeDevice) -> FakeDevice:
    fake_device.configure(
        {
            "device": "fw-tof-0001",
            "password": "unused",
            "broker": {"host": "127.0.0.1", "port": 9},
            "sensor": "tof",
            "calibration": CAL,
        }
    )
    return fake_device


def one_reading(dev: FakeDevice, **scenario: object) -> dict[str, Any]:
    """One wake without network; the reading it buffered."""
    dev.scenario(wifi=False, **scenario)
    before = {r["seq"] for r in dev.records()} if (dev.dir / "buffer.bin").exists() else set()
    dev.run(1)
    (new,) = [r for r in dev.records() if r["seq"] not in before]
    return new


def test_driver_sequence_and_the_scenario_distance() -> None:
    facts, (ok,) = driver({"distance_mm": 1234.0})
    assert facts == {"sensors": list(SENSORS), "config_len": 0x87 - 0x2D + 1}
    assert ok["mm"] == [1234] * 7
    log = [tuple(x) if not isinstance(x[2], list) else (x[0], x[1], tuple(x[2])) for x in ok["log"]]
    # Boot polled, identity checked, then the whole default block in one write from 0x2D.
    first_write = next(i for i, x in enumerate(log) if x[0] == "w")
    assert all(x[:2] == ("r", SYSTEM_STATUS) for x in log[: first_write - 1])
    assert log[first_write - 1] == ("r", MODEL_ID, 2)
    assert log[first_write] == ("w", CONFIG, 91)
    writes = [x for x in log if x[0] == "w"][1:]
    # Calibration ranging (start, clear, stop), VHV settings, then ranging for the pings.
    assert writes[:5] == [
        ("w", MODE_START, (0x40,)),
        ("w", CLEAR, (0x01,)),
        ("w", MODE_START, (0x00,)),
        ("w", VHV_BOUND, (0x09,)),
        ("w", VHV_INIT, (0x00,)),
    ]
    assert writes[5] == ("w", MODE_START, (0x40,))
    assert writes[6:-1] == [("w", CLEAR, (0x01,))] * 7
    assert writes[-1] == ("w", MODE_START, (0x00,))  # stopped: the sensor is quiet again
    # Eight measurements of the 100 ms budget each, on the injected clock.
    assert 800 <= ok["ms"] < 1000


def test_bad_status_and_never_ready_measurements_give_none() -> None:
    _, (mixed, stuck) = driver(
        {"distance_mm": 900.0, "pings": ["ok", "bad_status", "timeout", "spike"]},
        {"pings": ["timeout"]},
    )
    assert mixed["mm"] == [900, None, None, 333, 900, None, None]
    assert stuck["mm"] == [None] * 7
    # Each measurement that never comes costs its own budget (300 ms) and no more.
    assert 7 * 300 <= stuck["ms"] < 7 * 300 + 300


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"tof_model_id": 0xEACD}, "model id 0xeacd at I2C 0x29 is not a VL53L1X (0xeacc)"),
        ({"tof_boots": False}, "did not boot within 100 ms"),
        ({"tof_absent": True}, "no answer on I2C at 0x29"),
        ({"tof_ready": False}, "calibration ranging not ready within 300 ms"),
    ],
)
def test_a_sensor_that_is_not_usable_is_a_bus_error_that_says_why(
    tof: FakeDevice, scenario: dict[str, Any], message: str
) -> None:
    r = one_reading(tof, **scenario)
    assert r["mm"] is None and r["fill"] is None
    assert r["flags"] & p.Flag.SENSOR_ERROR
    assert r["err"] == [BUS]
    assert message in tof.runs[-1].stderr


def test_distance_is_not_compensated_for_temperature(tof: FakeDevice) -> None:
    """Light: the same distance at -20 and +50 °C (an echo time would differ by 12 %)."""
    cold = one_reading(tof, distance_mm=1000.0, temp_c=-20.0)
    warm = one_reading(tof, distance_mm=1000.0, temp_c=50.0)
    failed = one_reading(tof, distance_mm=1000.0, temp_fail=True)
    assert cold["mm"] == warm["mm"] == failed["mm"] == 1000
    assert failed["flags"] & p.Flag.TEMP_SENSOR_ERROR
    assert cold["fill"] == pytest.approx((1800 - 1000) * 100 / 1600, abs=0.05)


def test_spikes_bad_statuses_and_timeouts_do_not_move_the_level(tof: FakeDevice) -> None:
    clean = one_reading(tof, distance_mm=700.0)
    r = one_reading(
        tof, distance_mm=700.0, pings=["bad_status", "ok", "spike", "timeout", "ok", "ok", "ok"]
    )
    assert (r["mm"], r["fill"]) == (clean["mm"], clean["fill"])
    assert clean["mm"] == 700 and clean["fill"] == pytest.approx(68.75, abs=0.05)
    assert not r["flags"] & p.Flag.SENSOR_ERROR


def test_mostly_bad_or_never_ready_gives_the_error_flag_never_a_level(tof: FakeDevice) -> None:
    for pings in (["bad_status"], ["timeout"], ["bad_status", "timeout", "bad_status", "ok"]):
        r = one_reading(tof, distance_mm=700.0, pings=pings)
        assert r["mm"] is None and r["fill"] is None, pings
        assert r["flags"] & p.Flag.SENSOR_ERROR
        assert r["err"] == [TIMEOUT]
    # A sensor that never answers costs its time budget, not an endless wait.
    assert tof.wakes()[-1]["steps"]["measure"] < 4000


def test_blind_zone_is_the_tof_minimum_range(tof: FakeDevice) -> None:
    assert one_reading(tof, distance_mm=120.0)["mm"] == 120  # an ultrasonic sensor is blind here
    r = one_reading(tof, distance_mm=30.0)
    assert r["mm"] is None and r["err"] == [int(p.SensorError.BLIND_ZONE)]


def test_unknown_sensor_in_config_fails_the_wake_and_says_so(tof: FakeDevice) -> None:
    settings = json.loads((tof.dir / "config.json").read_text())
    tof.configure({**settings, "sensor": "lidar"})
    tof.scenario(wifi=False)
    tof.run(1, check=False)
    assert "sensor 'lidar' is not one of" in tof.runs[-1].stderr
    assert tof.wakes()[-1]["errors"]


def test_wake_with_tof_publishes_the_right_fill_through_the_broker(
    fleet: Fleet,
    fake_device: FakeDevice,
    acknowledger_factory: Callable[[int, Credentials], Acknowledger],
) -> None:
    settings = fleet.provision("fw-tof-wake", "bin-60", fake_device, "--sensor", "tof")
    assert settings["sensor"] == "tof"
    fake_device.configure({**settings, "calibration": CAL})
    acker = acknowledger_factory(fleet.port, fleet.gateway)
    acker.now = fake_device.true_now
    acker.wait_ready()
    fake_device.scenario(distance_mm=520.0, temp_c=-15.0, pings=["ok", "spike", "bad_status"])
    fake_device.run(1)
    (reading,) = [r for (d, _), r in acker.readings.items() if d == "fw-tof-wake"]
    assert reading.distance_mm == 520
    assert reading.fill_pct == pytest.approx((1800 - 520) * 100 / 1600, abs=0.05)
    assert reading.cal == 2
    assert not reading.flags & (p.Flag.SENSOR_ERROR | p.Flag.UNCALIBRATED)
    assert fake_device.live() == []  # acknowledged end to end


def test_every_ping_pattern_gives_its_value_within_its_budget() -> None:
    """Seeded random patterns through the real driver: each ping is the true distance (or the
    spike), or None for a bad status or a measurement that never came, never anything else;
    and the whole series costs at most one budget per measurement on the injected clock."""
    rng = random.Random(6)
    kinds = ["ok", "spike", "timeout", "bad_status"]
    scenarios = []
    for _ in range(40):
        scenarios.append(
            {
                "distance_mm": float(rng.randint(40, 4000)),
                "pings": [rng.choice(kinds) for _ in range(rng.randint(1, 9))],
            }
        )
    _, answers = driver(*scenarios)
    for sc, got in zip(scenarios, answers, strict=True):
        d = sc["distance_mm"]
        expect = {"ok": int(d + 0.5), "spike": int(d * 0.37 + 0.5)}
        want = [expect.get(sc["pings"][i % len(sc["pings"])]) for i in range(7)]
        assert got["mm"] == want, sc
        assert got["ms"] <= 8 * 300 + 2, sc  # calibration ranging + 7, each within 300 ms
