"""The real firmware (MicroPython Unix port) through the real Mosquitto and the real gateway
(``smartbins gateway`` as its own process, SIGKILLed once) into the real InfluxDB.

The other firmware tests use fwtools.Acknowledger, which only ever acknowledges ``stored``.
Here the gateway decides: a reading stamped beyond its future-timestamp tolerance comes back
in ``rejected`` and the firmware must drop it from its buffer; a device without NTP learns the
time from the gateway's answer to its ``online`` status; a reading published while the gateway
was dead (and its session gone with it, ``session_expiry_s = 0``) reaches InfluxDB only because
the device resends it. Every stored row is compared, field by field, with the record the
firmware wrote to its flash buffer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fwtools import LIVE, FakeDevice, read_slots

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from gw_fleet import provision_fleet
from gw_stack import GatewayProcess, Stack

from smartbins import protocol as p
from smartbins import storage
from smartbins.registry import now_ms
from smartbins.servers import wait_until

DAY_MS = 86_400_000
WIRE_KEYS = {f.key for f in p.READING_FIELDS}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack("fw-gw")
    try:
        s.start()
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def gateway(stack: Stack) -> Iterator[GatewayProcess]:
    # No session kept for the gateway: what is published while it is dead is gone at the
    # broker, so only the device's resend can bring it (the broker's redelivery to a restarted
    # gateway is tested in tests/gateway/test_gateway_restarts.py).
    # The fake world sleeps an hour per wake in no time, and every acknowledgement sets the
    # device's clock to the gateway's: a day's tolerance lets a dozen wakes run ahead.
    gw = stack.add_gateway(
        "fw", mqtt={"session_expiry_s": 0}, validation={"future_tolerance_s": 86_400.0}
    )
    gw.start()
    gw.wait_healthy()
    yield gw
    assert "Traceback" not in gw.log()


def make_device(stack: Stack, tmp_path: Path, prefix: str, **scenario: object) -> FakeDevice:
    (cred,) = provision_fleet(str(tmp_path / f"{prefix}.sqlite"), stack.broker.passwords, prefix, 1)
    d = tmp_path / prefix
    d.mkdir()
    dev = FakeDevice(d)
    dev.configure(
        {
            "device": cred.username,
            "password": cred.password,
            "broker": {"host": "127.0.0.1", "port": stack.broker.port},
        }
    )
    dev.scenario(**scenario)
    return dev


def flashed(dev: FakeDevice, rows: list[p.Reading]) -> dict[int, p.Reading]:
    """What the firmware measured, from its flash buffer, through the protocol's decoder.

    A reading taken before the clock was known has no ``ts`` in its slot: the firmware keeps
    its converted time beside the buffer until it is acknowledged, then forgets it. For those
    (flagged TIME_ESTIMATED) the stored row's time stands in, checked by the caller."""
    from_flash = {}
    row_ts = {r.seq: r.ts_ms for r in rows}
    for _, rec in read_slots(dev.dir / "buffer.bin"):
        body = {k: v for k, v in rec.items() if k in WIRE_KEYS and v is not None}
        if "ts" not in body:
            assert rec["flags"] & p.Flag.TIME_ESTIMATED
            if rec["seq"] not in row_ts:
                continue  # not stored: its converted time is gone with it
            body["ts"] = row_ts[rec["seq"]]
        if not body.get("err"):
            body.pop("err", None)
        body.update(v=p.SCHEMA_VERSION, dev=dev.device_id)
        reading = p.parse_message(p.topic_for("reading", dev.device_id), json.dumps(body).encode())
        assert isinstance(reading, p.Reading)
        from_flash[reading.seq] = reading
    return from_flash


def stored(stack: Stack, device: str) -> list[p.Reading]:
    series = stack.influx.client().query(
        f"SELECT * FROM {storage.MEASUREMENT} WHERE {storage.DEVICE_TAG} = '{device}'"
    )
    out = []
    for s in series:
        cols = s["columns"]
        for row in s["values"]:
            values = {c: v for c, v in zip(cols, row, strict=True) if v is not None}
            out.append(storage.reading_from_stored(device, int(values.pop("time")), values))
    return sorted(out, key=lambda r: r.seq)


def dead_letters(stack: Stack, device: str) -> list[dict[str, object]]:
    series = stack.influx.client().query(
        f"SELECT * FROM {storage.DEADLETTER_MEASUREMENT} WHERE {storage.DEVICE_TAG} = '{device}'"
    )
    return [dict(zip(s["columns"], row, strict=True)) for s in series for row in s["values"]]


