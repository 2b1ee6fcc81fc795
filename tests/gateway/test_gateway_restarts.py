"""SIGKILL the broker, the gateway process or influxd mid-stream: every reading lands once.

Modelled on Telegraf's TestReconnectIntegration, but with SIGKILL and a count by (device, seq)
at the end. Each test runs its own servers (smartbins.servers) and the gateway as a real
``smartbins gateway --config`` process, so the suite's shared servers are unaffected.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gw_fleet import Fleet, provision_fleet
from gw_stack import GatewayProcess, Stack, assert_exactly_once, drive

from smartbins.servers import wait_until


@pytest.fixture
def stack() -> Stack:
    s = Stack("gw-restart")
    try:
        s.start()
        yield s  # type: ignore[misc]
    finally:
        s.close()


def start_fleet(stack: Stack, registry_path: Path, prefix: str, n: int, seed: int) -> Fleet:
    creds = provision_fleet(str(registry_path), stack.broker.passwords, prefix, n)
    fleet = Fleet(creds, stack.broker.port, seed=seed, resend_timeout_s=2.0)
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
    fleet = start_fleet(stack, registry_path, f"k{victim[:2]}", 10, seed=len(victim))
    try:
        fleet.produce(30)
        fleet.pump()
        kill = {"broker": stack.broker.kill, "gateway": gw.kill, "influxd": stack.influx.kill}
        kill[victim]()
        fleet.produce(5)  # buffered on the devices meanwhile
        fleet.pump()
        time.sleep(0.5)  # a real outage lasts a while; nothing waits on it
        {"broker": stack.broker.start, "gateway": gw.start, "influxd": stack.influx.start}[victim]()
        gw.wait_healthy(30)
        if victim == "broker":
            # The broker lost the gateway's session: the gateway subscribed again by itself.
            assert gw.metric("gateway_mqtt_subscribes_total") >= 2
        fleet.produce(5)
        drive(fleet, lambda: fleet.pending() == 0, 60)
        counts = assert_exactly_once(stack, fleet)
        assert counts["readings"] == 10 * 40
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
