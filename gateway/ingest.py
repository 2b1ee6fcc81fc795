"""The gateway's pure core: decode and validate, batch, and decide what to acknowledge.

No I/O here (no paho, no HTTP, no clock): the MQTT loop feeds in messages with the time they
arrived, the store reports which points InfluxDB refused for good, and this module says which
broker messages to acknowledge and which end-to-end acknowledgements and dead letters to
publish. That keeps the rules that make "exactly once" true testable in memory.

The rules:

* Each message becomes readings, dead letters and at most one status. A batch is validated per
  reading (the protocol module returns good readings and one rejection per bad one), so one bad
  reading never holds back the others. ``ts`` beyond now + tolerance is ``future_timestamp``;
  old readings are never rejected.
* A message's readings are never split across writes: a broker message is acknowledged once,
  after everything it carried is in InfluxDB (readings and dead letters alike).
* Within one write, the same point key (device, ts) is written once (a redelivery and a device
  resend of the same reading often meet in one batch); every message that carried it is still
  acknowledged.
* The end-to-end acknowledgement of a device names the seqs stored and the seqs rejected, as
  ranges, only for what this write made durable.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from smartbins import protocol as p
from smartbins import storage


@dataclass
class Inbound:
    """One broker message, decoded. ``token`` identifies the broker delivery (mid and the
    connection it came on) for the MQTT layer; the core only carries it."""

    topic: str
    payload: bytes
    received_ms: int
    readings: list[p.Reading] = field(default_factory=list)
    dead: list[p.DeadLetter] = field(default_factory=list)
    status: p.Status | None = None
    token: object = None
    #: The broker sent a retained message (an old one, at subscribe time): not device activity.
    retained: bool = False

    @property
    def points(self) -> int:
        return len(self.readings) + len(self.dead)


def _dead(
    err: p.PayloadError, topic: str, payload: bytes, received_ms: int, fallback_device: str | None
) -> p.DeadLetter:
    device = err.device or fallback_device
    return p.DeadLetter(
        reason=err.reason,
        detail=err.message,
        topic=topic,
        payload=payload,
        received_ms=received_ms,
        device=device if device and p.is_device_id(device) else None,
        seq=err.seq,
        index=err.index,
    )


def _topic_device(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[2] if len(parts) == 4 and p.is_device_id(parts[2]) else None


def decode(
    topic: str,
    payload: bytes,
    received_ms: int,
    future_tolerance_ms: int,
    token: object = None,
    retained: bool = False,
) -> Inbound:
    """Decode one broker message into readings, dead letters and status. Never raises for bad
    input: everything bad becomes a dead letter with its reason. ``retained``: the broker sent
    a retained message, whose age is unknown (a status is then not taken as activity)."""
    out = Inbound(topic, payload, received_ms, token=token, retained=retained)
    try:
        msg = p.parse_message(topic, payload)
    except p.PayloadError as e:
        out.dead.append(_dead(e, topic, payload, received_ms, _topic_device(topic)))
        return out
    except Exception as e:  # a parser bug must not stop the gateway: dead-letter it
        err = p.PayloadError(p.Reason.BAD_VALUE, f"payload: could not be decoded ({e!r})")
        out.dead.append(_dead(err, topic, payload, received_ms, _topic_device(topic)))
        return out
    if isinstance(msg, p.Status):
        out.status = msg
        return out
    if not isinstance(msg, p.Reading | p.ReadingBatch):
        # A kind the gateway's subscription never brings (parse_topic allows only sb/up/).
        err = p.PayloadError(p.Reason.BAD_TOPIC, f"topic {topic!r}: not an upstream message")
        out.dead.append(_dead(err, topic, payload, received_ms, _topic_device(topic)))
        return out
    if isinstance(msg, p.ReadingBatch):
        out.dead.extend(_dead(e, topic, payload, received_ms, msg.device) for e in msg.rejected)
    limit = received_ms + future_tolerance_ms
    for reading in msg.readings if isinstance(msg, p.ReadingBatch) else (msg,):
        if reading.ts_ms <= limit:
            out.readings.append(reading)
            continue
        index = _index_of(msg, reading) if isinstance(msg, p.ReadingBatch) else None
        where = f"readings[{index}]." if index is not None else ""
        err = p.PayloadError(
            p.Reason.FUTURE_TIMESTAMP,
            f"{where}ts: {reading.ts_ms} is {(reading.ts_ms - received_ms) / 1000:.0f} s ahead "
            f"of the gateway's clock (tolerance {future_tolerance_ms / 1000:g} s)",
            device=reading.device,
            seq=reading.seq,
            index=index,
        )
        out.dead.append(_dead(err, topic, payload, received_ms, reading.device))
    return out


def _index_of(batch: p.ReadingBatch, reading: p.Reading) -> int:
    """Position of a good reading in the original batch (bad ones took their own positions)."""
    bad = sorted(e.index for e in batch.rejected if e.index is not None)
    index = batch.readings.index(reading)
    for b in bad:
        if b <= index:
            index += 1
    return index


# --------------------------------------------------------------------------- batching


@dataclass
class Batcher:
    """Collects decoded messages until ``max_points`` or until the oldest is ``max_age_ms`` old.

    Counts points (readings and dead letters), not messages: that is what a write costs.
    """

    max_points: int
    max_age_ms: int
    pending: deque[tuple[int, Inbound]] = field(default_factory=deque)
    points: int = 0

    def add(self, inbound: Inbound, now_ms: int) -> None:
        self.pending.append((now_ms, inbound))
        self.points += max(1, inbound.points)

    def __len__(self) -> int:
        return len(self.pending)

    def due(self, now_ms: int) -> bool:
        if not self.pending:
            return False
        return self.points >= self.max_points or now_ms - self.pending[0][0] >= self.max_age_ms

    def wait_ms(self, now_ms: int) -> int | None:
        """How long until the next flush is due (None: nothing pending)."""
        if not self.pending:
            return None
        if self.due(now_ms):
            return 0
        return self.pending[0][0] + self.max_age_ms - now_ms

    def take(self) -> Batch:
        """Up to ``max_points`` worth of whole messages (at least one), oldest first."""
        taken: list[Inbound] = []
        points = 0
        while self.pending:
            cost = max(1, self.pending[0][1].points)
            if taken and points + cost > self.max_points:
                break
            taken.append(self.pending.popleft()[1])
            points += cost
        self.points -= points
        return Batch(taken)


class ClockCheck:
    """Remembers, per device, the highest seq this gateway has stored and its timestamp, so that
    a reading with a higher seq but a timestamp not after it (a clock that stood still or went
    back: a device after a power loss, before its first ``server_ts``) is stored flagged
    (``storage.SUSPECT_TS_FIELD``). One entry per device; the writer thread's alone. Gateways
    sharing the load each see part of a device's readings and check what they see."""

    def __init__(self) -> None:
        self.newest: dict[str, tuple[int, int]] = {}

    def suspect(self, r: p.Reading) -> bool:
        """True if ``r`` has a higher seq than the newest known but not a later timestamp;
        remembers ``r`` if it is the newest."""
        known = self.newest.get(r.device)
        if known is None or r.seq > known[0]:
            self.newest[r.device] = (r.seq, r.ts_ms)
        return known is not None and r.seq > known[0] and r.ts_ms <= known[1]


