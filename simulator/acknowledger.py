"""The TEST acknowledger: stores readings and acknowledges them end to end, by the protocol.

A stand-in for the gateway (issue: gateway) so the simulator's backfill, resend and
acknowledgement paths can be tested now; tests only, never production. ``AckStore`` is the pure
part (decode with the protocol module, remember what is stored, build the ``Ack``); the fast
mode uses it in process. ``TestAcknowledger`` is the thin MQTT edge: the simulator's own
compact client with the gateway account on the shared subscription, QoS 1, acknowledging the
broker message only after it has "stored" the readings, then publishing the end-to-end ack.
``pause()`` stops acknowledging (readings pile up in the session, devices keep them buffered)
until ``resume()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable

from simulator.mqtt_client import (
    Connection,
    Message,
    MqttError,
    connect,
    puback_packet,
    publish_packet,
)
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
        # One message holds at most MAX_BATCH_READINGS readings: one acknowledgement covers it.
        (ack,) = p.acks_for(
            msg.device, max(self._clock(), p.TS_MIN_MS), (r.seq for r in readings), rej
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


class _AckConnection(Connection):
    """The acknowledger's subscription: every received chunk is handled whole, and what it
    owes (the broker PUBACKs, after storing, and the end-to-end acks) leaves in one write."""

    auto_ack = False  # acknowledge the broker message only after the readings are stored
    owner: TestAcknowledger

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.messages and not self.closed:
            out = self.owner._take(self.messages)
            if out:
                self._write(out)


class TestAcknowledger:
    """AckStore behind a real MQTT subscription with the gateway account (tests only).

    One connection (clean session: a persistent member of ``$share/gateways`` that stopped
    would keep taking its share of every later message on a shared broker, design.md) on
    the simulator's own MQTT client, in an event loop of its own thread. Each message is
    stored, then PUBACKed to the broker, then its acknowledgement published at QoS 1 (the
    broker's PUBACKs for those are not waited for: an acknowledgement is idempotent and a lost
    one is made good by the device's resend). Everything one received chunk owes goes out
    in one write: a test stand-in should not cost the machine what the fleet it tests costs
    (bench/simulator_scale.py runs it next to ten thousand devices)."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: int, creds: Credentials, client_id: str = "test-acknowledger"
                 ) -> None:
        self.store = AckStore()
        self.port = port
        self.creds = creds
        # The broker takes only "<account>-..." client ids from a service account.
        self.client_id = f"{creds.username}-{client_id}"
        self._paused = False
        self._held: list[Message] = []
        self._pid = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.conn: _AckConnection | None = None
        self._thread: threading.Thread | None = None
        self._closed: asyncio.Future[None] | None = None

    def _take(self, messages: deque[Message]) -> bytes:
        """Store what arrived (or hold it while paused); return what to write."""
        out = bytearray()
        while messages:
            msg = messages.popleft()
            if self._paused:
                self._held.append(msg)
                continue
            out += self._process(msg)
        return bytes(out)

    def _process(self, msg: Message) -> bytes:
        ack = self.store.handle(msg.topic, msg.payload)
        out = puback_packet(msg.pid) if msg.qos else b""
        if ack is not None:
            self._pid = self._pid % 65535 + 1
            out += publish_packet(ack[0], ack[1], self._pid)
        return out

    async def _connect(self) -> None:
        conn = await connect(
            self.port, self.client_id, self.creds.username, self.creds.password, clean=True,
            keepalive=0, factory=_AckConnection,
        )
        assert isinstance(conn, _AckConnection)
        conn.owner = self
        await conn.subscribe([p.shared_subscription()])
        self.conn = conn

    def start(self, timeout: float = 5.0) -> TestAcknowledger:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self.loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(asyncio.wait_for(self._connect(), timeout))
                self._closed = loop.create_future()
            except BaseException as e:  # reported by start()
                failure.append(e)
            started.set()
            try:
                if not failure:
                    loop.run_until_complete(self._closed)  # type: ignore[arg-type]
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=self.client_id, daemon=True)
        self._thread.start()
        started.wait(timeout + 5)
        if failure or self.conn is None:
            raise TimeoutError(f"test acknowledger: no SUBACK ({failure[0] if failure else ''})")
        return self

    def _in_loop(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` in the acknowledger's loop and wait for it."""
        if self.loop is None or self._thread is None or not self._thread.is_alive():
            fn()
            return
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)

    def pause(self) -> None:
        """Stop storing and acknowledging (like a gateway whose database is down)."""

        def do() -> None:
            self._paused = True

        self._in_loop(do)

    def resume(self) -> None:
        def do() -> None:
            self._paused = False
            held, self._held = self._held, []
            out = b"".join(self._process(m) for m in held)
            if out and self.conn is not None and not self.conn.closed:
                self.conn._write(out)

        self._in_loop(do)

    def stop(self) -> None:
        def do() -> None:
            conn = self.conn
            if conn is not None and not conn.closed:
                with contextlib.suppress(MqttError):
                    conn._write(b"\xe0\x00")  # DISCONNECT: a clean session ends with it
                conn.abort()
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)

        self._in_loop(do)
        if self._thread is not None:
            self._thread.join(5)
