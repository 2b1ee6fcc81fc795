"""A virtual device: the wake cycle of docs/protocol.md "Device behaviour", as a pure state machine.

No sockets here (sans-I/O, like the protocol module): the fleet's transport (``mqtt_client``
through a real broker, or the in-process sink of the fast mode) calls

1. :meth:`VirtualDevice.take_reading` at each wake (appends to the flash buffer first;
   a full buffer drops the oldest reading and counts it in ``dropped``),
2. :meth:`on_connect` after the CONNACK (learns the clock, converts estimated timestamps once,
   says whether to SUBSCRIBE), then :meth:`on_message` for what the session delivers,
3. :meth:`outgoing` for what to publish (oldest first; never-sent plus resend-due readings; one
   as a ``reading``, more as ``batch`` messages of 50, at most 10 per wake),
4. :meth:`on_message` again for acknowledgements arriving within the wait, then
   :meth:`status_online` (once per boot) and DISCONNECT.

:meth:`reboot` models a power cut: ``seq``, ``boot``, ``dropped`` and the buffer are in flash and
survive; the clock and uptime do not. The virtual device's "NTP" is the simulated clock: it is
known again at the next successful connect (the acknowledgement's ``server_ts`` is the
acknowledger's wall clock, which differs from the simulated time, so it is not used as a clock
source here).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from smartbins import protocol as p

FIRMWARE = "sim-1.0.0"
BUFFER_CAPACITY = 2000  #: readings the flash ring buffer holds (about 80 days hourly)
BATCHES_PER_WAKE = 10
RESEND_MIN_S = 60
_TIME_ESTIMATED = int(p.Flag.TIME_ESTIMATED)  # a plain int: IntFlag operations are slow


@dataclass
class Entry:
    """One buffered reading; ``ts_ms`` is None until the clock is known (then set once)."""

    seq: int
    boot: int
    uptime_ms: int
    ts_ms: int | None
    fields: dict[str, object]
    flags: int
    sent_ms: int | None = None  #: simulated time of the last send
    sends: int = 0

    def reading(self, device: str) -> p.Reading:
        assert self.ts_ms is not None
        return p.Reading(
            device=device, seq=self.seq, boot=self.boot, ts_ms=self.ts_ms, flags=self.flags,
            **self.fields,  # type: ignore[arg-type]
        )


#: the protocol's compact JSON (smartbins.protocol._compact), with the encoder built once
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
#: (field name, wire key, float field) in the protocol's order after seq, boot, ts
#: (smartbins.protocol.READING_FIELDS; tests/simulator/test_device.py holds the two equal)
_WIRE_FIELDS = tuple(
    (f.attr, f.key, f.kind == "float")
    for f in p.READING_FIELDS if f.attr not in ("seq", "boot", "ts_ms", "flags", "errors")
)


def reading_wire(e: Entry) -> dict[str, Any]:
    """``protocol.reading_to_wire(e.reading(device))`` without building and re-validating a
    Reading per send: the values are the simulator's own and every test that decodes them
    checks them. The bytes are the protocol encoder's (tested on arbitrary readings)."""
    f: dict[str, Any] = e.fields
    out: dict[str, Any] = {"seq": e.seq, "boot": e.boot, "ts": e.ts_ms}
    for attr, key, is_float in _WIRE_FIELDS:
        v = f.get(attr)
        if v is not None:
            out[key] = float(v) if is_float else v
    out["flags"] = e.flags
    errors = f.get("errors")
    if errors:
        out["err"] = list(errors)
    return out


@dataclass
class Flash:
    """What survives a reboot."""

    next_seq: int = 0
    boot: int = 0
    dropped: int = 0
    last_ts_ms: int = 0
    buffer: deque[Entry] = field(default_factory=deque)
    config: p.DeviceConfig | None = None


@dataclass
class Outgoing:
    topic: str
    payload: bytes
    seqs: tuple[int, ...]


