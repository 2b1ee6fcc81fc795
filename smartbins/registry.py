"""The registry: municipalities, sites, bins, devices and which device sat on which bin when.

SQLite, because one municipality's registry is small and an embedded store needs no server.
The schema is versioned (``PRAGMA user_version``) and migrated forward on open; a database newer
than this code is refused rather than guessed at.

Readings in InfluxDB carry only the device id. Which bin (and so which stream and municipality)
a reading belongs to is answered here from the device-to-bin history at query time, so moving a
device never rewrites a stored point.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smartbins.codes import StreamError, parse_stream
from smartbins.protocol import CONFIG_FIELDS, DeviceConfig, PayloadError, is_device_id
from smartbins.settings import private_file

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE municipalities (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE sites (
        id              TEXT PRIMARY KEY,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        name            TEXT NOT NULL DEFAULT '',
        lat             REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon             REAL NOT NULL CHECK (lon BETWEEN -180 AND 180)
    );
    CREATE TABLE bins (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id),
        stream      TEXT NOT NULL,
        volume_l    REAL NOT NULL CHECK (volume_l > 0),
        created_ms  INTEGER NOT NULL,
        retired_ms  INTEGER
    );
    CREATE INDEX bins_site ON bins(site_id);
    CREATE TABLE devices (
        id                  TEXT PRIMARY KEY,
        state               TEXT NOT NULL CHECK (state IN ('active', 'revoked', 'decommissioned')),
        sensor              TEXT NOT NULL DEFAULT 'ultrasonic',
        credential_version  INTEGER NOT NULL DEFAULT 1,
        cal                 INTEGER NOT NULL DEFAULT 0,
        empty_mm            INTEGER,
        full_mm             INTEGER,
        created_ms          INTEGER NOT NULL,
        updated_ms          INTEGER NOT NULL
    );
    CREATE TABLE device_bins (
        device_id   TEXT NOT NULL REFERENCES devices(id),
        bin_id      TEXT NOT NULL REFERENCES bins(id),
        from_ms     INTEGER NOT NULL,
        to_ms       INTEGER,
        PRIMARY KEY (device_id, from_ms),
        CHECK (to_ms IS NULL OR to_ms > from_ms)
    );
    CREATE UNIQUE INDEX device_bins_open_device ON device_bins(device_id) WHERE to_ms IS NULL;
    CREATE UNIQUE INDEX device_bins_open_bin ON device_bins(bin_id) WHERE to_ms IS NULL;
    """,
    # 2: depots, disposal sites and the streams they accept, trucks and their compartments
    # (added with the simulator's city generator; the planner reads them)
    """
    CREATE TABLE depots (
        id              TEXT PRIMARY KEY,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        name            TEXT NOT NULL DEFAULT '',
        lat             REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon             REAL NOT NULL CHECK (lon BETWEEN -180 AND 180)
    );
    CREATE TABLE disposal_sites (
        id              TEXT PRIMARY KEY,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        name            TEXT NOT NULL DEFAULT '',
        lat             REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon             REAL NOT NULL CHECK (lon BETWEEN -180 AND 180)
    );
    CREATE TABLE disposal_streams (
        disposal_site_id TEXT NOT NULL REFERENCES disposal_sites(id),
        stream           TEXT NOT NULL,
        PRIMARY KEY (disposal_site_id, stream)
    );
    CREATE TABLE trucks (
        id          TEXT PRIMARY KEY,
        depot_id    TEXT NOT NULL REFERENCES depots(id),
        name        TEXT NOT NULL DEFAULT '',
        shift_s     INTEGER NOT NULL CHECK (shift_s > 0)
    );
    CREATE TABLE truck_compartments (
        truck_id    TEXT NOT NULL REFERENCES trucks(id),
        idx         INTEGER NOT NULL CHECK (idx >= 0),
        stream      TEXT NOT NULL,
        capacity_l  REAL NOT NULL CHECK (capacity_l > 0),
        PRIMARY KEY (truck_id, idx)
    );
    """,
    # 3: each device's config thresholds (protocol.DeviceConfig beside its calibration), so that
    # calibrate and `smartbins device config` publish what the device runs with, not protocol
    # defaults. Devices that exist already get the defaults they have been running with.
    """
    ALTER TABLE devices ADD COLUMN interval_s INTEGER NOT NULL DEFAULT 3600;
    ALTER TABLE devices ADD COLUMN interval_near_full_s INTEGER NOT NULL DEFAULT 900;
    ALTER TABLE devices ADD COLUMN interval_low_battery_s INTEGER NOT NULL DEFAULT 14400;
    ALTER TABLE devices ADD COLUMN near_full_pct REAL NOT NULL DEFAULT 80.0;
    ALTER TABLE devices ADD COLUMN low_battery_mv INTEGER NOT NULL DEFAULT 3300;
    ALTER TABLE devices ADD COLUMN fire_temp_c REAL NOT NULL DEFAULT 70.0;
    ALTER TABLE devices ADD COLUMN fire_rise_c REAL NOT NULL DEFAULT 20.0;
    ALTER TABLE devices ADD COLUMN tilt_deg REAL NOT NULL DEFAULT 45.0;
    """,
    # 4: what the backend serves (smartbins/assets.py, smartbins/tokens.py): a site's address,
    # a bin's container type, full threshold and area, a device's installed firmware, a disposal
    # site's opening hours, a truck's fuel and shift start, and API tokens scoped to
    # municipalities. Existing rows get the defaults; nothing is dropped.
    """
    ALTER TABLE sites ADD COLUMN address TEXT NOT NULL DEFAULT '';
    ALTER TABLE bins ADD COLUMN container_type TEXT NOT NULL DEFAULT 'wheelie';
    ALTER TABLE bins ADD COLUMN full_pct REAL NOT NULL DEFAULT 90.0;
    ALTER TABLE bins ADD COLUMN area TEXT NOT NULL DEFAULT '';
    ALTER TABLE devices ADD COLUMN firmware TEXT NOT NULL DEFAULT '';
    ALTER TABLE disposal_sites ADD COLUMN opening_hours TEXT NOT NULL DEFAULT '';
    ALTER TABLE trucks ADD COLUMN fuel TEXT NOT NULL DEFAULT 'diesel';
    ALTER TABLE trucks ADD COLUMN shift_start_s INTEGER NOT NULL DEFAULT 21600;
    CREATE INDEX bins_area ON bins(area);
    CREATE INDEX device_bins_bin ON device_bins(bin_id, from_ms);
    CREATE TABLE tokens (
        id                TEXT PRIMARY KEY,
        hash              TEXT NOT NULL,
        name              TEXT NOT NULL,
        role              TEXT NOT NULL
                          CHECK (role IN ('viewer', 'technician', 'planner', 'admin', 'service')),
        all_municipalities INTEGER NOT NULL DEFAULT 0,
        created_ms        INTEGER NOT NULL,
        expires_ms        INTEGER,
        revoked_ms        INTEGER
    );
    CREATE TABLE token_municipalities (
        token_id        TEXT NOT NULL REFERENCES tokens(id),
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        PRIMARY KEY (token_id, municipality_id)
    );
    """,
    # 5: alerts (backend/alerts.py): one row per alert, at most one not resolved per device and
    # kind (the deduplication), its state changes, an outbox of deliveries written in the same
    # transaction (so a restart neither loses nor repeats one), and what the alert engine last
    # saw of each device.
    """
    CREATE TABLE alerts (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        device_id       TEXT NOT NULL,
        bin_id          TEXT,
        kind            TEXT NOT NULL CHECK (kind IN
                        ('full', 'fire', 'tilt', 'low_battery', 'offline', 'sensor_fault')),
        state           TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
        opened_ms       INTEGER NOT NULL,
        reading_ts_ms   INTEGER,
        detail          TEXT NOT NULL DEFAULT '',
        updated_ms      INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX alerts_active ON alerts(device_id, kind) WHERE state != 'resolved';
    CREATE INDEX alerts_municipality ON alerts(municipality_id, state);
    CREATE TABLE alert_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id    INTEGER NOT NULL REFERENCES alerts(id),
        state       TEXT NOT NULL,
        at_ms       INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        note        TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE alert_outbox (
        event_id     INTEGER NOT NULL REFERENCES alert_events(id),
        channel      TEXT NOT NULL CHECK (channel IN ('webhook', 'mqtt')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_ms      INTEGER NOT NULL,
        delivered_ms INTEGER,
        last_error   TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (event_id, channel)
    );
    CREATE INDEX alert_outbox_due ON alert_outbox(delivered_ms, next_ms);
    CREATE TABLE alert_devices (
        device_id    TEXT PRIMARY KEY,
        last_ts_ms   INTEGER NOT NULL,
        interval_s   INTEGER NOT NULL,
        last_mm      INTEGER,
        same_mm      INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 6: a change counter over what the bins' latest state is built from (bins, sites, the
    # device-to-bin history), bumped by triggers: the backend caches the answer and rebuilds
    # it only when the counter or the readings changed.
    """
    CREATE TABLE change_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO change_counter VALUES ('bins', 0);
    """
    + "".join(
        f"""
    CREATE TRIGGER {table}_{op.lower()}_counts AFTER {op} ON {table}
    BEGIN UPDATE change_counter SET value = value + 1 WHERE name = 'bins'; END;
    """
        for table in ("bins", "sites", "device_bins")
        for op in ("INSERT", "UPDATE", "DELETE")
    ),
    # 7: users of a municipality (a name and the highest role their tokens may have); a token
    # may name the user it was issued to. Disabling a user revokes their tokens.
    """
    CREATE TABLE users (
        id              TEXT PRIMARY KEY,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        name            TEXT NOT NULL,
        role            TEXT NOT NULL CHECK (role IN ('viewer', 'technician', 'planner', 'admin')),
        created_ms      INTEGER NOT NULL,
        disabled_ms     INTEGER
    );
    CREATE INDEX users_municipality ON users(municipality_id);
    ALTER TABLE tokens ADD COLUMN user_id TEXT REFERENCES users(id);
    """,
    # 8: the planning service's forecast-overflow alert (backend/planning.py). SQLite cannot
    # change a CHECK in place: the table is rebuilt (SQLite's "other kinds of table schema
    # changes", which migrate() runs with foreign keys off and checks afterwards), ids kept.
    """
    CREATE TABLE alerts_new (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        device_id       TEXT NOT NULL,
        bin_id          TEXT,
        kind            TEXT NOT NULL CHECK (kind IN ('full', 'fire', 'tilt', 'low_battery',
                        'offline', 'sensor_fault', 'forecast_overflow')),
        state           TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
        opened_ms       INTEGER NOT NULL,
        reading_ts_ms   INTEGER,
        detail          TEXT NOT NULL DEFAULT '',
        updated_ms      INTEGER NOT NULL
    );
    INSERT INTO alerts_new SELECT * FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_new RENAME TO alerts;
    CREATE UNIQUE INDEX alerts_active ON alerts(device_id, kind) WHERE state != 'resolved';
    CREATE INDEX alerts_municipality ON alerts(municipality_id, state);
    """,
    # 9: stored plans (backend/plan_store.py): one JSON document per municipality, date and
    # stream, as the planning service makes it and the dashboard reads it. IF NOT EXISTS: the
    # dashboard's first version created this table on first use.
    """
    CREATE TABLE IF NOT EXISTS plans (
        id              TEXT NOT NULL,
        municipality_id TEXT NOT NULL REFERENCES municipalities(id),
        date            TEXT NOT NULL,
        stream          TEXT,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL,
        body            TEXT NOT NULL,
        PRIMARY KEY (municipality_id, id)
    );
    CREATE INDEX IF NOT EXISTS plans_date ON plans(municipality_id, date);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: The device config the registry keeps beside the calibration: protocol.DeviceConfig's fields