@dataclass
class Batch:
    """Messages written together. Build the points, learn which the store refused, then ask
    for acknowledgements and dead letters."""

    messages: list[Inbound]
    store_rejected: dict[tuple[str, int], str] = field(default_factory=dict)

    def reading_points(
        self, clock: ClockCheck | None = None
    ) -> list[tuple[storage.Point, p.Reading]]:
        """One point per distinct (device, seq), in arrival order; readings whose timestamp is
        implausible for their seq (``clock``) flagged. Keyed by seq, not timestamp: two
        readings with one timestamp are two readings (storage.reading_time_ns)."""
        seen: set[tuple[str, int]] = set()
        out: list[tuple[storage.Point, p.Reading]] = []
        for m in self.messages:
            for r in m.readings:
                key = (r.device, r.seq)
                if key not in seen:
                    seen.add(key)
                    suspect = clock is not None and clock.suspect(r)
                    out.append((storage.reading_point(r, suspect_ts=suspect), r))
        return out

    def reject_stored(self, reading: p.Reading, detail: str) -> None:
        """The store refused this reading's point for good (a 4xx after splitting)."""
        self.store_rejected[(reading.device, reading.seq)] = detail

    def dead_letters(self) -> list[p.DeadLetter]:
        """Validation rejects plus readings the store refused (``store_rejected``)."""
        out: list[p.DeadLetter] = []
        for m in self.messages:
            out.extend(m.dead)
            if not self.store_rejected:
                continue
            for r in m.readings:
                detail = self.store_rejected.get((r.device, r.seq))
                if detail is not None:
                    out.append(
                        p.DeadLetter(
                            reason=p.Reason.STORE_REJECTED,
                            detail=detail,
                            topic=m.topic,
                            payload=m.payload,
                            received_ms=m.received_ms,
                            device=r.device,
                            seq=r.seq,
                            index=_index_in(m, r),
                        )
                    )
        return out

    def acks(self, now_ms: int) -> list[p.Ack]:
        """End-to-end acknowledgements, one (or a few, for many ranges) per device, and one
        (maybe with empty ranges) per device that announced itself ``online``."""
        stored: dict[str, set[int]] = {}
        rejected: dict[str, set[int]] = {}
        for m in self.messages:
            for r in m.readings:
                into = rejected if (r.device, r.seq) in self.store_rejected else stored
                into.setdefault(r.device, set()).add(r.seq)
            for d in m.dead:
                if d.device and d.seq is not None:
                    rejected.setdefault(d.device, set()).add(d.seq)
        # docs/protocol.md: a gateway answers every `online` status with an acknowledgement
        # carrying the current server_ts (ranges may be empty): how a device without NTP and
        # with nothing to acknowledge learns the time.
        # A retained `online` is the device's last word from some earlier session, not a
        # device waiting now: no answer.
        online = {
            m.status.device
            for m in self.messages
            if m.status is not None and m.status.state == "online" and not m.retained
        }
        out: list[p.Ack] = []
        for device in sorted(set(stored) | set(rejected) | online):
            out += p.acks_for(device, now_ms, stored.get(device, ()), rejected.get(device, ()))
        return out

    def statuses(self) -> list[tuple[p.Status, int]]:
        """Status messages the devices sent now (with the gateway's receive time)."""
        return [
            (m.status, m.received_ms)
            for m in self.messages
            if m.status is not None and not m.retained
        ]

    def retained_statuses(self) -> list[p.Status]:
        """Retained status messages the broker replayed at subscribe time (of unknown age)."""
        return [m.status for m in self.messages if m.status is not None and m.retained]

    def readings(self) -> list[p.Reading]:
        return [r for m in self.messages for r in m.readings]

    @property
    def size(self) -> int:
        return sum(m.points for m in self.messages)


def _index_in(m: Inbound, r: p.Reading) -> int | None:
    if not m.topic.endswith("/batch"):
        return None
    try:
        msg = p.parse_message(m.topic, m.payload)
    except p.PayloadError:
        return None
    return _index_of(msg, r) if isinstance(msg, p.ReadingBatch) and r in msg.readings else None


# --------------------------------------------------------------------------- log rate limit


@dataclass
class LogLimiter:
    """At most one log line per key (device) per ``interval_ms``; counts what it held back."""

    interval_ms: int
    last: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)

    def allow(self, key: str, now_ms: int) -> tuple[bool, int]:
        """(log now?, how many lines were held back for this key since the last one)."""
        last = self.last.get(key)
        if last is not None and now_ms - last < self.interval_ms:
            self.held[key] = self.held.get(key, 0) + 1
            return False, 0
        self.last[key] = now_ms
        if len(self.last) > 100_000:  # bounded: forget devices not heard from recently
            cutoff = now_ms - self.interval_ms
            self.last = {k: v for k, v in self.last.items() if v >= cutoff}
        return True, self.held.pop(key, 0)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
