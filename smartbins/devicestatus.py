"""Device status for fleet health: online or lost, last seen, battery, signal, firmware, drops.

Kept in SQLite (one row per device, upserted), because fleet health asks "what is the state of
each device now", not "what was it over time" (that is what the readings in InfluxDB answer).
Updated from status messages (``online`` after a connect, ``lost`` from the last will) and from
every stored reading (last seen, battery, signal, firmware, dropped count). Written in the
gateway's writer thread only, in one transaction per batch, before the broker messages that
carried the updates are acknowledged. It lives in ``smartbins/`` because the gateway writes it
and the backend reads it, and neither imports the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smartbins import protocol as p
from smartbins.settings import private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS device_status (
    device TEXT PRIMARY KEY,
    state TEXT,                 -- online | lost | NULL (readings only so far)
    state_ms INTEGER,           -- when the gateway received the state
    last_seen_ms INTEGER,       -- last message of any kind, gateway time
    last_reading_ts_ms INTEGER, -- newest reading's own timestamp
    last_seq INTEGER,
    boot INTEGER,
    fw TEXT,
    battery_mv INTEGER,
    rssi_dbm INTEGER,
    dropped INTEGER,
    buffered INTEGER
)
"""


@dataclass(frozen=True)
class DeviceStatus:
    device: str
    state: str | None
    state_ms: int | None
    last_seen_ms: int | None
    last_reading_ts_ms: int | None
    last_seq: int | None
    boot: int | None
    fw: str | None
    battery_mv: int | None
    rssi_dbm: int | None
    dropped: int | None
    buffered: int | None


class StatusStore:
    """One SQLite file; use from one thread (the gateway's writer). Worker processes of one
    gateway share the file (WAL; a writer waits up to 30 s for another's transaction)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        private_file(self.path)  # mode 0600 whatever it was: device fleet state is ours alone
        self.db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def apply(
        self,
        statuses: Iterable[tuple[p.Status, int]],
        readings: Iterable[tuple[p.Reading, int]],
        retained: Iterable[p.Status] = (),
    ) -> None:
        """Record status messages and stored readings (each with the gateway's receive time).

        ``retained`` statuses, replayed by the broker when the gateway subscribes, are of unknown
        age: they are no sign of life (last seen and state time stay as they are) and only fill
        in a device the store has never heard of."""
        with self.db:
            self.db.executemany(
                """INSERT INTO device_status (device, state, boot, fw, battery_mv, rssi_dbm,
                       dropped, buffered)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(device) DO NOTHING""",
                [
                    (s.device, s.state, s.boot, s.fw, s.battery_mv, s.rssi_dbm, s.dropped,
                     s.buffered)
                    for s in retained
                ],
            )
            self.db.executemany(
                """INSERT INTO device_status (device, state, state_ms, last_seen_ms, boot, fw,
                       battery_mv, rssi_dbm, dropped, buffered)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(device) DO UPDATE SET
                       state = excluded.state, state_ms = excluded.state_ms,
                       last_seen_ms = max(coalesce(last_seen_ms, 0), excluded.last_seen_ms),
                       boot = coalesce(excluded.boot, boot), fw = coalesce(excluded.fw, fw),
                       battery_mv = coalesce(excluded.battery_mv, battery_mv),
                       rssi_dbm = coalesce(excluded.rssi_dbm, rssi_dbm),
                       dropped = coalesce(excluded.dropped, dropped),
                       buffered = coalesce(excluded.buffered, buffered)
                   WHERE excluded.state_ms >= coalesce(state_ms, 0)""",
                [
                    (s.device, s.state, at, at, s.boot, s.fw, s.battery_mv, s.rssi_dbm,
                     s.dropped, s.buffered)
                    for s, at in statuses
                ],
            )
            newest: dict[str, tuple[p.Reading, int]] = {}
            for r, at in readings:
                best = newest.get(r.device)
                if best is None or r.seq > best[0].seq:
                    newest[r.device] = (r, at)
            self.db.executemany(
                """INSERT INTO device_status (device, last_seen_ms, last_reading_ts_ms,
                       last_seq, boot, fw, battery_mv, rssi_dbm, dropped)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(device) DO UPDATE SET
                       last_seen_ms = max(coalesce(last_seen_ms, 0), excluded.last_seen_ms),
                       last_reading_ts_ms = excluded.last_reading_ts_ms,
                       last_seq = excluded.last_seq, boot = excluded.boot, fw = excluded.fw,
                       battery_mv = coalesce(excluded.battery_mv, battery_mv),
                       rssi_dbm = coalesce(excluded.rssi_dbm, rssi_dbm),
                       dropped = excluded.dropped
                   WHERE excluded.last_seq >= coalesce(last_seq, -1)""",
                [
                    (r.device, at, r.ts_ms, r.seq, r.boot, r.fw, r.battery_mv, r.rssi_dbm,
                     r.dropped)
                    for r, at in newest.values()
                ],
            )

    def device(self, device: str) -> DeviceStatus | None:
        row = self.db.execute("SELECT * FROM device_status WHERE device = ?", (device,)).fetchone()
        return DeviceStatus(*row) if row else None

    def fleet(self) -> dict[str, int]:
        """Counts for /healthz and dashboards: devices known, online, lost, reporting drops."""
        row = self.db.execute(
            """SELECT count(*), sum(state = 'online'), sum(state = 'lost'), sum(dropped > 0)
               FROM device_status"""
        ).fetchone()
        return {
            "devices": row[0] or 0,
            "online": row[1] or 0,
            "lost": row[2] or 0,
            "dropping": row[3] or 0,
        }
