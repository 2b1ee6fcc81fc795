# smartbins firmware: flash ring buffer of readings, torn-record detection, seq/boot persistence
# Apache-2.0; part of smartbins. Every reading is written here before any send is tried.

import json
import os
import struct
from binascii import crc32

from log import log_warn
from micropython import const

# A slot holds one reading: [mark][len u16][seq u32][dropped u32][JSON][crc32 u32], rest unused.
# A reading goes to slot seq % slots in three writes: mark WRITING, the rest, mark LIVE. A
# power cut anywhere in between leaves WRITING (a torn record: skipped), never a record that
# looks whole. A reading whose end-to-end acknowledgement arrived is marked DONE by rewriting
# the one mark byte (a one-byte write is all or nothing); the CRC does not cover the mark, so
# a DONE record's seq stays readable and the sequence number survives even when every reading
# has been acknowledged.
LIVE = const(0xB5)
DONE = const(0xB4)
WRITING = const(0xB6)
_HEAD = const(11)
_TAIL = const(4)
SLOT_SIZE = const(384)


class PowerCut(BaseException):
    """Raised by test flashes that stop a write part-way, as a power cut would: a
    BaseException, so that nothing on the way up mistakes it for an error it may handle."""


class FileFlash:
    """A region of flash as a file (LittleFS on the ESP32, a plain file on Unix), opened once
    per wake: recovery reads every slot, and an open per slot costs seconds on LittleFS."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        try:
            have = os.stat(path)[6]
        except OSError:
            have = 0
        if have < size:
            with open(path, "ab") as f:
                f.write(b"\xff" * (size - have))
        self.f = open(path, "r+b")  # noqa: SIM115 - held for the wake, closed by close()

    def read(self, offset: int, n: int) -> bytes:
        self.f.seek(offset)
        return self.f.read(n)

    def write(self, offset: int, data: bytes) -> None:
        """Write and flush (on LittleFS a flush commits the file)."""
        self.f.seek(offset)
        self.f.write(data)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _atomic_write(path: str, text: str) -> None:
    """Write next to ``path`` and rename over it: after a power cut the old or the new file
    is there, never half of one (LittleFS and POSIX rename are atomic)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def pack(rec: dict) -> bytes:
    """A slot's bytes: mark, length, seq and dropped in a fixed header (recovery reads only
    these, no JSON), the record as JSON, and a CRC-32 over everything but the mark."""
    payload = json.dumps(rec).encode()
    if len(payload) > SLOT_SIZE - _HEAD - _TAIL:
        raise ValueError("record of %d bytes does not fit a slot" % len(payload))
    head = struct.pack("<BHII", LIVE, len(payload), rec["seq"], rec["dropped"])
    body = head[1:] + payload
    return head[:1] + body + struct.pack("<I", crc32(body))


def check(raw: bytes):
    """(mark, seq, dropped) of an intact slot, or None for an empty slot or a torn record."""
    if len(raw) < _HEAD + _TAIL or raw[0] not in (LIVE, DONE):
        return None
    n, seq, dropped = struct.unpack("<HII", raw[1:_HEAD])
    if n > len(raw) - _HEAD - _TAIL:
        return None
    (crc,) = struct.unpack("<I", raw[_HEAD + n : _HEAD + n + _TAIL])
    if crc32(raw[1 : _HEAD + n]) != crc:
        return None
    return raw[0], seq, dropped


def unpack(raw: bytes):
    """(mark, record) of an intact slot, or None."""
    head = check(raw)
    if head is None:
        return None
    n = raw[1] | raw[2] << 8
    try:
        rec = json.loads(raw[_HEAD : _HEAD + n])
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    return head[0], rec


