"""Contract: the firmware's encoder, run by the real `micropython`, produces messages that
smartbins.protocol decodes to the same readings; and the firmware decodes what the protocol
module encodes for it (acknowledgements, config). Meaning is compared, not bytes: key order
and float formatting differ between MicroPython and CPython."""

from __future__ import annotations

import dataclasses
import json
import math

from fwtools import FIRMWARE, mp_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import acks, configs, readings

from smartbins import protocol as p

CODEC = FIRMWARE.parent / "tests" / "firmware" / "mp_codec.py"


def to_record(r: p.Reading) -> dict[str, object]:
    """The firmware's buffered form of a reading: wire keys plus its internal ``rtc``."""
    rec: dict[str, object] = dict(p.reading_to_wire(r))
    rec["rtc"] = 123456
    return rec


def same(a: p.Reading, b: p.Reading) -> bool:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def run_codec(requests: list[dict[str, object]]) -> list[dict[str, object]]:
    out = mp_run(CODEC, "".join(json.dumps(r) + "\n" for r in requests))
    return [json.loads(line) for line in out.splitlines()]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_firmware_readings_decode_to_the_same_reading(data: st.DataObject) -> None:
    dev = data.draw(st.from_regex(p.DEVICE_ID_RE, fullmatch=True))
    batch = data.draw(st.lists(readings(dev), min_size=1, max_size=60))
    reqs: list[dict[str, object]] = [
        {"op": "reading", "dev": dev, "rec": to_record(r)} for r in batch
    ]
    for i in range(0, len(batch), 50):
        reqs.append({"op": "batch", "dev": dev, "recs": [to_record(r) for r in batch[i : i + 50]]})
    answers = run_codec(reqs)
    singles, batches = answers[: len(batch)], answers[len(batch) :]
    for r, a in zip(batch, singles, strict=True):
        decoded = p.parse_message(a["topic"], a["payload"].encode())
        assert isinstance(decoded, p.Reading)
        assert same(decoded, r), (decoded, r)
    got = []
    for a in batches:
        decoded = p.parse_message(a["topic"], a["payload"].encode())
        assert isinstance(decoded, p.ReadingBatch) and not decoded.rejected
        assert len(a["payload"]) <= p.MAX_BATCH_BYTES
        got.extend(decoded.readings)
    assert len(got) == len(batch)
    assert all(same(x, y) for x, y in zip(got, batch, strict=True))


def test_firmware_status_and_will_decode() -> None:
    online = {
        "state": "online",
        "ts": 1764000000000,
        "boot": 3,
        "fw": "1.0.0",
        "bat": 3700,
        "rssi": -70,
        "dropped": 0,
        "buffered": 5,
    }
    a, b = run_codec(
        [
            {"op": "status", "dev": "kbh-1", "fields": online},
            {"op": "status", "dev": "kbh-1", "fields": {"state": "lost"}},
        ]
    )
    assert p.parse_message(a["topic"], a["payload"].encode()) == p.Status(
        "kbh-1", "online", 1764000000000, 3, "1.0.0", 3700, -70, 0, 5
    )
    assert p.parse_message(b["topic"], b["payload"].encode()) == p.Status("kbh-1", "lost")


@settings(max_examples=5, deadline=None)
@given(st.lists(acks(), min_size=1, max_size=30), st.lists(configs(), min_size=1, max_size=30))
def test_firmware_decodes_acks_and_configs(
    ack_list: list[p.Ack], cfgs: list[p.DeviceConfig]
) -> None:
    msgs = [*ack_list, *cfgs]
    reqs = []
    for m in msgs:
        topic, payload = p.encode_message(m)
        reqs.append({"op": "decode", "dev": m.device, "topic": topic, "payload": payload.decode()})
    for m, a in zip(msgs, run_codec(reqs), strict=True):
        f = a["fields"]
        if isinstance(m, p.Ack):
            assert a["kind"] == "ack"
            assert f["server_ts"] == m.server_ts_ms
            assert [tuple(x) for x in f["stored"]] == list(m.stored)
            assert [tuple(x) for x in f["rejected"]] == list(m.rejected)
        else:
            assert a["kind"] == "config"
            assert (f["cal"], f["empty_mm"], f["full_mm"], f["interval"]) == (
                m.cal,
                m.empty_mm,
                m.full_mm,
                m.interval_s,
            )
            assert math.isclose(f["near_full"], m.near_full_pct, rel_tol=1e-9, abs_tol=1e-9)


def test_firmware_ignores_foreign_or_malformed_messages() -> None:
    answers = run_codec(
        [
            {"op": "decode", "dev": "a", "topic": "sb/down/b/ack", "payload": "{}"},
            {"op": "decode", "dev": "a", "topic": "sb/down/a/ack", "payload": "{not json"},
            {
                "op": "decode",
                "dev": "a",
                "topic": "sb/down/a/ack",
                "payload": '{"v":1,"dev":"a","server_ts":1,"stored":[[3,1]],"rejected":[]}',
            },
            {
                "op": "decode",
                "dev": "a",
                "topic": "sb/down/a/config",
                "payload": '{"v":2,"dev":"a"}',
            },
        ]
    )
    assert all("error" in a for a in answers), answers