def test_stored_and_resent_after_a_gateway_kill(
    stack: Stack, gateway: GatewayProcess, tmp_path: Path
) -> None:
    dev = make_device(stack, tmp_path, "fws", utc_ms=now_ms() - 2 * DAY_MS)
    dev.run(1)
    assert dev.live() == []  # stored and acknowledged end to end within the wake
    wait_until(lambda: len(stored(stack, dev.device_id)) == 1, 10, message="reading 0 stored")

    gateway.kill()
    dev.scenario(utc_ms=0, distance_mm=500.0)  # (utc_ms is read at the first power-on only)
    dev.run(1)  # published to a broker with no gateway session: lost there, kept on the device
    assert dev.live() == [1]
    gateway.start()
    gateway.wait_healthy()
    sends_before = gateway.metric("gateway_messages_received_total")
    dev.scenario(distance_mm=300.0)
    dev.run(1)  # an interval later the unacknowledged reading is due again: resent with seq 2
    assert dev.live() == []
    assert gateway.metric("gateway_messages_redelivered_total") == 0  # the device, not the broker
    assert gateway.metric("gateway_messages_received_total") > sends_before

    wait_until(lambda: len(stored(stack, dev.device_id)) == 3, 10, message="3 readings stored")
    rows = stored(stack, dev.device_id)
    measured = flashed(dev, rows)
    assert [r.seq for r in rows] == [0, 1, 2]
    assert rows == [measured[s] for s in (0, 1, 2)]
    # Reading 0 (the power-on one) is estimated, 1 and 2 carry the clock the ack taught.
    assert [bool(r.flags & p.Flag.TIME_ESTIMATED) for r in rows] == [True, False, False]
    assert rows[0].ts_ms < rows[1].ts_ms < rows[2].ts_ms
    assert [r.distance_mm for r in rows] == [800, 500, 300]


def fast_ntp_device(stack: Stack, tmp_path: Path, prefix: str) -> FakeDevice:
    """A device whose NTP server is three days fast, beyond the gateway's tolerance (a day)."""
    return make_device(stack, tmp_path, prefix, utc_ms=now_ms() + 3 * DAY_MS)


def test_a_reading_the_gateway_rejects_leaves_the_buffer_and_lands_as_a_dead_letter(
    stack: Stack, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """The reading is acknowledged as ``rejected`` and the firmware drops it instead of
    resending it forever; the gateway keeps it as a dead letter with its reason. The next
    reading is stamped with the time the acknowledgement taught, not one past the refused one
    (a bug this test found: every later reading was pinned three days ahead and refused too,
    until the real time caught up)."""
    dev = fast_ntp_device(stack, tmp_path, "fwr")
    dev.run(1)
    assert dev.live() == []
    [(mark, rec)] = read_slots(dev.dir / "buffer.bin")
    assert mark != LIVE and rec["seq"] == 0
    wait_until(lambda: dead_letters(stack, dev.device_id), 10, message="dead letter stored")
    [dl] = dead_letters(stack, dev.device_id)
    assert (dl["reason"], dl["seq"]) == (p.Reason.FUTURE_TIMESTAMP.value, 0)
    assert stored(stack, dev.device_id) == []

    dev.run(1)  # an hour later on the clock the acknowledgement set
    assert dev.live() == []
    # Both readings are accounted for, stored or dead-lettered; the second must be stored.
    wait_until(
        lambda: len(stored(stack, dev.device_id)) + len(dead_letters(stack, dev.device_id)) == 2,
        10,
        message="both readings handled",
    )
    assert [d["seq"] for d in dead_letters(stack, dev.device_id)] == [0]  # never resent
    rows = stored(stack, dev.device_id)
    assert rows == [flashed(dev, rows)[1]]
    assert abs(rows[0].ts_ms - now_ms()) < 2 * 3_600_000  # an hour ahead, not three days


def test_a_device_without_ntp_takes_the_time_from_the_gateways_online_answer(
    stack: Stack, gateway: GatewayProcess, tmp_path: Path
) -> None:
    # The fake world's own clock is far in the past; NTP is unreachable. Only the gateway's
    # answer to the `online` status can put the reading near the gateway's now.
    dev = make_device(stack, tmp_path, "fwc", ntp=False, utc_ms=now_ms() - 300 * DAY_MS)
    before = now_ms()
    dev.run(1)
    after = now_ms()
    assert dev.live() == []
    wait_until(lambda: stored(stack, dev.device_id), 10, message="reading stored")
    [row] = stored(stack, dev.device_id)
    assert row == flashed(dev, [row])[0]
    assert row.flags & p.Flag.TIME_ESTIMATED
    # Taken a few simulated seconds (Wi-Fi, sensors) before the answer came.
    assert before - 60_000 <= row.ts_ms <= after