#: other than the server time and the calibration (cal, empty_mm, full_mm), by attribute name.
THRESHOLDS: tuple[str, ...] = tuple(
    f.attr for f in CONFIG_FIELDS if f.attr not in ("server_ts_ms", "cal", "empty_mm", "full_mm")
)
#: The distances a device measures with before its first calibration (firmware/main.py
#: DEFAULTS). A config published for an uncalibrated device carries them with cal 0, so the
#: device keeps flagging its readings UNCALIBRATED.
UNCALIBRATED_EMPTY_MM = 1000
UNCALIBRATED_FULL_MM = 200
#: Distance sensors a device can have, as config.json's "sensor" names them (firmware/measure.py
#: SENSORS): a JSN-SR04T ultrasonic transducer, or a VL53L1X time-of-flight sensor.
SENSORS = ("ultrasonic", "tof")
_DEVICE_COLUMNS = "id, state, sensor, credential_version, cal, empty_mm, full_mm"


class RegistryError(ValueError):
    """A registry request that cannot be done; the message says which row and why."""


class NotFoundError(RegistryError):
    """The row asked for does not exist."""


class ConflictError(RegistryError):
    """The row exists already, or is still used by another row."""


#: Container types a bin can have, with the FIWARE WasteContainer ``category`` each maps to.
CONTAINER_TYPES: dict[str, str] = {
    "wheelie": "portable",  # two- or four-wheeled plastic bin (140-1100 l)
    "street": "fixed",  # litter bin on a post
    "bank": "ground",  # bring bank / igloo standing on the ground
    "semi_underground": "underground",
    "underground": "underground",
}


