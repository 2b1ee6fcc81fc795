"""The gateway against the real broker and the real influxd: exactly once, dead letters, acks
only after the write, status, /metrics and /healthz."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gw_fleet import Fleet, assert_stored_once, provision_fleet, secret_file, stored_seqs

import gateway.mqtt
from gateway.service import Gateway
from smartbins import protocol as p
from smartbins import storage
from smartbins.registry import now_ms
from smartbins.servers import InfluxDB, temp_workdir, wait_until
from smartbins.testing import Broker, MqttProbe


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def deadletter_probe(broker: Broker, mqtt_probe: Callable[..., MqttProbe]) -> MqttProbe:
    probe = mqtt_probe(broker.service.username, broker.service.password)
    probe.connect()
    probe.subscribe(p.DEADLETTER_TOPIC_FILTER)
    return probe


def test_readings_land_exactly_once_and_are_acknowledged(
    broker: Broker,
    influxdb: InfluxDB,
    fresh_db: str,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
) -> None:
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    creds = provision_fleet(str(registry_path), broker.server.passwords, unique, 6)
    # No resends (the test pumps only twice): the written count below is exact on any machine.
    fleet = Fleet(creds, broker.port, seed=1, resend_timeout_s=1e9)
    try:
        fleet.start()
        wait_until(fleet.connected, 10, message="devices connected")
        fleet.produce(1)
        fleet.pump()  # one pending reading each: `reading` messages
        fleet.produce(120)
        fleet.pump()  # batches of 50
        wait_until(lambda: fleet.pending() == 0, 20, message="every reading acknowledged")
        assert assert_stored_once(influxdb.client(fresh_db), fleet)["readings"] == 6 * 121
        assert gw.metrics.get("gateway_readings_written_total") == 6 * 121
        assert gw.metrics.get("gateway_deadletters_total") == 0
        assert gw.metrics.get("gateway_acks_published_total") >= 6
        # Resend everything once more (as after a lost ack): still exactly once.
        for d in fleet.devices:
            d.forget_acks()
        fleet.pump()
        wait_until(lambda: fleet.pending() == 0, 20, message="resends acknowledged")
        assert assert_stored_once(influxdb.client(fresh_db), fleet)["readings"] == 6 * 121
        # Device status: online/lost and last seen are kept for fleet health.
        assert gw.status is not None
        row = gw.status.device(fleet.devices[0].id)
        assert row is not None and row.last_seq == 120 and row.fw == "test-1.0"
    finally:
        fleet.close()


def test_batch_with_one_bad_reading_stores_the_rest(
    broker: Broker,
    influxdb: InfluxDB,
    fresh_db: str,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
    mqtt_probe: Callable[..., MqttProbe],
) -> None:
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    dl = deadletter_probe(broker, mqtt_probe)
    (cred,) = provision_fleet(str(registry_path), broker.server.passwords, unique, 1)
    dev = mqtt_probe(cred.username, cred.password, client_id=cred.username)
    dev.connect()
    dev.subscribe(p.topic_for("ack", cred.username))
    items = [
        {
            "seq": s,
            "boot": 1,
            "ts": 1_764_000_000_000 + s,
            "mm": 500,
            "fill": 50.0,
            "dropped": 0,
            "interval": 3600,
            "cal": 1,
            "fw": "1.0",
            "flags": 0,
        }
        for s in range(5)
    ]
    items[2]["temp"] = 900.5  # out of range
    future = now_ms() + 3_600_000
    items[4]["ts"] = future  # an hour ahead: beyond the 300 s tolerance
    payload = json.dumps({"v": 1, "dev": cred.username, "readings": items}).encode()
    dev.publish(p.topic_for("batch", cred.username), payload)
    dev.publish(p.topic_for("reading", cred.username), b'{"v":1,"dev":')  # truncated JSON

    dl.wait_for(lambda m: len(m) >= 3, 10)
    letters = sorted(
        (p.parse_message(m.topic, m.payload) for m in dl.received()),
        key=lambda d: (d.seq is None, d.seq),  # type: ignore[union-attr]
    )
    got = [(d.reason, d.seq, d.index) for d in letters]  # type: ignore[union-attr]
    assert got == [
        (p.Reason.OUT_OF_RANGE, 2, 2),
        (p.Reason.FUTURE_TIMESTAMP, 4, 4),
        (p.Reason.BAD_JSON, None, None),
    ]
    assert all(m.topic == p.topic_for("deadletter", cred.username) for m in dl.received())
    assert "readings[2].temp" in letters[0].detail  # type: ignore[union-attr]

    dev.wait_for(lambda m: len(m) >= 1, 10)
    ack = p.parse_message(dev.received()[0].topic, dev.received()[0].payload)
    assert isinstance(ack, p.Ack)
    assert ack.stored == ((0, 1), (3, 3)) and ack.rejected == ((2, 2), (4, 4))

    client = influxdb.client(fresh_db)
    assert sorted(stored_seqs(client, [cred.username])[cred.username]) == [0, 1, 3]
    dl = storage.DEADLETTER_MEASUREMENT
    wait_until(lambda: client.query(f"SELECT count(detail) FROM {dl}"), 5)
    series = client.query(f"SELECT count(detail) FROM {dl} GROUP BY reason")
    counts = {s["tags"]["reason"]: s["values"][0][1] for s in series}
    assert counts == {"out_of_range": 1, "future_timestamp": 1, "bad_json": 1}
    assert gw.metrics.by_label("gateway_deadletters_total", "reason") == {
        "out_of_range": 1,
        "future_timestamp": 1,
        "bad_json": 1,
    }


def test_store_rejected_point_is_split_out_and_dead_lettered(
    broker: Broker,
    influxdb: InfluxDB,
    fresh_db: str,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
    mqtt_probe: Callable[..., MqttProbe],
) -> None:
    """InfluxDB answers 400 for one point (a field-type conflict in its shard): the batch is
    halved until that point is alone; it is dead-lettered, the others are written."""
    client = influxdb.client(fresh_db)
    old_ts = 1_600_000_000_000  # 2020-09: a shard of its own
    client.write_lines([f'{storage.MEASUREMENT},device=other temp="warm" {old_ts - 1}'])
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    dl = deadletter_probe(broker, mqtt_probe)
    (cred,) = provision_fleet(str(registry_path), broker.server.passwords, unique, 1)
    dev = mqtt_probe(cred.username, cred.password, client_id=cred.username)
    dev.connect()
    dev.subscribe(p.topic_for("ack", cred.username))
    readings = [
        p.Reading(
            cred.username,
            s,
            1,
            1_764_000_000_000 + s,
            "1.0",
            3600,
            distance_mm=1,
            fill_pct=1.0,
            temp_c=5.0,
        )
        for s in range(8)
    ]
    readings[5] = p.Reading(
        cred.username, 5, 1, old_ts, "1.0", 3600, distance_mm=1, fill_pct=1.0, temp_c=5.0
    )
    for topic, payload in p.encode_batches(cred.username, readings):
        dev.publish(topic, payload)
    dl.wait_for(lambda m: len(m) >= 1, 10)
    letter = p.parse_message(dl.received()[0].topic, dl.received()[0].payload)
    assert isinstance(letter, p.DeadLetter)
    assert (letter.reason, letter.seq, letter.index) == (p.Reason.STORE_REJECTED, 5, 5)
    dev.wait_for(lambda m: len(m) >= 1, 10)
    ack = p.parse_message(dev.received()[0].topic, dev.received()[0].payload)
    assert isinstance(ack, p.Ack)
    assert ack.stored == ((0, 4), (6, 7)) and ack.rejected == ((5, 5),)
    assert sorted(stored_seqs(client, [cred.username])[cred.username]) == [0, 1, 2, 3, 4, 6, 7]
    assert gw.metrics.get("gateway_write_splits_total") >= 1


def test_no_ack_while_influxdb_is_down_then_everything_lands(
    broker: Broker,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
    mqtt_probe: Callable[..., MqttProbe],
) -> None:
    workdir = temp_workdir("gw-influx")
    influx = InfluxDB(workdir)
    try:
        influx.start()
        secret = secret_file(workdir, "influx.secret", influx.password)
        gw = gateway_factory(
            influxdb={"url": influx.url, "database": influx.database, "password_file": secret}
        )
        wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
        wait_until(lambda: http_get(gw.http.port, "/healthz")[0] == 200, 10)  # type: ignore[union-attr]
        creds = provision_fleet(str(registry_path), broker.server.passwords, unique, 3)
        fleet = Fleet(creds, broker.port, seed=2, resend_timeout_s=3600)
        try:
            fleet.start()
            wait_until(fleet.connected, 10, message="devices connected")
            influx.stop()
            fleet.produce(10)
            fleet.pump()
            wait_until(lambda: gw.metrics.get("gateway_write_retries_total") >= 3, 10)
            status, body = http_get(gw.http.port, "/healthz")  # type: ignore[union-attr]
            assert status == 503 and json.loads(body)["influx_healthy"] is False
            assert all(d.acks == 0 for d in fleet.devices)
            assert gw.metrics.get("gateway_broker_acks_total") == 0
            assert gw.metrics.get("gateway_queue_messages") > 0
            influx.start()
            wait_until(lambda: fleet.pending() == 0, 30, message="all acknowledged after restart")
            assert_stored_once(influx.client(), fleet)
            assert http_get(gw.http.port, "/healthz")[0] == 200  # type: ignore[union-attr]
            _, metrics = http_get(gw.http.port, "/metrics")  # type: ignore[union-attr]
            assert "gateway_readings_written_total 30" in metrics
            assert "gateway_write_seconds_count" in metrics
            assert 'gateway_write_seconds_bucket{le="+Inf"}' in metrics
        finally:
            fleet.close()
    finally:
        influx.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_device_status_and_last_will_are_kept(
    broker: Broker,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
) -> None:
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    (cred,) = provision_fleet(str(registry_path), broker.server.passwords, unique, 1)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cred.username)
    c.username_pw_set(cred.username, cred.password)
    c.will_set(*p.encode_message(p.Status(cred.username, "lost")), qos=1, retain=True)
    c.connect("127.0.0.1", broker.port, keepalive=5)
    c.loop_start()
    online = p.Status(
        cred.username,
        "online",
        boot=2,
        fw="1.2.3",
        battery_mv=3900,
        rssi_dbm=-70,
        dropped=4,
        buffered=0,
    )
    answers: list[p.Ack] = []
    c.on_message = lambda cl, u, msg: answers.append(p.parse_message(msg.topic, msg.payload))
    c.subscribe(p.topic_for("ack", cred.username), qos=1)
    before = now_ms()
    c.publish(*p.encode_message(online), qos=1, retain=True).wait_for_publish(5)
    # The gateway answers an online status with the current time (docs/protocol.md).
    wait_until(lambda: answers, 10, message="an acknowledgement answering `online`")
    assert answers[0].stored == () and answers[0].rejected == ()  # type: ignore[union-attr]
    assert answers[0].server_ts_ms >= before  # type: ignore[union-attr]
    assert gw.status is not None
    wait_until(lambda: (s := gw.status.device(cred.username)) and s.state == "online", 10)  # type: ignore[union-attr]
    row = gw.status.device(cred.username)
    assert row and (row.fw, row.battery_mv, row.dropped) == ("1.2.3", 3900, 4)
    # Vanish without DISCONNECT: the broker publishes the will.
    c._sock.close()  # type: ignore[attr-defined]  # simulate a power cut
    c.loop_stop()
    wait_until(lambda: gw.status.device(cred.username).state == "lost", 20)  # type: ignore[union-attr]
    assert gw.status.fleet()["lost"] >= 1


def test_full_queue_and_unacknowledged_publishes_never_deadlock(
    broker: Broker,
    influxdb: InfluxDB,
    fresh_db: str,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both bounds tiny: the network thread waits for queue room, the writer for PUBACKs of
    its acknowledgements. Neither may wait for the other forever (a storm found this)."""
    monkeypatch.setattr(gateway.mqtt, "OUTGOING_LIMIT", 2)
    gw = gateway_factory(batch={"max_queue_messages": 3, "max_points": 5})
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    creds = provision_fleet(str(registry_path), broker.server.passwords, unique, 20)
    fleet = Fleet(creds, broker.port, seed=9, resend_timeout_s=3600)
    try:
        fleet.start()
        wait_until(fleet.connected, 10, message="devices connected")
        for _ in range(5):
            fleet.produce(1)
            fleet.pump()
        wait_until(lambda: fleet.pending() == 0, 60, message="all acknowledged")
        assert assert_stored_once(influxdb.client(fresh_db), fleet)["readings"] == 20 * 5
        assert gw.metrics.get("gateway_messages_redelivered_total") == 0
    finally:
        fleet.close()
