"""A small seeded stand-in device fleet for the gateway's focused tests (restarts, shared
subscription, end to end) and the throughput bench's provisioning; the chaos run uses the
simulator's virtual devices (gw_chaos.py).

It follows docs/protocol.md "Device behaviour" where it matters to the gateway: per-device seq
that never repeats, strictly increasing ``ts``, a buffer that keeps every reading until an
end-to-end acknowledgement covers it (``stored`` or ``rejected``), a persistent session
(``clean_session=0``) with a subscription to its ack and config topics when the CONNACK says
``session present = 0``, one ``reading`` message for one pending reading and ``batch`` messages
of at most 50 (at most 10 per send round) for more, and a resend of whatever stays unacknowledged
longer than the resend timeout. It records ground truth (produced, dropped from a full buffer).

Unlike a real device it stays connected between rounds (no deep sleep), so one paho network
thread per device does the work, and a test can make exactly the messages it needs
(``produce``, ``pump``, ``pending``, ``expected``).
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from smartbins import protocol as p
from smartbins import storage
from smartbins.passwords import PasswordFile
from smartbins.provisioning import Credentials, ProvisionRequest, provision
from smartbins.registry import Registry

BASE_TS_MS = 1_764_000_000_000  # 2025-11-24: in the past, so never a future timestamp


def provision_fleet(
    registry_path: str, passwords: PasswordFile, prefix: str, n: int
) -> list[Credentials]:
    """Register ``n`` devices ``<prefix>-0000``... each on its own bin, with broker accounts."""
    reg = Registry(registry_path)
    try:
        if not reg.db.execute("SELECT 1 FROM municipalities WHERE id='0101'").fetchone():
            reg.add_municipality("0101", "Københavns Kommune")
        with reg.transaction():
            for i in range(n):
                reg.add_site(f"{prefix}-s{i}", "0101", 55.68, 12.57, "test")
                reg.add_bin(f"{prefix}-b{i}", f"{prefix}-s{i}", "residual", 660)
        return provision(
            reg,
            passwords,
            [ProvisionRequest(f"{prefix}-{i:04d}", f"{prefix}-b{i}") for i in range(n)],
        )
    finally:
        reg.close()


@dataclass
class Pending:
    reading: p.Reading
    sent_at: float | None = None  # monotonic time of the last send


@dataclass
class Device:
    cred: Credentials
    port: int
    rng: random.Random
    resend_timeout_s: float = 3.0
    capacity: int = 10_000
    seq: int = 0
    ts_ms: int = BASE_TS_MS
    buffer: dict[int, Pending] = field(default_factory=dict)
    produced: list[int] = field(default_factory=list)
    dropped_seqs: list[int] = field(default_factory=list)
    acks: int = 0
    #: Readings published, first sends and resends alike.
    sends: int = 0
    history: dict[int, p.Reading] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = self.cred.username
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.id, clean_session=False)
        c.username_pw_set(self.id, self.cred.password)
        will_topic, will = p.encode_message(p.Status(self.id, "lost"))
        c.will_set(will_topic, will, qos=1, retain=True)
        c.reconnect_delay_set(0.2, 2.0)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.client = c

    def start(self, threaded: bool = True) -> None:
        self.threaded = threaded
        self.next_try = 0.0
        self.connect_started = 0.0
        self.client.connect_async("127.0.0.1", self.port, keepalive=10)
        if threaded:
            self.client.loop_start()

    def poll(self, now: float) -> None:
        """One turn of the network loop, for a fleet driven by one thread (no loop_start):
        reconnect when the connection is gone, at most every 0.5-2 s (seeded)."""
        # loop() also while the CONNACK is pending: a second reconnect() before it is read
        # would meet a session the first made, and skip the subscription (found the hard way).
        # A CONNACK that never comes (seen with hundreds of simultaneous connects) is given
        # up after 5 s, as the firmware's CONNECT time budget does.
        ok = self.client.loop(timeout=0) == mqtt.MQTT_ERR_SUCCESS
        if ok and (self.client.is_connected() or now - self.connect_started < 5.0):
            return
        if now < self.next_try:
            return
        self.next_try = now + self.rng.uniform(0.5, 2.0)
        self.connect_started = now
        try:
            self.client.reconnect()
        except OSError:
            return

    def close(self) -> None:
        self.client.disconnect()
        if self.threaded:
            self.client.loop_stop()

    def _on_connect(
        self, c: mqtt.Client, u: object, flags: mqtt.ConnectFlags, rc: object, pr: object
    ) -> None:
        if not flags.session_present:
            c.subscribe([(p.topic_for("ack", self.id), 1), (p.topic_for("config", self.id), 1)])

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        decoded = p.parse_message(msg.topic, msg.payload)
        if isinstance(decoded, p.Ack):
            with self.lock:
                self.acks += 1
                for lo, hi in (*decoded.stored, *decoded.rejected):
                    for s in range(lo, hi + 1):
                        self.buffer.pop(s, None)

    def measure(self) -> p.Reading:
        """Take a reading and buffer it before any send (dropping the oldest when full)."""
        with self.lock:
            self.ts_ms = max(self.ts_ms + self.rng.randint(60_000, 3_600_000), self.ts_ms + 1)
            level = self.rng.uniform(0, 100)
            r = p.Reading(
                device=self.id,
                seq=self.seq,
                boot=1,
                ts_ms=self.ts_ms,
                fw="test-1.0",
                interval_s=3600,
                distance_mm=int(1000 * (1 - level / 100)),
                fill_pct=round(level, 1),
                # Unique per reading (for 35,000 seqs): a row that holds another reading's
                # values, or two rows for one seq, shows in assert_exactly_once.
                temp_c=unique_temp(self.seq),
                battery_mv=self.rng.randint(3300, 4200),
                rssi_dbm=-self.rng.randint(40, 90),
                dropped=len(self.dropped_seqs),
            )
            self.produced.append(self.seq)
            self.history[self.seq] = r
            self.seq += 1
            if len(self.buffer) >= self.capacity:
                oldest = min(self.buffer)
                del self.buffer[oldest]
                self.dropped_seqs.append(oldest)
            self.buffer[r.seq] = Pending(r)
            return r

    def pump(self, now: float | None = None) -> int:
        """Publish what was never sent or is due for a resend, as the protocol says."""
        now = time.monotonic() if now is None else now
        if not self.client.is_connected():
            return 0
        with self.lock:
            due = [
                pe
                for _, pe in sorted(self.buffer.items())
                if pe.sent_at is None or now - pe.sent_at >= self.resend_timeout_s
            ]
            if not due:
                return 0
            if len(due) == 1:
                msgs = [p.encode_message(due[0].reading)]
                sent = due
            else:
                sent = due[: p.DEVICE_BATCH_READINGS * 10]
                msgs = p.encode_batches(self.id, [pe.reading for pe in sent])
            for pe in sent:
                pe.sent_at = now
            self.sends += len(sent)
        for topic, payload in msgs:
            self.client.publish(topic, payload, qos=1)
        return len(sent)

    def forget_acks(self) -> None:
        """Buffer again every reading not dropped, as if their acknowledgements were lost."""
        with self.lock:
            dropped = set(self.dropped_seqs)
            for seq, r in self.history.items():
                if seq not in dropped:
                    self.buffer[seq] = Pending(r)

    def pending(self) -> int:
        with self.lock:
            return len(self.buffer)

    def expected(self) -> set[int]:
        """Ground truth: every seq produced and not dropped from a full buffer."""
        with self.lock:
            return set(self.produced) - set(self.dropped_seqs)


class Fleet:
    def __init__(self, creds: list[Credentials], port: int, seed: int, **kw: object) -> None:
        rng = random.Random(seed)
        self.devices = [
            Device(c, port, random.Random(rng.getrandbits(64)), **kw)  # type: ignore[arg-type]
            for c in creds
        ]

    def start(self, threaded: bool = True) -> None:
        """``threaded``: one paho network thread per device (fine for a few hundred). Else one
        driver thread turns every device's loop (thousands of devices without thousands of
        threads)."""
        self._stop = threading.Event()
        self._driver: threading.Thread | None = None
        for d in self.devices:
            d.start(threaded)
        if not threaded:
            self._driver = threading.Thread(target=self._drive, name="fleet-driver", daemon=True)
            self._driver.start()

    def _drive(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for d in self.devices:
                d.poll(now)
            time.sleep(0.005)

    def connected(self) -> bool:
        return all(d.client.is_connected() for d in self.devices)

    def produce(self, n: int = 1) -> None:
        for d in self.devices:
            for _ in range(n):
                d.measure()

    def pump(self) -> int:
        return sum(d.pump() for d in self.devices)

    def pending(self) -> int:
        return sum(d.pending() for d in self.devices)

    def expected(self) -> dict[str, set[int]]:
        return {d.id: d.expected() for d in self.devices}

    def close(self) -> None:
        self._stop.set()
        if self._driver is not None:
            self._driver.join(5)
        for d in self.devices:
            d.close()


def secret_file(dir: Path, name: str, value: str) -> Path:
    """A secret in a file of mode 0600 (what read_secret accepts)."""
    path = dir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return path


def unique_temp(seq: int) -> float:
    """A temperature [°C] in -5..30 that no other seq below 35,000 of the device shares."""
    return round(-5 + (seq % 35_000) / 1000, 3)


def stored_rows(client: object, devices: list[str]) -> dict[str, list[p.Reading]]:
    """Every stored reading row of these devices (a list: a double shows), decoded back."""
    out: dict[str, list[p.Reading]] = {d: [] for d in devices}
    series = client.query(f"SELECT * FROM {storage.MEASUREMENT} GROUP BY {storage.DEVICE_TAG}")  # type: ignore[attr-defined]
    for s in series:
        dev = s["tags"][storage.DEVICE_TAG]
        cols = s["columns"]
        for row in s["values"]:
            values = {c: v for c, v in zip(cols, row, strict=True) if v is not None}
            out.setdefault(dev, []).append(
                storage.reading_from_stored(dev, int(values.pop("time")), values)
            )
    return out


def assert_stored_once(client: object, fleet: Fleet) -> dict[str, int]:
    """Every reading the devices kept is stored once, as the device made it: one row per
    (device, seq), and each row equal, field by field and in its time, to the device's reading
    (whose temperature is unique per seq, so a row overwritten by another reading shows)."""
    stored = stored_rows(client, [d.id for d in fleet.devices])
    expected = fleet.expected()
    assert set(stored) == set(expected), "a device that never existed has readings"
    for d in fleet.devices:
        rows = stored[d.id]
        seqs = [r.seq for r in rows]
        assert len(seqs) == len(set(seqs)), f"{d.id}: a reading stored twice"
        assert set(seqs) == expected[d.id], (
            f"{d.id}: missing {sorted(expected[d.id] - set(seqs))[:10]}, "
            f"unexpected {sorted(set(seqs) - expected[d.id])[:10]}"
        )
        wrong = [r.seq for r in rows if r != d.history[r.seq]]
        assert not wrong, f"{d.id}: rows that differ from the reading sent: {wrong[:10]}"
    return {"devices": len(expected), "readings": sum(len(s) for s in expected.values())}


def stored_seqs(client: object, devices: list[str]) -> dict[str, list[int]]:
    """Every stored (device, seq), as lists so that a double would show."""
    out: dict[str, list[int]] = {d: [] for d in devices}
    series = client.query(f"SELECT seq FROM {storage.MEASUREMENT} GROUP BY {storage.DEVICE_TAG}")  # type: ignore[attr-defined]
    for s in series:
        dev = s["tags"][storage.DEVICE_TAG]
        out.setdefault(dev, []).extend(int(v[1]) for v in s["values"])
    return out
