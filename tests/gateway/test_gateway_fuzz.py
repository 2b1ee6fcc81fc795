"""Fuzz through the real broker: thousands of malformed payloads mixed with valid ones.

Every valid reading lands exactly once; every malformed message (or bad reading inside a batch)
appears on the dead-letter topic with the reason the protocol gives it, is counted per reason,
and the gateway stays up. A seeded generator, so a failure replays exactly.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from gw_fleet import BASE_TS_MS, provision_fleet, stored_seqs
from gw_stack import http_get

from gateway.service import Gateway
from smartbins import protocol as p
from smartbins.servers import InfluxDB, wait_until
from smartbins.testing import Broker, MqttProbe

R = p.Reason


def good(seq: int) -> dict[str, object]:
    return {
        "seq": seq, "boot": 1, "ts": BASE_TS_MS + seq * 1000, "mm": 400, "fill": 60.0,
        "temp": 8.5, "dropped": 0, "interval": 3600, "cal": 1, "fw": "1.0", "flags": 0,
    }  # fmt: skip


def env(dev: str, body: dict[str, object]) -> bytes:
    return json.dumps({"v": 1, "dev": dev, **body}).encode()


#: Ways to break one reading message: (reason, make payload from (device, seq)).
MESSAGE_BREAKERS: list[tuple[R, Callable[[str, int], bytes]]] = [
    (R.BAD_JSON, lambda d, s: env(d, good(s))[:-7]),
    (R.BAD_UTF8, lambda d, s: b'{"v":1,"dev":"\xff\xfe"}'),
    (R.DUPLICATE_KEY, lambda d, s: env(d, good(s))[:-1] + b',"seq":1}'),
    (R.NON_FINITE, lambda d, s: env(d, good(s)).replace(b'"fill": 60.0', b'"fill": NaN')),
    (R.NOT_OBJECT, lambda d, s: b"[1, 2, 3]"),
    (R.OVERSIZE, lambda d, s: env(d, good(s))[:-1] + b" " * 1100 + b"}"),
    (R.SCHEMA_VERSION, lambda d, s: env(d, good(s)).replace(b'"v": 1', b'"v": 2')),
    (R.MISSING_FIELD, lambda d, s: env(d, {k: v for k, v in good(s).items() if k != "boot"})),
    (R.UNKNOWN_FIELD, lambda d, s: env(d, {**good(s), "colour": "red"})),
    (R.WRONG_TYPE, lambda d, s: env(d, {**good(s), "mm": "400"})),
    (R.OUT_OF_RANGE, lambda d, s: env(d, {**good(s), "temp": 900.5})),
    (R.BAD_VALUE, lambda d, s: env(d, {**good(s), "fw": "1.0\x01"})),
    (R.BAD_DEVICE_ID, lambda d, s: json.dumps({"v": 1, "dev": "no/such", **good(s)}).encode()),
    (R.DEVICE_MISMATCH, lambda d, s: json.dumps({"v": 1, "dev": "someone", **good(s)}).encode()),
    (R.INCONSISTENT, lambda d, s: env(d, {k: v for k, v in good(s).items() if k != "mm"})),
    (R.FUTURE_TIMESTAMP, lambda d, s: env(d, {**good(s), "ts": p.TS_MAX_MS})),
]
#: Ways to break a batch as a whole.
BATCH_BREAKERS: list[tuple[R, Callable[[str, int], bytes]]] = [
    (R.EMPTY_BATCH, lambda d, s: env(d, {"readings": []})),
    (R.BATCH_TOO_LARGE, lambda d, s: env(d, {"readings": [good(s)] * 101})),
    (R.WRONG_TYPE, lambda d, s: env(d, {"readings": {"0": good(s)}})),
]
#: Ways to break one reading inside an otherwise good batch.
READING_BREAKERS: list[tuple[R, Callable[[int], object]]] = [
    (R.NOT_OBJECT, lambda s: [s]),
    (R.OUT_OF_RANGE, lambda s: {**good(s), "rssi": 5}),
    (R.MISSING_FIELD, lambda s: {k: v for k, v in good(s).items() if k != "fw"}),
    (R.WRONG_TYPE, lambda s: {**good(s), "seq": float(s)}),
    (R.FUTURE_TIMESTAMP, lambda s: {**good(s), "ts": p.TS_MAX_MS - s}),
]


def test_fuzz_malformed_mixed_with_valid(
    broker: Broker,
    influxdb: InfluxDB,
    fresh_db: str,
    gateway_factory: Callable[..., Gateway],
    registry_path: Path,
    unique: str,
    mqtt_probe: Callable[..., MqttProbe],
) -> None:
    rng = random.Random(1789)
    gw = gateway_factory()
    wait_until(gw.mqtt.subscribed.is_set, 10, message="gateway subscribed")
    dl_probe = mqtt_probe(broker.service.username, broker.service.password)
    dl_probe.connect()
    dl_probe.subscribe(p.DEADLETTER_TOPIC_FILTER)
    creds = provision_fleet(str(registry_path), broker.server.passwords, unique, 8)
    devices = []
    for c in creds:
        d = mqtt_probe(c.username, c.password, client_id=c.username)
        d.client.max_inflight_messages_set(200)
        d.connect()
        devices.append(d)

    valid: dict[str, set[int]] = {c.username: set() for c in creds}
    # (payload, index in batch, reason): a multiset, since some bad payloads repeat exactly
    expect: Counter[tuple[bytes, int | None, R]] = Counter()
    seqs = dict.fromkeys(valid, 0)
    infos = []
    for _ in range(3000):
        i = rng.randrange(len(creds))
        dev, client = creds[i].username, devices[i]
        seq = seqs[dev]
        seqs[dev] += 1
        roll = rng.random()
        if roll < 0.35:  # a valid reading
            topic, payload = p.topic_for("reading", dev), env(dev, good(seq))
            valid[dev].add(seq)
        elif roll < 0.75:  # a malformed reading message
            reason, make = rng.choice(MESSAGE_BREAKERS)
            topic, payload = p.topic_for("reading", dev), make(dev, seq)
            expect[(payload, None, reason)] += 1
        elif roll < 0.85:  # a batch bad as a whole
            reason, make = rng.choice(BATCH_BREAKERS)
            topic, payload = p.topic_for("batch", dev), make(dev, seq)
            expect[(payload, None, reason)] += 1
        else:  # a batch with good readings and one or two bad ones
            n = rng.randint(2, 20)
            base = seq
            seqs[dev] += n
            items: list[object] = [good(base + k) for k in range(n)]
            bad = rng.sample(range(n), k=min(n - 1, rng.randint(1, 2)))
            reasons = {}
            for k in bad:
                reason, make_r = rng.choice(READING_BREAKERS)
                items[k] = make_r(base + k)
                reasons[k] = reason
            topic, payload = p.topic_for("batch", dev), env(dev, {"readings": items})
            for k in range(n):
                if k in reasons:
                    expect[(payload, k, reasons[k])] += 1
                else:
                    valid[dev].add(base + k)
        infos.append(client.client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(30)

    n_expected = expect.total()
    assert n_expected > 1000
    dl_probe.wait_for(lambda m: len(m) >= n_expected, 60)
    got: Counter[tuple[bytes, int | None, R]] = Counter()
    for m in dl_probe.received():
        d = p.parse_message(m.topic, m.payload)
        assert isinstance(d, p.DeadLetter)
        got[(d.payload, d.index, d.reason)] += 1
    assert got == expect
    wait_until(lambda: gw.metrics.get("gateway_deadletters_total") >= n_expected, 10)
    counts = Counter()
    for (_, _, reason), n in expect.items():
        counts[reason] += n
    assert gw.metrics.by_label("gateway_deadletters_total", "reason") == {
        r.value: n for r, n in counts.items()
    }
    wait_until(
        lambda: (
            sum(len(s) for s in stored_seqs(influxdb.client(fresh_db), list(valid)).values())
            >= sum(len(s) for s in valid.values())
        ),
        30,
        message="every valid reading stored",
    )
    stored = stored_seqs(influxdb.client(fresh_db), list(valid))
    assert {d: sorted(s) for d, s in stored.items()} == {d: sorted(s) for d, s in valid.items()}
    assert http_get(gw.http.port, "/healthz")[0] == 200  # type: ignore[union-attr]
    by_reason = dict(sorted((r.value, n) for r, n in counts.items()))
    n_valid = sum(len(s) for s in valid.values())
    print(f"fuzz: {n_valid} valid readings stored, {n_expected} dead letters: {by_reason}")
