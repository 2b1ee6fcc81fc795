"""The TEST acknowledger: stores readings and acknowledges them end to end, by the protocol.

A stand-in for the gateway (issue: gateway) so the simulator's backfill, resend and
acknowledgement paths can be tested now; tests only, never production. ``AckStore`` is the pure
part (decode with the protocol module, remember what is stored, build the ``Ack``); the fast
mode uses it in process. ``TestAcknowledger`` is the thin MQTT edge: a paho client with the
gateway account on the shared subscription, QoS 1, acknowledging the broker message
(``manual_ack``) only after it has "stored" the readings, then publishing the end-to-end ack.
``pause()`` stops acknowledging (readings pile up in the session, devices keep them buffered)
until ``resume()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from smartbins import protocol as p
from smartbins.provisioning import Credentials


class AckStore:
    """Decoded, stored readings per device, and the acknowledgements they earn."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        #: device -> seq -> the decoded reading (None when stored without the wire, fast mode)
        self.stored: dict[str, dict[int, p.Reading | None]] = {}
        #: device -> seq -> clock time it was first stored (the simulated clock in fast mode)
        self.stored_ms: dict[str, dict[int, int]] = {}
        self.rejected: dict[str, set[int]] = {}
        self.messages = 0
        self.duplicates = 0
        self.status: dict[str, p.Status] = {}
        self.errors: list[p.PayloadError] = []
        self._clock = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.lock = threading.Lock()

    def handle(self, topic: str, payload: bytes) -> tuple[str, bytes] | None:
        """Store what the message holds; return the acknowledgement to publish (or None)."""
        try:
            msg = p.parse_message(topic, payload)
        except p.PayloadError as e:
            with self.lock:
                self.errors.append(e)
            return None
        if isinstance(msg, p.Status):
            with self.lock:
                self.status[msg.device] = msg
            return None
        if isinstance(msg, p.Reading):
            readings, bad = (msg,), ()
        elif isinstance(msg, p.ReadingBatch):
            readings, bad = msg.readings, msg.rejected
        else:
            return None
        with self.lock:
            self.messages += 1
            mine = self.stored.setdefault(msg.device, {})
            when = self.stored_ms.setdefault(msg.device, {})
            now = self._clock()
            for r in readings:
                if r.seq in mine:
                    self.duplicates += 1
                mine[r.seq] = r
                when.setdefault(r.seq, now)
            rej = {e.seq for e in bad if e.seq is not None}
            self.rejected.setdefault(msg.device, set()).update(rej)
            self.errors.extend(bad)
        ack = p.Ack(
            msg.device,
            max(self._clock(), p.TS_MIN_MS),
            p.ranges_from_seqs(r.seq for r in readings),
            p.ranges_from_seqs(rej),
        )
        return p.encode_message(ack)

    def store_seqs(self, device: str, seqs: tuple[int, ...]) -> None:
        """Store without the wire (the fast mode's shortcut): same bookkeeping, no decoding."""
        with self.lock:
            self.messages += 1
            mine = self.stored.setdefault(device, {})
            when = self.stored_ms.setdefault(device, {})
            now = self._clock()
            for s in seqs:
                if s in mine:
                    self.duplicates += 1
                mine[s] = None
                when.setdefault(s, now)

    def seqs(self) -> dict[str, set[int]]:
        with self.lock:
            return {d: set(m) for d, m in self.stored.items()}

    def count(self) -> int:
        with self.lock:
            return sum(len(m) for m in self.stored.values())


class TestAcknowledger:
    """AckStore behind a real MQTT subscription with the gateway account (tests only)."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: int, creds: Credentials, client_id: str = "test-acknowledger"
                 ) -> None:
        self.store = AckStore()
        self.port = port
        self._paused = threading.Event()
        self._subscribed = threading.Event()
        # A clean session: a persistent member of $share/gateways that stopped would keep
        # taking its share of every later message on a shared broker (design.md).
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
            manual_ack=True,
        )
        self.client.username_pw_set(creds.username, creds.password)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self._held: list[mqtt.MQTTMessage] = []

    def _on_connect(self, client: mqtt.Client, u: object, flags: object, rc: object, pr: object
                    ) -> None:
        client.subscribe(p.shared_subscription(), qos=1)

    def _on_message(self, client: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if self._paused.is_set():
            self._held.append(msg)
            return
        self._process(msg)

    def _process(self, msg: mqtt.MQTTMessage) -> None:
        out = self.store.handle(msg.topic, msg.payload)
        self.client.ack(msg.mid, msg.qos)
        if out is not None:
            self.client.publish(*out, qos=1)

    def start(self, timeout: float = 5.0) -> TestAcknowledger:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("test acknowledger: no SUBACK")
        return self

    def pause(self) -> None:
        """Stop storing and acknowledging (like a gateway whose database is down)."""
        self._paused.set()

    def resume(self) -> None:
        held, self._held = self._held, []
        self._paused.clear()
        for msg in held:
            self._process(msg)

    def stop(self) -> None:
        self.client.unsubscribe(p.shared_subscription())
        self.client.disconnect()
        self.client.loop_stop()
