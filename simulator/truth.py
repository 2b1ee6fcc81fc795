"""Ground truth in SQLite: what really happened, for tests, forecasts and planners to score against.

Append-only tables (fast to write in bulk, simple to query); times are UTC milliseconds of the
*simulated* clock. The schema (also in docs/simulator.md):

``meta(key, value)``
    seed, bins, days, start, mode, parameter version.
``bins(bin_id, device_id, stream, volume_l, rate_pct_day, empty_mm, full_mm, ghost_mm)``
    every bin with its device and drawn traits.
``levels(bin_id, t_ms, level_pct)``
    the true level of every bin every ``level_every_s`` (default hourly), from the start.
``readings(device_id, seq, boot, t_ms, level_pct, mm, fill, flags, faults)``
    every reading a device produced: the true time it was taken, the true level then, what it
    reported (mm, fill, flags) and the faults acting on it (comma-separated kinds).
``dropped(device_id, seq, t_ms)``
    readings a full device buffer dropped (oldest first), and when.
``emptyings(bin_id, t_ms, level_before, level_after, truck, source)``
    every emptying (source ``fixed`` or ``schedule``); ``truck`` empty for the fixed schedule.
``overflows(bin_id, t_ms)``
    each time the true level passed 100 %.
``faults(device_id, kind, start_ms, end_ms, magnitude)``
    the fault schedule (a reboot has start = end).

Every produced reading is either in the acknowledger's store, in ``dropped``, or still in the
device's buffer at the end: :func:`account` checks exactly that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bins (
    bin_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, stream TEXT NOT NULL,
    volume_l REAL NOT NULL, rate_pct_day REAL NOT NULL, empty_mm REAL NOT NULL,
    full_mm REAL NOT NULL, ghost_mm REAL NOT NULL);
CREATE TABLE IF NOT EXISTS levels (bin_id TEXT NOT NULL, t_ms INTEGER NOT NULL,
    level_pct REAL NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, boot INTEGER NOT NULL, t_ms INTEGER NOT NULL,
    level_pct REAL NOT NULL, mm INTEGER, fill REAL, flags INTEGER NOT NULL,
    faults TEXT NOT NULL DEFAULT '', PRIMARY KEY (device_id, seq));
CREATE TABLE IF NOT EXISTS dropped (device_id TEXT NOT NULL, seq INTEGER NOT NULL,
    t_ms INTEGER NOT NULL, PRIMARY KEY (device_id, seq));
CREATE TABLE IF NOT EXISTS emptyings (bin_id TEXT NOT NULL, t_ms INTEGER NOT NULL,
    level_before REAL NOT NULL, level_after REAL NOT NULL, truck TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS overflows (bin_id TEXT NOT NULL, t_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS faults (device_id TEXT NOT NULL, kind TEXT NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, magnitude REAL NOT NULL);
CREATE INDEX IF NOT EXISTS levels_bin ON levels(bin_id, t_ms);
"""

_FLUSH_ROWS = 50_000


class Truth:
    """Writer of the ground-truth database; rows are buffered and written in bulk."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.executescript(SCHEMA)
        self._pending: dict[str, list[Sequence[object]]] = {}

    _SQL: ClassVar[dict[str, str]] = {
        "levels": "INSERT INTO levels VALUES (?, ?, ?)",
        "readings": "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "dropped": "INSERT INTO dropped VALUES (?, ?, ?)",
        "emptyings": "INSERT INTO emptyings VALUES (?, ?, ?, ?, ?, ?)",
        "overflows": "INSERT INTO overflows VALUES (?, ?)",
        "faults": "INSERT INTO faults VALUES (?, ?, ?, ?, ?)",
        "bins": "INSERT INTO bins VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    }

    def add(self, table: str, row: Sequence[object]) -> None:
        rows = self._pending.setdefault(table, [])
        rows.append(row)
        if len(rows) >= _FLUSH_ROWS:
            self._write(table)

    def add_many(self, table: str, rows: Iterable[Sequence[object]]) -> None:
        for r in rows:
            self.add(table, r)

    def meta(self, **values: object) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()]
        )
        self.db.commit()

    def _write(self, table: str) -> None:
        rows = self._pending.pop(table, [])
        if rows:
            self.db.executemany(self._SQL[table], rows)

    def flush(self) -> None:
        for table in list(self._pending):
            self._write(table)
        self.db.commit()

    def close(self) -> None:
        self.flush()
        self.db.close()

    def __enter__(self) -> Truth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def produced_and_dropped(
    truth_db: Path | str,
) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Per device: the seqs of every reading produced, and of those a full buffer dropped."""
    db = sqlite3.connect(str(truth_db))
    try:
        produced: dict[str, set[int]] = {}
        for dev, seq in db.execute("SELECT device_id, seq FROM readings"):
            produced.setdefault(dev, set()).add(seq)
        dropped: dict[str, set[int]] = {}
        for dev, seq in db.execute("SELECT device_id, seq FROM dropped"):
            dropped.setdefault(dev, set()).add(seq)
    finally:
        db.close()
    return produced, dropped


def account(
    truth_db: Path | str,
    stored: dict[str, set[int]],
    buffered: dict[str, set[int]],
) -> dict[str, list[int]]:
    """Every produced reading must be stored, dropped or still buffered, and nothing else may be
    stored. Returns the problems per device (empty when all is accounted for)."""
    produced, dropped = produced_and_dropped(truth_db)
    problems: dict[str, list[int]] = {}
    for dev in set(produced) | set(stored):
        made = produced.get(dev, set())
        seen = stored.get(dev, set()) | dropped.get(dev, set()) | buffered.get(dev, set())
        missing = made - seen
        unknown = stored.get(dev, set()) - made
        if missing or unknown:
            problems[dev] = sorted(missing | unknown)
    return problems