class VirtualDevice:
    def __init__(
        self,
        device_id: str,
        config: p.DeviceConfig,
        *,
        capacity: int = BUFFER_CAPACITY,
        boot_at_ms: int = 0,
    ) -> None:
        self.id = device_id
        self.flash = Flash(config=config)
        self.capacity = capacity
        self.boot_at_ms = boot_at_ms  #: simulated time of the last start (uptime origin)
        self.clock_known = False
        self.online_sent = False  #: status online published in this boot
        self.session = False  #: whether the broker should hold our session (subscribed)
        self.on_drop = None  # callable(seq, t_ms) set by the fleet to record drops in the truth
        self._topics: tuple[str, str] | None = None  #: reading and batch topics, made once

    # ------------------------------------------------------------------ flash and clock

    @property
    def config(self) -> p.DeviceConfig:
        assert self.flash.config is not None
        return self.flash.config

    def reboot(self, t_ms: int) -> None:
        """Power cut / crash and start again: uptime and clock are lost, flash is kept."""
        self.flash.boot += 1
        self.boot_at_ms = t_ms
        self.clock_known = False
        self.online_sent = False

    def uptime_ms(self, t_ms: int) -> int:
        return t_ms - self.boot_at_ms

    def interval_s(self, fill: float | None, temp: float | None, battery_mv: int | None) -> int:
        c = self.config
        if battery_mv is not None and battery_mv < c.low_battery_mv:
            return c.interval_low_battery_s
        if (fill is not None and fill >= c.near_full_pct) or (temp is not None and temp > 40):
            return c.interval_near_full_s
        return c.interval_s

    # ------------------------------------------------------------------ wake cycle

    def take_reading(self, t_ms: int, fields: dict[str, object], flags: int) -> Entry:
        """Step 2: the next seq, appended to the buffer before any send (dropping the oldest
        if full). ``fields`` are the Reading's measurement fields (mm, fill, temp, ...)."""
        f = self.flash
        if self.clock_known:
            ts: int | None = max(t_ms, f.last_ts_ms + 1)
            f.last_ts_ms = ts
        else:
            ts = None
            flags |= _TIME_ESTIMATED
        if len(f.buffer) >= self.capacity:
            old = f.buffer.popleft()
            f.dropped += 1
            if self.on_drop is not None:
                self.on_drop(old.seq, t_ms)
        entry = Entry(
            f.next_seq, f.boot, self.uptime_ms(t_ms), ts,
            {**fields, "dropped": f.dropped, "fw": FIRMWARE, "cal": self.config.cal},
            int(flags),
        )
        f.next_seq += 1
        f.buffer.append(entry)
        return entry

    def on_connect(self, t_ms: int, session_present: bool) -> list[str]:
        """After CONNACK. Returns the topics to SUBSCRIBE (QoS 1) when the session is new."""
        self._learn_clock(t_ms)
        if session_present and self.session:
            return []
        self.session = True
        return [p.topic_for("config", self.id), p.topic_for("ack", self.id)]

    def _learn_clock(self, t_ms: int) -> None:
        """Convert every estimated timestamp once, before its first send (protocol "Time")."""
        if self.clock_known:
            return
        self.clock_known = True
        f = self.flash
        now_uptime = self.uptime_ms(t_ms)
        entries = list(f.buffer)
        unknown = {e.seq for e in entries if e.ts_ms is None}
        # this boot's readings: utc_now - (uptime_now - uptime_at_reading)
        for e in entries:
            if e.ts_ms is None and e.boot == f.boot:
                e.ts_ms = t_ms - (now_uptime - e.uptime_ms)
        # earlier boots that never learned the time: one interval apart, before the next
        # known reading and after the last one before them
        interval_ms = self.config.interval_s * 1000
        nxt: int | None = None
        for e in reversed(entries):
            if e.ts_ms is None:
                e.ts_ms = (nxt if nxt is not None else t_ms) - interval_ms
            nxt = e.ts_ms
        # strictly increasing per device: every reading whose time was unknown was taken after
        # every reading already timed (those came before the clock was lost), so it goes after
        # the latest timestamp ever given, even one whose reading has left the buffer
        floor = f.last_ts_ms
        for e in entries:
            assert e.ts_ms is not None
            if e.seq in unknown:
                e.ts_ms = max(e.ts_ms, floor + 1, p.TS_MIN_MS)
            floor = max(floor, e.ts_ms)
        f.last_ts_ms = floor

    def on_message(self, msg: p.Message) -> int:
        """An acknowledgement or config from the session; returns how many readings it freed."""
        if isinstance(msg, p.DeviceConfig):
            self.flash.config = msg
            return 0
        if isinstance(msg, p.Ack):
            return self.acknowledged((*msg.stored, *msg.rejected))
        return 0

    def acknowledged(self, ranges: tuple[tuple[int, int], ...]) -> int:
        """Step 6: drop every buffered reading the ranges cover; returns how many."""
        if not ranges:
            return 0
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        buf = self.flash.buffer
        keep = deque(
            e for e in buf
            if e.seq < lo or e.seq > hi or not any(a <= e.seq <= b for a, b in ranges)
        )
        freed = len(buf) - len(keep)
        self.flash.buffer = keep
        return freed

    def resend_timeout_ms(self) -> int:
        return max(RESEND_MIN_S, self.config.interval_s // 2) * 1000

    def due(self, t_ms: int) -> list[Entry]:
        """Buffered readings to publish now, oldest first (never sent, or resend due)."""
        timeout = self.resend_timeout_ms()
        return [
            e for e in self.flash.buffer
            if e.ts_ms is not None and (e.sent_ms is None or t_ms - e.sent_ms >= timeout)
        ]

    def outgoing(self, t_ms: int) -> list[Outgoing]:
        """Step 7: the messages of this wake, oldest first; marks them sent at ``t_ms``."""
        due = self.due(t_ms)[: p.DEVICE_BATCH_READINGS * BATCHES_PER_WAKE]
        if not due:
            return []
        for e in due:
            e.sent_ms = t_ms
            e.sends += 1
        topics = self._topics
        if topics is None:
            topics = self._topics = (p.topic_for("reading", self.id),
                                     p.topic_for("batch", self.id))
        if len(due) == 1:
            payload = _JSON.encode(
                {"v": p.SCHEMA_VERSION, "dev": self.id, **reading_wire(due[0])}).encode()
            return [Outgoing(topics[0], _within(payload, p.MAX_READING_BYTES, self.id),
                             (due[0].seq,))]
        out = []
        for i in range(0, len(due), p.DEVICE_BATCH_READINGS):
            chunk = due[i : i + p.DEVICE_BATCH_READINGS]
            payload = _JSON.encode({"v": p.SCHEMA_VERSION, "dev": self.id,
                                    "readings": [reading_wire(e) for e in chunk]}).encode()
            out.append(Outgoing(topics[1], _within(payload, p.MAX_BATCH_BYTES, self.id),
                                tuple(e.seq for e in chunk)))
        return out

    def status_online(self, t_ms: int, battery_mv: int | None, rssi: int | None
                      ) -> tuple[str, bytes] | None:
        """Step 9: ``online`` after the first connect of a boot, else None. The transport calls
        :meth:`online_published` once the broker has it (a wake cut short sends it next time)."""
        if self.online_sent:
            return None
        return p.encode_message(
            p.Status(
                self.id, "online", ts_ms=max(t_ms, p.TS_MIN_MS), boot=self.flash.boot,
                fw=FIRMWARE, battery_mv=battery_mv, rssi_dbm=rssi, dropped=self.flash.dropped,
                buffered=len(self.flash.buffer),
            )
        )

    def online_published(self) -> None:
        self.online_sent = True

    def will(self) -> tuple[str, bytes]:
        return p.encode_message(p.Status(self.id, "lost"))


def _within(payload: bytes, limit: int, device: str) -> bytes:
    """The encoder's size check (protocol.encode_message raises the same)."""
    if len(payload) > limit:
        raise p.PayloadError(
            p.Reason.OVERSIZE, f"payload: {len(payload)} bytes, at most {limit}", device=device)
    return payload
