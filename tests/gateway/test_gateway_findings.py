"""Findings of the attack run (issue 11) that live in the gateway, reproduced against the real
broker, InfluxDB and gateway: a retained status taken as fresh, a health gauge stuck at 0, an
acknowledged reading overwritten by a later one with the same timestamp."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

from gw_fleet import provision_fleet

from gateway.service import Gateway
from smartbins import protocol as p
from smartbins import storage
from smartbins.devicestatus import StatusStore
from smartbins.servers import InfluxDB, free_port, wait_until
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


def test_a_new_seq_with_an_old_timestamp_does_not_overwrite_an_acknowledged_reading(
    broker: Broker,
    influxdb: InfluxDB,
    fresh_db: str,
    gateway_factory: Callable[..., Gateway],
    mqtt_probe: Callable[..., MqttProbe],
    registry_path: Path,
    unique: str,
) -> None:
    """A device without a good clock (after a power loss, before its first server_ts) stamps
    seq 2 with seq 1's time. Both are acknowledged as stored, so both must be there, seq 2
    flagged; a resend of seq 2 overwrites itself."""
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    (cred,) = provision_fleet(str(registry_path), broker.server.passwords, unique, 1)
    dev = mqtt_probe(cred.username, cred.password)
    dev.connect()
    dev.subscribe(p.topic_for("ack", cred.username))
    ts = 1_764_000_000_000

    def reading(seq: int, mm: int) -> p.Reading:
        return p.Reading(cred.username, seq, 1, ts, "1.0.0", 3600, distance_mm=mm, fill_pct=1.0)

    def acked(seq: int) -> bool:
        acks = [p.parse_message(m.topic, m.payload) for m in dev.received()]
        return any(lo <= seq <= hi for a in acks for lo, hi in a.stored)  # type: ignore[union-attr]

    for seq, mm in ((1, 500), (2, 600), (2, 600)):  # the last one a resend
        dev.publish(*p.encode_message(reading(seq, mm)))
        wait_until(lambda s=seq: acked(s), 10, message=f"seq {seq} acknowledged")
    (s,) = influxdb.client(fresh_db).query(
        f"SELECT seq, mm, {storage.SUSPECT_TS_FIELD} FROM {storage.MEASUREMENT}"
    )
    assert s["values"] == [[ts, 1.0, 500.0, None], [ts, 2.0, 600.0, 1.0]]
