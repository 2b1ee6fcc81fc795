"""Findings of the attack run (issue 11) that live in the gateway, reproduced against the real
broker, InfluxDB and gateway: a retained status taken as fresh, a health gauge stuck at 0."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gw_fleet import provision_fleet

from gateway.service import Gateway
from gateway.status import StatusStore
from smartbins import protocol as p
from smartbins.servers import free_port, wait_until
from smartbins.testing import Broker, MqttProbe


def _gauge(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def test_a_retained_status_is_not_taken_as_activity(
    broker: Broker,
    gateway_factory: Callable[..., Gateway],
    mqtt_probe: Callable[..., MqttProbe],
    registry_path: Path,
    unique: str,
) -> None:
    """A gateway that (re)subscribes is sent the retained `online` of a device that is asleep:
    no last-seen, no state time and no time answer may come of it."""
    asleep, awake = provision_fleet(str(registry_path), broker.server.passwords, unique, 2)
    a = mqtt_probe(asleep.username, asleep.password, clean=False)
    a.connect()
    a.subscribe(p.topic_for("ack", asleep.username))
    a.publish(*p.encode_message(p.Status(asleep.username, "online", boot=3)), retain=True)
    b = mqtt_probe(awake.username, awake.password)
    b.connect()
    b.subscribe(p.topic_for("ack", awake.username))
    try:
        gw = gateway_factory()
        wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
        # A live `online` after the retained one: its answer shows the retained one was handled.
        b.publish(*p.encode_message(p.Status(awake.username, "online", boot=1)))
        b.wait_for(lambda ms: len(ms) == 1, timeout=10)
        store = StatusStore(gw.cfg.status.path)
        try:
            live = store.device(awake.username)
            old = store.device(asleep.username)
        finally:
            store.close()
        assert live is not None and live.last_seen_ms is not None and live.state == "online"
        assert old is None or (old.last_seen_ms is None and old.state_ms is None)
        assert a.received() == []  # no acknowledgement answered the retained status
    finally:
        a.publish(p.topic_for("status", asleep.username), b"", retain=True)  # clear it


def test_influx_health_gauge_says_what_healthz_says(
    broker: Broker, gateway_factory: Callable[..., Gateway], registry_path: Path, unique: str
) -> None:
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    assert gw.health()[1]["influx_healthy"] is True
    assert gw.http is not None
    assert _gauge(gw.http.port, "gateway_influx_healthy") == 1
    dead = gateway_factory(  # its own group: it gets every message, not a share
        "gw-dead-influx",
        influxdb={"url": f"http://127.0.0.1:{free_port()}"},
        mqtt={"group": f"g{unique}dead"},
    )
    wait_until(dead.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    (cred,) = provision_fleet(str(registry_path), broker.server.passwords, f"{unique}h", 1)
    probe = MqttProbe(broker.port, cred.username, cred.password)
    probe.connect()
    try:
        probe.publish(p.topic_for("reading", cred.username), b"not json")  # a dead letter to write
        wait_until(lambda: not dead.health()[1]["influx_healthy"], 10, message="write failed")
        assert dead.http is not None
        assert _gauge(dead.http.port, "gateway_influx_healthy") == 0
    finally:
        probe.close()