class RingBuffer:
    """The device's buffer of unacknowledged readings plus its small persistent state.

    ``state`` (a JSON file replaced atomically) keeps the boot count, the cumulative dropped
    count, a floor for the next seq, the last timestamp given, when each pending reading was
    last sent, timestamps assigned to readings taken before the clock was known, and the
    applied config. Readings themselves live only in the slots.
    """

    def __init__(self, flash, slots: int, state_path: str) -> None:
        self.flash = flash
        self.slots = slots
        self.state_path = state_path
        self.live = {}  # seq -> slot index of every reading not yet handled
        self.torn = 0
        self.state = self._load_state()
        top = -1
        top_dropped = 0
        for i in range(slots):
            raw = flash.read(i * SLOT_SIZE, SLOT_SIZE)
            got = check(raw)
            if got is None:
                if raw[:1] != b"\xff":
                    self.torn += 1
                continue
            mark, seq, dropped = got
            if seq % slots != i:
                self.torn += 1
                continue
            top = max(top, seq)
            top_dropped = max(top_dropped, dropped)
            if mark == LIVE:
                self.live[seq] = i
        if self.torn:
            log_warn("ringbuf: skipped", self.torn, "torn or foreign slot(s)")
        st = self.state
        saved = st.get("next_seq", 0)
        st["next_seq"] = max(saved, top + 1)
        st["dropped"] = max(st.get("dropped", 0), top_dropped)
        # Readings written after the state's last save (a power cut or kill in between): their
        # timestamps must still bound the next one's, or a later reading could take an earlier
        # or equal time (the same point key); a reading without one still needs converting.
        for seq in self.live:
            if seq >= saved:
                rec = self.read(seq)
                ts = rec.get("ts")
                if ts is None:
                    st["est"] = True
                elif ts > st.get("last_ts", 0):
                    st["last_ts"] = ts

    def _load_state(self) -> dict:
        try:
            with open(self.state_path) as f:
                st = json.load(f)
            if isinstance(st, dict):
                return st
        except (OSError, ValueError):
            pass
        return {"boot": 0, "dropped": 0, "next_seq": 0, "last_ts": 0, "sent": [], "ts": {}}

    def save_state(self) -> None:
        st = self.state
        live = self.live
        st["ts"] = {k: v for k, v in st.get("ts", {}).items() if int(k) in live}
        st["sent"] = [s for s in st.get("sent", []) if s[0] in live]
        _atomic_write(self.state_path, json.dumps(st))

    # ------------------------------------------------------------------ readings

    def append(self, rec: dict) -> int:
        """Give ``rec`` the next seq and the dropped count, write it to its slot; return seq."""
        st = self.state
        seq = st["next_seq"]
        victim = seq - self.slots
        if victim in self.live:
            # Full: the oldest unacknowledged reading is overwritten. Count it first, so a power
            # cut during the write below cannot lose the count.
            del self.live[victim]
            st["dropped"] = st.get("dropped", 0) + 1
            self.save_state()
        rec["seq"] = seq
        rec["dropped"] = st["dropped"]
        i = seq % self.slots
        data = pack(rec)
        self.flash.write(i * SLOT_SIZE, bytes((WRITING,)))
        self.flash.write(i * SLOT_SIZE + 1, data[1:])
        self.flash.write(i * SLOT_SIZE, bytes((LIVE,)))
        self.live[seq] = i
        st["next_seq"] = seq + 1
        return seq

    def read(self, seq: int) -> dict:
        got = unpack(self.flash.read(self.live[seq] * SLOT_SIZE, SLOT_SIZE))
        if got is None:
            raise OSError("slot of seq %d became unreadable" % seq)
        rec = got[1]
        ts = self.state.get("ts", {}).get(str(seq))
        if ts is not None:
            rec["ts"] = ts
        return rec

    def pending(self) -> list:
        """Sequence numbers of the readings not yet acknowledged, oldest first."""
        return sorted(self.live)

    def handle(self, ranges) -> int:
        """Drop the readings an acknowledgement covers (``stored`` or ``rejected``)."""
        n = 0
        for lo, hi in ranges:
            for seq in [s for s in self.live if lo <= s <= hi]:
                self.flash.write(self.live.pop(seq) * SLOT_SIZE, bytes((DONE,)))
                n += 1
        return n

    # ------------------------------------------------------------------ send bookkeeping

    def mark_sent(self, seqs, boot: int, rtc_ms: int) -> None:
        sent = {s[0]: s for s in self.state.get("sent", [])}
        for s in seqs:
            sent[s] = [s, boot, rtc_ms]
        self.state["sent"] = [sent[k] for k in sorted(sent)]

    def due(self, boot: int, rtc_ms: int, resend_ms: int) -> list:
        """Pending readings to publish now: never sent, or sent at least ``resend_ms`` ago
        (or in an earlier boot, whose clock this one cannot compare), oldest first."""
        sent = {s[0]: s for s in self.state.get("sent", [])}
        out = []
        for seq in self.pending():
            s = sent.get(seq)
            if s is None or s[1] != boot or rtc_ms - s[2] >= resend_ms:
                out.append(seq)
        return out

    def set_ts(self, seq: int, ts: int) -> None:
        self.state.setdefault("ts", {})[str(seq)] = ts
