"""The technicians' commands against a real broker, registry and InfluxDB: provision (single
and bulk), revoke, rotate, move, decommission, device config and calibrate (each publishes the
device's recorded config, applied by the firmware at its next wake), flash --dry-run, and the
settings file."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from fwtools import FIRMWARE, FakeDevice, Fleet, mp_run

from smartbins import protocol as p
from smartbins import storage
from smartbins.cli.flash import flash_commands
from smartbins.deviceops import DeviceSettings, empty_distance
from smartbins.passwords import verify_password
from smartbins.registry import UNCALIBRATED_EMPTY_MM, UNCALIBRATED_FULL_MM, Registry
from smartbins.servers import InfluxDB
from smartbins.settings import ConfigError, load


def provision(fleet: Fleet, *argv: str) -> int:
    return fleet.cli(
        "provision",
        *argv,
        *fleet.cli_args(),
        "--out",
        str(fleet.configs),
        "--broker-host",
        "127.0.0.1",
        "--broker-port",
        str(fleet.port),
    )


def config_of(fleet: Fleet, device: str) -> dict:
    return json.loads((fleet.configs / device / "config.json").read_text())


def test_provision_writes_a_private_config_and_never_prints_the_secret(
    fleet: Fleet, capsys: pytest.CaptureFixture[str], mqtt_probe_factory
) -> None:
    assert provision(fleet, "cli-0001", "--bin", "bin-10") == 0
    out = capsys.readouterr()
    path = fleet.configs / "cli-0001" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cfg = config_of(fleet, "cli-0001")
    assert cfg["device"] == "cli-0001" and cfg["broker"] == {
        "host": "127.0.0.1",
        "port": fleet.port,
    }
    secret = cfg["password"]
    assert len(secret) >= 24
    assert secret not in out.out + out.err
    assert verify_password(secret, fleet.server.passwords.read()["cli-0001"])
    with Registry(fleet.registry_path) as reg:
        assert reg.current_link("cli-0001").bin_id == "bin-10"  # type: ignore[union-attr]
    probe = mqtt_probe_factory(fleet.port, "cli-0001", secret, client_id="cli-0001")
    assert not probe.connect().is_failure


def test_bulk_provisions_all_or_nothing(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    good.write_text("device_id,bin_id\ncli-b1,bin-11\ncli-b2,bin-12\ncli-b3,bin-13,tof\n")
    assert provision(fleet, "--bulk", str(good)) == 0
    assert all((fleet.configs / d / "config.json").exists() for d in ("cli-b1", "cli-b2", "cli-b3"))
    assert config_of(fleet, "cli-b3")["sensor"] == "tof"
    before = fleet.server.passwd_path.read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("cli-b4,bin-14\ncli-b5,no-such-bin\n")
    assert provision(fleet, "--bulk", str(bad)) == 1
    assert fleet.server.passwd_path.read_text() == before
    assert not (fleet.configs / "cli-b4").exists()
    with Registry(fleet.registry_path) as reg:
        assert "cli-b4" not in {d.id for d in reg.devices()}
    bad.write_text("cli-b6,bin-14,tof\ncli-b7,bin-15,lidar\n")
    capsys.readouterr()
    assert provision(fleet, "--bulk", str(bad)) == 1
    assert "bad.csv:2: sensor 'lidar' is not one of ultrasonic, tof" in capsys.readouterr().err
    assert not (fleet.configs / "cli-b6").exists()


def test_rotate_move_decommission(fleet: Fleet, mqtt_probe_factory) -> None:
    assert provision(fleet, "cli-life", "--bin", "bin-15") == 0
    old = config_of(fleet, "cli-life")["password"]
    rotate = ["device", "rotate", "cli-life", *fleet.cli_args(), "--out", str(fleet.configs)]
    assert fleet.cli(*rotate) == 0
    new = config_of(fleet, "cli-life")["password"]
    assert new != old
    assert mqtt_probe_factory(fleet.port, "cli-life", old).connect().is_failure
    assert not mqtt_probe_factory(fleet.port, "cli-life", new).connect().is_failure
    assert fleet.cli("device", "move", "cli-life", "--bin", "bin-16", *fleet.cli_args()) == 0
    assert fleet.cli("device", "decommission", "cli-life", *fleet.cli_args()) == 0
    assert mqtt_probe_factory(fleet.port, "cli-life", new).connect().is_failure
    with Registry(fleet.registry_path) as reg:
        assert reg.device("cli-life").state == "decommissioned"
        assert [link.bin_id for link in reg.history("cli-life")] == ["bin-15", "bin-16"]
        assert reg.current_link("cli-life") is None
    assert fleet.cli("device", "revoke", "no-such-device", *fleet.cli_args()) == 1


def test_calibrate_from_recent_readings_reaches_the_firmware(
    fleet: Fleet,
    influxdb: InfluxDB,
    fake_device: FakeDevice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet.provision("cli-cal", "bin-17", fake_device)
    client = influxdb.client()
    base = 1_764_000_000_000
    mm = [900, 1180, 1210, 400, 1200]  # the last three: 1210, a spike (400), 1200
    client.write_lines(
        [
            storage.to_line(
                storage.reading_point(
                    p.Reading(
                        "cli-cal", i, 1, base + i * 1000, "1.0.0", 3600, distance_mm=d,
                        fill_pct=10.0,
                    )
                )
            )
            for i, d in enumerate(mm)
        ],
        precision=storage.PRECISION,
    )
    monkeypatch.setenv("SMARTBINS_SERVICE_PASSWORD", fleet.service.password)
    monkeypatch.setenv("SMARTBINS_INFLUX_PASSWORD", influxdb.password)
    assert device_config(fleet, "cli-cal", "--interval", "1200", "--fire-temp", "65") == 0
    capsys.readouterr()
    rc = fleet.cli(
        "calibrate",
        "cli-cal",
        "--full-mm",
        "250",
        *fleet.cli_args(),
        "--broker-host",
        "127.0.0.1",
        "--broker-port",
        str(fleet.port),
        "--influx-url",
        influxdb.url,
        "--influx-database",
        influxdb.database,
        "--influx-username",
        influxdb.username,
    )
    assert rc == 0, capsys.readouterr().err
    assert "empty 1200 mm" in capsys.readouterr().out
    with Registry(fleet.registry_path) as reg:
        d = reg.device("cli-cal")
        assert (d.cal, d.empty_mm, d.full_mm) == (1, 1200, 250)
    # The device reads the retained config at its next wake and uses it from then on: the
    # new calibration, and the interval and fire threshold set before, not protocol defaults.
    fake_device.scenario(distance_mm=725.0)
    fake_device.run(1)
    applied = fake_device.state()["cfg"]
    assert (applied["empty_mm"], applied["full_mm"], applied["cal"]) == (1200, 250, 1)
    assert (applied["interval"], applied["fire_temp"], applied["tilt"]) == (1200, 65.0, 45.0)
    assert fake_device.wakes()[-1]["sleep_ms"] == 1_200_000
    fake_device.run(1)
    last = fake_device.records()[-1]
    assert last["cal"] == 1
    assert last["fill"] == pytest.approx((1200 - 725) * 100 / 950, abs=0.3)
    assert not last["flags"] & p.Flag.UNCALIBRATED


def test_empty_distance_needs_readings() -> None:
    assert empty_distance([1000, 1010, 400]) == 1000
    with pytest.raises(Exception, match="no recent readings"):
        empty_distance([])


def test_flash_dry_run_prints_the_exact_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from smartbins import cli

    assert (
        cli.main(
            [
                "flash",
                "--port",
                "/dev/ttyUSB7",
                "--firmware",
                "ESP32.bin",
                "--config",
                "cfg/config.json",
                "--dry-run",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("--chip esp32 --port /dev/ttyUSB7 --baud 460800 erase_flash")
    assert lines[1].endswith("write_flash -z 0x1000 ESP32.bin")
    assert "firmware/main.py" in lines[2] and "hw_fake.py" not in lines[2]
    assert lines[3].endswith("fs cp cfg/config.json :config.json")
    assert lines[4].endswith("connect /dev/ttyUSB7 reset")
    assert len(flash_commands("/dev/x", Path("i.bin"), None)) == 4


def test_flash_without_an_image_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    from smartbins import cli

    assert cli.main(["flash", "--port", "/dev/ttyUSB7", "--firmware", "/nope.bin"]) == 1
    assert "no such MicroPython image" in capsys.readouterr().err


def test_settings_file_and_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text('registry = "/srv/reg.sqlite"\nbroker_port = 8883\nwifi_ssid = "bins"\n')
    s = load(DeviceSettings, path)
    assert (s.registry, s.broker_port, s.wifi_ssid) == (Path("/srv/reg.sqlite"), 8883, "bins")
    path.write_text('registry = "/srv/reg.sqlite"\nbroker_prot = 8883\n')
    with pytest.raises(ConfigError, match=r"devices.toml:2: broker_prot: unknown key"):
        load(DeviceSettings, path)
    path.write_text("broker_port = 70000\n")
    with pytest.raises(ConfigError, match="broker_port"):
        load(DeviceSettings, path)


def test_every_command_has_help() -> None:
    from smartbins import cli

    parser = cli.build_parser()
    text = parser.format_help()
    for command in ("provision", "device", "calibrate", "flash"):
        assert command in text


def test_wifi_password_goes_into_the_config_not_the_output(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTBINS_WIFI_PASSWORD", "wifi-secret-123")
    assert provision(fleet, "cli-wifi", "--bin", "bin-18", "--wifi-ssid", "kommune-iot") == 0
    out = capsys.readouterr()
    assert "wifi-secret-123" not in out.out + out.err
    assert config_of(fleet, "cli-wifi")["wifi"] == {
        "ssid": "kommune-iot",
        "password": "wifi-secret-123",
    }
    monkeypatch.delenv("SMARTBINS_WIFI_PASSWORD")
    assert provision(fleet, "cli-wifi2", "--bin", "bin-19", "--wifi-ssid", "kommune-iot") == 1
    assert "SMARTBINS_WIFI_PASSWORD" in capsys.readouterr().err


def device_config(fleet: Fleet, device: str, *flags: str) -> int:
    return fleet.cli(
        "device",
        "config",
        device,
        *flags,
        *fleet.cli_args(),
        "--broker-host",
        "127.0.0.1",
        "--broker-port",
        str(fleet.port),
    )


def retained_config(fleet: Fleet, device: str, password: str, mqtt_probe_factory) -> p.DeviceConfig:
    """The retained config as the device itself receives it, decoded with the protocol module."""
    probe = mqtt_probe_factory(fleet.port, device, password)
    assert not probe.connect().is_failure
    topic = p.topic_for("config", device)
    probe.subscribe(topic)
    probe.wait_for(lambda msgs: any(m.topic == topic for m in msgs))
    (msg,) = probe.received(topic)
    assert msg.retain
    decoded = p.parse_message(msg.topic, msg.payload)
    assert isinstance(decoded, p.DeviceConfig)
    return decoded


def test_provision_records_thresholds_and_writes_them_into_config_json(
    fleet: Fleet, fake_device: FakeDevice, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fleet.provision(
        "cli-thr", "bin-30", fake_device, "--interval", "1800", "--tilt", "30"
    )
    assert settings["config"] == {
        "interval": 1800,
        "interval_near_full": 900,
        "interval_low_battery": 14400,
        "near_full": 80.0,
        "low_battery": 3300,
        "fire_temp": 70.0,
        "fire_rise": 20.0,
        "tilt": 30.0,
    }
    with Registry(fleet.registry_path) as reg:
        assert (reg.thresholds("cli-thr")["interval_s"], reg.thresholds("cli-thr")["tilt_deg"]) == (
            1800,
            30.0,
        )
    # The firmware runs with them from its first wake, before any retained config.
    fake_device.scenario(wifi=False, tilt_deg=35.0)
    fake_device.run(1)
    assert fake_device.wakes()[-1]["sleep_ms"] == 1_800_000
    assert fake_device.records()[-1]["flags"] & p.Flag.TILT
    # A bad value names the field and provisions nothing.
    capsys.readouterr()
    assert provision(fleet, "cli-thr2", "--bin", "bin-31", "--near-full", "500") == 1
    assert "near_full: 500.0 is out of range [0, 200] %" in capsys.readouterr().err
    assert not (fleet.configs / "cli-thr2").exists()


def test_device_config_records_and_publishes_the_whole_current_config(
    fleet: Fleet,
    fake_device: FakeDevice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mqtt_probe_factory,
) -> None:
    settings = fleet.provision("cli-dc", "bin-32", fake_device, "--tilt", "30")
    monkeypatch.setenv("SMARTBINS_SERVICE_PASSWORD", fleet.service.password)
    with Registry(fleet.registry_path) as reg:
        reg.set_calibration("cli-dc", 1400, 280)
    capsys.readouterr()
    assert device_config(fleet, "cli-dc", "--interval", "600", "--near-full", "70") == 0
    out = capsys.readouterr().out
    assert "cli-dc (ultrasonic, active): calibration 1: empty 1400 mm, full 280 mm" in out
    assert re.search(r"\* interval +600 s ", out) and "config published" in out
    config = retained_config(fleet, "cli-dc", settings["password"], mqtt_probe_factory)
    assert (config.interval_s, config.near_full_pct) == (600, 70.0)  # changed now
    assert config.tilt_deg == 30.0  # as provisioned
    assert (config.cal, config.empty_mm, config.full_mm) == (1, 1400, 280)  # kept
    assert config.fire_temp_c == p.DeviceConfig.fire_temp_c
    # Without flags: shown, not published again.
    assert device_config(fleet, "cli-dc") == 0
    out = capsys.readouterr().out
    assert re.search(r"\n   near_full +70 %", out) and "published" not in out
    again = retained_config(fleet, "cli-dc", settings["password"], mqtt_probe_factory)
    assert again.server_ts_ms == config.server_ts_ms
    # A bad value names the field; nothing is recorded or published.
    assert device_config(fleet, "cli-dc", "--interval", "5", "--tilt", "10") == 1
    assert "interval: 5 is out of range [10, 604800] s" in capsys.readouterr().err
    with Registry(fleet.registry_path) as reg:
        assert (reg.thresholds("cli-dc")["interval_s"], reg.thresholds("cli-dc")["tilt_deg"]) == (
            600,
            30.0,
        )
    assert retained_config(fleet, "cli-dc", settings["password"], mqtt_probe_factory) == config
    assert device_config(fleet, "no-such-device", "--interval", "60") == 1
    assert "no device 'no-such-device'" in capsys.readouterr().err


def test_device_config_of_an_uncalibrated_device_keeps_it_uncalibrated(
    fleet: Fleet, fake_device: FakeDevice, monkeypatch: pytest.MonkeyPatch, mqtt_probe_factory
) -> None:
    """A short interval before calibrating (to gather readings quickly) must not make the
    device believe it is calibrated."""
    settings = fleet.provision("cli-uncal", "bin-33", fake_device)
    monkeypatch.setenv("SMARTBINS_SERVICE_PASSWORD", fleet.service.password)
    assert device_config(fleet, "cli-uncal", "--interval", "60") == 0
    config = retained_config(fleet, "cli-uncal", settings["password"], mqtt_probe_factory)
    assert (config.cal, config.interval_s) == (0, 60)
    fake_device.scenario()
    fake_device.run(2)  # the first wake receives the config, the second measures with it
    last = fake_device.records()[-1]
    assert last["flags"] & p.Flag.UNCALIBRATED and last["interval"] == 60


def test_firmware_defaults_are_the_protocol_and_registry_defaults() -> None:
    """The firmware cannot import smartbins: its copy of the defaults is checked here."""
    fw = json.loads(mp_run(FIRMWARE.parent / "tests/firmware/mp_defaults.py"))
    assert (fw["cal"], fw["empty_mm"], fw["full_mm"]) == (
        0,
        UNCALIBRATED_EMPTY_MM,
        UNCALIBRATED_FULL_MM,
    )
    for spec in p.CONFIG_FIELDS:
        if spec.attr not in ("server_ts_ms", "cal", "empty_mm", "full_mm"):
            assert fw[spec.key] == getattr(p.DeviceConfig, spec.attr), spec.key
