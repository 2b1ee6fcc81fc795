"""SIGKILL the broker, the gateway process or influxd mid-stream: every reading lands once.

Modelled on Telegraf's TestReconnectIntegration, but with SIGKILL and a count by (device, seq)
at the end. Each test runs its own servers (smartbins.servers) and the gateway as a real
``smartbins gateway --config`` process, so the suite's shared servers are unaffected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gw_fleet import Fleet, provision_fleet
from gw_stack import GatewayProcess, Stack, assert_exactly_once, drive, points_requested

from smartbins.servers import wait_until


@pytest.fixture
def stack() -> Stack:
    s = Stack("gw-restart")
    try:
        s.start()
        yield s  # type: ignore[misc]
    finally:
        s.close()


#: A resend timeout no test outlives: what arrives, arrives without the device's help.
NO_RESEND_S = 1e9


def start_fleet(
    stack: Stack, registry_path: Path, prefix: str, n: int, seed: int, resend_s: float = 2.0
) -> Fleet:
    creds = provision_fleet(str(registry_path), stack.broker.passwords, prefix, n)
    fleet = Fleet(creds, stack.broker.port, seed=seed, resend_timeout_s=resend_s)
    fleet.start()
    wait_until(fleet.connected, 15, message="devices connected")
    return fleet


@pytest.mark.parametrize("victim", ["broker", "gateway", "influxd"])
def test_sigkill_mid_stream_loses_and_doubles_nothing(
    stack: Stack, registry_path: Path, victim: str
) -> None:
    gw = stack.add_gateway("a")
    gw.start()
    gw.wait_healthy()
    # Only a broker SIGKILL loses what it held (no persistence): the devices' resends must
    # heal that. A dead gateway or InfluxDB must lose nothing even without a resend.
    resend_s = 2.0 if victim == "broker" else NO_RESEND_S
    fleet = start_fleet(stack, registry_path, f"k{victim[:2]}", 10, len(victim), resend_s)
    try:
        fleet.produce(30)
        fleet.pump()
        kill = {"broker": stack.broker.kill, "gateway": gw.kill, "influxd": stack.influx.kill}
        kill[victim]()
        fleet.produce(5)  # buffered on the devices meanwhile
        fleet.pump()
        if victim == "broker":
            wait_until(lambda: not any(d.client.is_connected() for d in fleet.devices), 10)
        elif victim == "influxd":
            wait_until(lambda: not gw.health()[0], 20, message="gateway reports InfluxDB down")
        {"broker": stack.broker.start, "gateway": gw.start, "influxd": stack.influx.start}[victim]()
        gw.wait_healthy(30)
        if victim == "broker":
            # The broker lost the gateway's session: the gateway subscribed again by itself.
            assert gw.metric("gateway_mqtt_subscribes_total") >= 2
        fleet.produce(5)
        drive(fleet, lambda: fleet.pending() == 0, 60)
        counts = assert_exactly_once(stack, fleet)
        assert counts["readings"] == 10 * 40
        if resend_s == NO_RESEND_S:
            assert sum(d.sends for d in fleet.devices) == 10 * 40
    finally:
        fleet.close()
    assert "Traceback" not in gw.log()


def test_after_a_gateway_sigkill_the_broker_redelivers_what_it_held(
    stack: Stack, registry_path: Path
) -> None:
    """Resends off: the broker's redelivery to the restarted gateway, not the devices, brings
    every reading the killed gateway had received and not acknowledged; and there were such
    readings at the kill (InfluxDB is down, so the gateway holds them all)."""
    gw = stack.add_gateway("a")
    gw.start()
    gw.wait_healthy()
    fleet = start_fleet(stack, registry_path, "rd", 10, seed=7, resend_s=NO_RESEND_S)
    try:
        stack.influx.kill()
        fleet.produce(20)
        assert fleet.pump() == 200  # one batch message per device
        wait_until(lambda: gw.metric("gateway_queue_messages") == 10, 20, message="10 held")
        held = gw.metric("gateway_queue_messages")
        assert gw.metric("gateway_readings_written_total") == 0
        gw.kill()
        stack.influx.start()
        gw.start()
        gw.wait_healthy(30)
        wait_until(lambda: fleet.pending() == 0, 30, message="every reading acknowledged")
        assert gw.metric("gateway_messages_redelivered_total") == held == 10
        assert gw.metric("gateway_readings_written_total") == 200
        assert sum(d.sends for d in fleet.devices) == 200  # nothing was sent twice
        assert assert_exactly_once(stack, fleet)["readings"] == 200
        # ... and written once: the restarted influxd was asked for exactly 200 points.
        assert points_requested(stack) == 200
    finally:
        fleet.close()
    assert "Traceback" not in gw.log()


def test_no_secret_in_the_gateway_log(stack: Stack) -> None:
    gw: GatewayProcess = stack.add_gateway("s", log={"level": "debug"})
    gw.start()
    gw.wait_healthy()
    gw.stop()
    log = gw.log()
    assert "connected to" in log
    for secret in (stack.creds["smartbins.gateway"].password, stack.influx.password):
        assert secret not in log


def test_a_broker_restored_from_its_autosave_still_delivers(registry_path: Path) -> None:
    """Mosquitto 2.0.11 restarted from its persistence file says "session present" for the
    gateway, but the session's $share subscription is gone: the gateway subscribes anyway."""
    stack = Stack("gw-autosave", extra_conf="autosave_interval 1")
    try:
        stack.start()
        gw = stack.add_gateway("a")
        gw.start()
        gw.wait_healthy()
        db = stack.broker.data_dir / "mosquitto.db"
        wait_until(db.exists, 10, message="broker autosave written")
        stack.broker.kill()
        stack.broker.start()
        wait_until(lambda: gw.metric("gateway_mqtt_connects_total") >= 2, 20)
        fleet = start_fleet(stack, registry_path, "as", 3, seed=4)
        try:
            fleet.produce(5)
            drive(fleet, lambda: fleet.pending() == 0, 30)
            assert assert_exactly_once(stack, fleet)["readings"] == 15
        finally:
            fleet.close()
    finally:
        stack.close()
