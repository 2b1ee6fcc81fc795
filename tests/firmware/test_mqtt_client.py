"""The firmware's MQTT client under the real `micropython`, against a scripted fake socket with
byte-exact asserts (the form of micropython-lib's test_umqtt_simple.py). Its conversation with a
real Mosquitto is covered by test_backfill.py."""

from __future__ import annotations

from fwtools import FIRMWARE, mp_run


def test_mqtt_client_bytes_and_timeouts() -> None:
    out = mp_run(FIRMWARE.parent / "tests/firmware/mp_mqtt.py")
    lines = out.splitlines()
    assert len(lines) == 14, out
    failed = [line for line in lines if not line.endswith(": ok")]
    assert not failed, out