@dataclass(frozen=True)
class Bin:
    id: str
    site_id: str
    municipality_id: str
    stream: str
    volume_l: float
    lat: float
    lon: float
    container_type: str = "wheelie"
    full_pct: float = 90.0
    area: str = ""
    retired_ms: int | None = None


@dataclass(frozen=True)
class Device:
    id: str
    state: str
    sensor: str
    credential_version: int
    cal: int
    empty_mm: int | None
    full_mm: int | None


@dataclass(frozen=True)
class Link:
    device_id: str
    bin_id: str
    from_ms: int
    to_ms: int | None


#: Bin's fields in order, for SELECTs over ``bins b JOIN sites s``.
BIN_COLUMNS = (
    "b.id, b.site_id, s.municipality_id, b.stream, b.volume_l, s.lat, s.lon, b.container_type,"
    " b.full_pct, b.area, b.retired_ms"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_THRESHOLD_COLUMNS = ", ".join(THRESHOLDS)
#: protocol.DeviceConfig's defaults (a dataclass keeps them as class attributes).
_DEFAULT_THRESHOLDS: dict[str, int | float] = {k: getattr(DeviceConfig, k) for k in THRESHOLDS}


def _config(
    device: Device, thresholds: Mapping[str, float], server_ts_ms: int | None
) -> DeviceConfig:
    """protocol.DeviceConfig from a registry row; RegistryError naming the field if invalid."""
    calibrated = device.empty_mm is not None and device.full_mm is not None
    try:
        return DeviceConfig(
            device=device.id,
            server_ts_ms=server_ts_ms if server_ts_ms is not None else now_ms(),
            cal=device.cal if calibrated else 0,
            empty_mm=device.empty_mm if device.empty_mm is not None else UNCALIBRATED_EMPTY_MM,
            full_mm=device.full_mm if device.full_mm is not None else UNCALIBRATED_FULL_MM,
            **thresholds,  # type: ignore[arg-type]
        )
    except PayloadError as e:
        raise RegistryError(f"device {device.id!r}: config {e}") from None


def _statements(script: str) -> list[str]:
    """A migration's statements (a trigger's body holds semicolons: it ends at END;)."""
    out: list[str] = []
    current = ""
    for part in script.split(";"):
        current = f"{current};{part}" if current else part
        if current.strip().upper().startswith("CREATE TRIGGER") and not current.strip().upper(
        ).endswith("END"):
            continue
        if current.strip():
            out.append(current)
        current = ""
    return out


class Registry:
    """One open registry database. Methods are small transactions; ``transaction()`` groups them."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            private_file(Path(self.path))  # device secrets' history and, later, users: 0600
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA busy_timeout = 5000")
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
        self._depth = 0
        self.migrate()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- schema

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.version
        if current > SCHEMA_VERSION:
            raise RegistryError(
                f"{self.path}: schema version {current} is newer than this smartbins knows "
                f"({SCHEMA_VERSION}); upgrade smartbins"
            )
        if current == SCHEMA_VERSION:
            return
        # Foreign keys off while tables are rebuilt (a pragma that only works outside a
        # transaction), and checked before each migration commits.
        self.db.execute("PRAGMA foreign_keys = OFF")
        try:
            for version in range(current + 1, SCHEMA_VERSION + 1):
                with self.transaction():
                    for statement in _statements(MIGRATIONS[version - 1]):
                        self.db.execute(statement)
                    broken = self.db.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RegistryError(
                            f"{self.path}: migration {version} leaves references that point "
                            f"nowhere (table {broken[0][0]}, row {broken[0][1]}); nothing changed"
                        )
                    self.db.execute(f"PRAGMA user_version = {version}")
        finally:
            self.db.execute("PRAGMA foreign_keys = ON")

    def bins_version(self) -> int:
        """Changes so far to bins, sites and the device-to-bin history (a cache key)."""
        row = self.db.execute("SELECT value FROM change_counter WHERE name = 'bins'").fetchone()
        return int(row[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A (nestable) transaction: all of it or none of it."""
        if self._depth == 0:
            self.db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield self.db
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.db.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")

    def _exec(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.IntegrityError as e:
            raise RegistryError(f"{e} ({sql.split()[0].lower()} {params!r})") from None

    # ----------------------------------------------------------------- places and bins

    def add_municipality(self, id: str, name: str) -> None:
        if self.db.execute("SELECT 1 FROM municipalities WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"municipality {id!r} exists already")
        self._exec("INSERT INTO municipalities VALUES (?, ?, ?)", (id, name, now_ms()))

    def add_site(
        self,
        id: str,
        municipality_id: str,
        lat: float,
        lon: float,
        name: str = "",
        *,
        address: str = "",
    ) -> None:
        if (
            self.db.execute(
                "SELECT 1 FROM municipalities WHERE id = ?", (municipality_id,)
            ).fetchone()
            is None
        ):
            raise RegistryError(f"site {id!r}: no municipality {municipality_id!r}")
        self._exec(
            "INSERT INTO sites (id, municipality_id, name, lat, lon, address)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (id, municipality_id, name, lat, lon, address),
        )

    def add_bin(
        self,
        id: str,
        site_id: str,
        stream: str,
        volume_l: float,
        *,
        container_type: str = "wheelie",
        full_pct: float = 90.0,
        area: str = "",
    ) -> None:
        """A bin on a site. ``full_pct``: the fill [%] at which it counts as full (alerts);
        ``area``: a collection district name, free text (filters and open data)."""
        try:
            canonical = parse_stream(stream)
        except StreamError as e:
            raise RegistryError(f"bin {id!r}: {e}") from None
        if container_type not in CONTAINER_TYPES:
            raise RegistryError(
                f"bin {id!r}: container_type {container_type!r} is not one of "
                f"{', '.join(CONTAINER_TYPES)}"
            )
        if not 0 < full_pct <= 200:
            raise RegistryError(f"bin {id!r}: full_pct {full_pct!r} must be in (0, 200]")
        if self.db.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
            raise RegistryError(f"bin {id!r}: no site {site_id!r}")
        if self.db.execute("SELECT 1 FROM bins WHERE id = ?", (id,)).fetchone() is not None:
            raise ConflictError(f"bin {id!r} exists already")
        self._exec(
            "INSERT INTO bins (id, site_id, stream, volume_l, created_ms, container_type,"
            " full_pct, area) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (id, site_id, canonical, volume_l, now_ms(), container_type, full_pct, area),
        )

    def bin(self, id: str) -> Bin:
        row = self.db.execute(
            f"""SELECT {BIN_COLUMNS}
               FROM bins b JOIN sites s ON s.id = b.site_id WHERE b.id = ?""",
            (id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no bin {id!r}")
        return Bin(*row)

    def bins(self) -> list[Bin]:
        rows = self.db.execute(
            f"""SELECT {BIN_COLUMNS}
               FROM bins b JOIN sites s ON s.id = b.site_id ORDER BY b.id"""
        )
        return [Bin(*r) for r in rows]

    # ----------------------------------------------------------------- devices

    def add_device(
        self,
        id: str,
        *,
        sensor: str = "ultrasonic",
        at_ms: int | None = None,
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        """A new active device; ``thresholds`` (THRESHOLDS names) set its config, the rest
        keep protocol.DeviceConfig's defaults."""
        if not is_device_id(id):
            raise RegistryError(
                f"device {id!r}: a device id is 1-64 of A-Z a-z 0-9 _ -, starting with a letter "
                "or digit (it is the MQTT username and a topic level)"
            )
        if sensor not in SENSORS:
            raise RegistryError(
                f"device {id!r}: sensor {sensor!r} is not one of {', '.join(SENSORS)} "
                "(ultrasonic: JSN-SR04T; tof: VL53L1X)"
            )
        if self.db.execute("SELECT 1 FROM devices WHERE id = ?", (id,)).fetchone():
            raise ConflictError(f"device {id!r} exists already")
        t = at_ms if at_ms is not None else now_ms()
        values = (
            self._checked_thresholds(id, _DEFAULT_THRESHOLDS, thresholds, None)
            if thresholds
            else _DEFAULT_THRESHOLDS  # valid by construction; simulated fleets add thousands
        )
        self._exec(
            f"INSERT INTO devices (id, state, sensor, created_ms, updated_ms, {_THRESHOLD_COLUMNS})"
            f" VALUES (?, 'active', ?, ?, ?, {', '.join('?' * len(THRESHOLDS))})",
            (id, sensor, t, t, *(values[k] for k in THRESHOLDS)),
        )

    def device(self, id: str) -> Device:
        row = self.db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?",
            (id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no device {id!r}")
        return Device(*row)

    def devices(self, state: str | None = None) -> list[Device]:
        sql = f"SELECT {_DEVICE_COLUMNS} FROM devices"
        rows = self.db.execute(
            sql + (" WHERE state = ?" if state else "") + " ORDER BY id", (state,) if state else ()
        )
        return [Device(*r) for r in rows]

    def set_state(self, id: str, state: str) -> None:
        self.device(id)
        self._exec(
            "UPDATE devices SET state = ?, updated_ms = ? WHERE id = ?", (state, now_ms(), id)
        )

    def bump_credentials(self, id: str) -> int:
        self.device(id)
        self._exec(
            "UPDATE devices SET credential_version = credential_version + 1, updated_ms = ?"
            " WHERE id = ?",
            (now_ms(), id),
        )
        return self.device(id).credential_version

    def set_calibration(self, id: str, empty_mm: int, full_mm: int) -> int:
        """Record a new calibration; returns its version (readings carry it as ``cal``)."""
        if not 0 <= full_mm < empty_mm:
            raise RegistryError(
                f"device {id!r}: full_mm {full_mm} must be below empty_mm {empty_mm}"
            )
        self.device(id)
        self._exec(
            "UPDATE devices SET cal = cal + 1, empty_mm = ?, full_mm = ?, updated_ms = ?"
            " WHERE id = ?",
            (empty_mm, full_mm, now_ms(), id),
        )
        return self.device(id).cal

    # ----------------------------------------------------------------- device config

    def thresholds(self, id: str) -> dict[str, int | float]:
        """The device's config thresholds (THRESHOLDS names, protocol.DeviceConfig units)."""
        row = self.db.execute(
            f"SELECT {_THRESHOLD_COLUMNS} FROM devices WHERE id = ?", (id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no device {id!r}")
        return dict(zip(THRESHOLDS, row, strict=True))

    def set_thresholds(self, id: str, changes: Mapping[str, float]) -> DeviceConfig:
        """Change some thresholds, keep the rest and the calibration; return the new config.

        The whole config is validated as protocol.DeviceConfig before anything is written, so a
        bad value leaves the registry as it was and the message names the field.
        """
        device = self.device(id)
        values = self._checked_thresholds(id, self.thresholds(id), changes, device)
        self._exec(
            f"UPDATE devices SET {', '.join(f'{k} = ?' for k in THRESHOLDS)}, updated_ms = ?"
            " WHERE id = ?",
            (*(values[k] for k in THRESHOLDS), now_ms(), id),
        )
        return self.config(id)

    def config(self, id: str, server_ts_ms: int | None = None) -> DeviceConfig:
        """The device's retained config as it should be published now: its calibration (or the
        uncalibrated distances with cal 0) and its thresholds."""
        return _config(self.device(id), self.thresholds(id), server_ts_ms)

    def _checked_thresholds(
        self,
        id: str,
        current: Mapping[str, int | float],
        changes: Mapping[str, float],
        device: Device | None,
    ) -> dict[str, int | float]:
        unknown = sorted(set(changes) - set(THRESHOLDS))
        if unknown:
            raise RegistryError(
                f"device {id!r}: {', '.join(unknown)}: not a config threshold "
                f"(known: {', '.join(THRESHOLDS)})"
            )
        values = {**current, **changes}
        probe = device or Device(id, "active", "ultrasonic", 1, 0, None, None)
        _config(probe, values, None)
        return values

    # ----------------------------------------------------------------- device-to-bin history

    def link(self, device_id: str, bin_id: str, at_ms: int | None = None) -> None:
        """Put a device on a bin from ``at_ms`` on, closing its previous link (a move)."""
        t = at_ms if at_ms is not None else now_ms()
        self.device(device_id)
        self.bin(bin_id)
        with self.transaction():
            current = self.current_link(device_id)
            if current is not None:
                if current.bin_id == bin_id:
                    return
                if t <= current.from_ms:
                    raise RegistryError(
                        f"device {device_id!r}: move at {t} is not after its link to "
                        f"{current.bin_id!r} from {current.from_ms}"
                    )
                self._exec(
                    "UPDATE device_bins SET to_ms = ? WHERE device_id = ? AND to_ms IS NULL",
                    (t, device_id),
                )
            occupant = self.db.execute(
                "SELECT device_id FROM device_bins WHERE bin_id = ? AND to_ms IS NULL", (bin_id,)
            ).fetchone()
            if occupant is not None:
                raise RegistryError(
                    f"bin {bin_id!r} already has device {occupant[0]!r}; move or unlink it first"
                )
            self._exec("INSERT INTO device_bins VALUES (?, ?, ?, NULL)", (device_id, bin_id, t))

    def unlink(self, device_id: str, at_ms: int | None = None) -> None:
        t = at_ms if at_ms is not None else now_ms()
        self._exec(
            "UPDATE device_bins SET to_ms = ? WHERE device_id = ? AND to_ms IS NULL", (t, device_id)
        )

    def current_link(self, device_id: str) -> Link | None:
        row = self.db.execute(
            "SELECT * FROM device_bins WHERE device_id = ? AND to_ms IS NULL", (device_id,)
        ).fetchone()
        return Link(*row) if row else None

    def history(self, device_id: str) -> list[Link]:
        rows = self.db.execute(
            "SELECT * FROM device_bins WHERE device_id = ? ORDER BY from_ms", (device_id,)
        )
        return [Link(*r) for r in rows]

    def bin_at(self, device_id: str, ts_ms: int) -> str | None:
        """The bin the device sat on at ``ts_ms`` (a reading's time), or None."""
        row = self.db.execute(
            """SELECT bin_id FROM device_bins
               WHERE device_id = ? AND from_ms <= ? AND (to_ms IS NULL OR ? < to_ms)""",
            (device_id, ts_ms, ts_ms),
        ).fetchone()
        return row[0] if row else None
