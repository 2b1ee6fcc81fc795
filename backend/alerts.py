"""Alerts: the rules that raise and clear them from readings, and their store in the registry.

Kinds: ``full`` (fill at or over the bin's full threshold), ``fire`` (the FIRE flag, or the
temperature at the device's fire threshold), ``tilt`` (the TILT flag or the angle at the
threshold: lid open or bin knocked over), ``low_battery``, ``offline`` (no reading for
OFFLINE_INTERVALS report intervals) and ``sensor_fault`` (error codes, no distance, an
implausible fill, or the same distance STUCK_READINGS times in a row).

Deduplicated: at most one alert per device and kind is not resolved (a unique index), so a
condition that persists over many readings is one alert. States: open → acknowledged →
resolved (by a person through the API, or by the engine when a later reading shows the
condition cleared); every change is an event with its actor. Opening an alert writes its
deliveries (webhook, MQTT) to an outbox in the same transaction, and a reading is processed
once (the engine keeps each device's newest processed time), so a restart neither loses nor
repeats an alert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from smartbins import assets
from smartbins import protocol as p
from smartbins.registry import ConflictError, NotFoundError, Registry, now_ms

KINDS = ("full", "fire", "tilt", "low_battery", "offline", "sensor_fault", "forecast_overflow")
#: Kinds the planning service raises (from forecasts), not the engine (from readings).
PLANNED_KINDS = ("forecast_overflow",)
STATES = ("open", "acknowledged", "resolved")
CHANNELS = ("webhook", "mqtt")
OFFLINE_INTERVALS = 3
#: The same distance this many readings in a row: the sensor is stuck.
STUCK_READINGS = 48
#: Margins a condition must clear by before the engine resolves its alert (no flapping).
CLEAR_FILL_PCT = 10.0
CLEAR_TEMP_C = 10.0
CLEAR_BATTERY_MV = 100
#: Delivery retries: the wait doubles from 1 s up to this [s].
MAX_BACKOFF_S = 300


@dataclass(frozen=True)
class Alert:
    id: int
    municipality_id: str
    device_id: str
    bin_id: str | None
    kind: str
    state: str
    opened_ms: int
    reading_ts_ms: int | None
    detail: str
    updated_ms: int


_ALERT = (
    "SELECT id, municipality_id, device_id, bin_id, kind, state, opened_ms, reading_ts_ms, "
    "detail, updated_ms FROM alerts"
)


def conditions(
    r: p.Reading, thresholds: dict[str, float], full_pct: float | None, same_mm: int
) -> dict[str, tuple[bool, str]]:
    """What one reading says about each kind: (raised, detail) or (False, "") for cleared; a
    kind the reading says nothing about is absent."""
    out: dict[str, tuple[bool, str]] = {}
    flags = r.flags
    fire_t = thresholds["fire_temp_c"]
    if flags & p.Flag.FIRE or (r.temp_c is not None and r.temp_c >= fire_t):
        out["fire"] = (True, f"temperature {r.temp_c} °C (fire threshold {fire_t} °C)")
    elif r.temp_c is not None and r.temp_c < fire_t - CLEAR_TEMP_C:
        out["fire"] = (False, "")
    tilt_t = thresholds["tilt_deg"]
    if flags & p.Flag.TILT or (r.tilt_deg is not None and r.tilt_deg >= tilt_t):
        out["tilt"] = (True, f"tilt {r.tilt_deg}° (threshold {tilt_t}°): lid open or knocked over")
    elif r.tilt_deg is not None:
        out["tilt"] = (False, "")
    low = thresholds["low_battery_mv"]
    if flags & p.Flag.LOW_BATTERY or (r.battery_mv is not None and r.battery_mv < low):
        out["low_battery"] = (True, f"battery {r.battery_mv} mV (low under {low} mV)")
    elif r.battery_mv is not None and r.battery_mv >= low + CLEAR_BATTERY_MV:
        out["low_battery"] = (False, "")
    fault = ""
    if r.errors:
        names = [p.SensorError(c).name if c in p.SensorError._value2member_map_ else str(c)
                 for c in r.errors]
        fault = f"sensor error {', '.join(str(n) for n in names)}"
    elif flags & p.Flag.SENSOR_ERROR or r.fill_pct is None:
        fault = "no trustworthy distance"
    elif not -20.0 <= r.fill_pct <= 200.0:
        fault = f"implausible fill {r.fill_pct} %"
    elif same_mm >= STUCK_READINGS:
        fault = f"distance stuck at {r.distance_mm} mm for {same_mm} readings"
    out["sensor_fault"] = (bool(fault), fault)
    if full_pct is not None and r.fill_pct is not None and not fault:
        if r.fill_pct >= full_pct:
            out["full"] = (True, f"fill {r.fill_pct} % (full at {full_pct} %)")
        elif r.fill_pct < full_pct - CLEAR_FILL_PCT:
            out["full"] = (False, "")
    return out


def _active(reg: Registry, device_id: str, kind: str) -> Alert | None:
    row = reg.db.execute(
        f"{_ALERT} WHERE device_id = ? AND kind = ? AND state != 'resolved'", (device_id, kind)
    ).fetchone()
    return Alert(*row) if row else None


def _event(reg: Registry, alert_id: int, state: str, at: int, actor: str, note: str = "") -> int:
    cur = reg.db.execute(
        "INSERT INTO alert_events (alert_id, state, at_ms, actor, note) VALUES (?, ?, ?, ?, ?)",
        (alert_id, state, at, actor, note),
    )
    return int(cur.lastrowid or 0)


def open_alert(
    reg: Registry,
    municipality_id: str,
    device_id: str,
    bin_id: str | None,
    kind: str,
    detail: str,
    reading_ts_ms: int | None,
    channels: Sequence[str],
    at_ms: int,
) -> int | None:
    """Open an alert unless one of this device and kind is active; None when deduplicated."""
    if _active(reg, device_id, kind) is not None:
        return None
    with reg.transaction():
        cur = reg.db.execute(
            "INSERT INTO alerts (municipality_id, device_id, bin_id, kind, state, opened_ms,"
            " reading_ts_ms, detail, updated_ms) VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)",
            (municipality_id, device_id, bin_id, kind, at_ms, reading_ts_ms, detail, at_ms),
        )
        alert_id = int(cur.lastrowid or 0)
        event = _event(reg, alert_id, "open", at_ms, "engine", detail)
        reg.db.executemany(
            "INSERT INTO alert_outbox (event_id, channel, next_ms) VALUES (?, ?, ?)",
            [(event, c, at_ms) for c in channels],
        )
    return alert_id


def set_state(
    reg: Registry, alert_id: int, state: str, actor: str, note: str = "", at_ms: int | None = None
) -> Alert:
    """Acknowledge (from open) or resolve (from open or acknowledged)."""
    t = at_ms if at_ms is not None else now_ms()
    with reg.transaction():
        a = alert(reg, alert_id)
        allowed = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}[state]
        if a.state not in allowed:
            raise ConflictError(f"alert {alert_id}: is {a.state}; cannot become {state}")
        reg.db.execute(
            "UPDATE alerts SET state = ?, updated_ms = ? WHERE id = ?", (state, t, alert_id)
        )
        _event(reg, alert_id, state, t, actor, note)
    return alert(reg, alert_id)


def alert(reg: Registry, alert_id: int) -> Alert:
    row = reg.db.execute(f"{_ALERT} WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no alert {alert_id}")
    return Alert(*row)


def alerts(
    reg: Registry, municipality_id: str, state: str | None = None, kind: str | None = None
) -> list[Alert]:
    sql, params = f"{_ALERT} WHERE municipality_id = ?", [municipality_id]
    if state is not None:
        sql += " AND state = ?"
        params.append(state)
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    return [Alert(*r) for r in reg.db.execute(sql + " ORDER BY id DESC LIMIT 1000", params)]


def history(reg: Registry, alert_id: int) -> list[dict[str, Any]]:
    rows = reg.db.execute(
        "SELECT state, at_ms, actor, note FROM alert_events WHERE alert_id = ? ORDER BY id",
        (alert_id,),
    )
    return [dict(zip(("state", "at_ms", "actor", "note"), r, strict=True)) for r in rows]


# ------------------------------------------------------------------------- the engine's side


def process_readings(
    reg: Registry, readings: Sequence[p.Reading], channels: Sequence[str], at_ms: int
) -> list[int]:
    """:func:`process_reading` for each of a message's readings, in one transaction (a batch
    of 100 commits once, not 100 times: about seven times the readings per second)."""
    opened: list[int] = []
    with reg.transaction():
        for r in readings:
            opened += process_reading(reg, r, channels, at_ms)
    return opened


def process_reading(
    reg: Registry, r: p.Reading, channels: Sequence[str], at_ms: int
) -> list[int]:
    """Apply one reading: open and clear alerts. Returns the ids of alerts opened. A reading
    not newer than the device's newest processed one changes nothing (a redelivery)."""
    opened: list[int] = []
    with reg.transaction():
        row = reg.db.execute(
            "SELECT last_ts_ms, last_mm, same_mm FROM alert_devices WHERE device_id = ?",
            (r.device,),
        ).fetchone()
        if row is not None and r.ts_ms <= row[0]:
            return []
        same = (row[2] + 1) if row and r.distance_mm is not None and row[1] == r.distance_mm else 1
        reg.db.execute(
            "INSERT INTO alert_devices (device_id, last_ts_ms, interval_s, last_mm, same_mm)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
            " last_ts_ms = excluded.last_ts_ms, interval_s = excluded.interval_s,"
            " last_mm = excluded.last_mm, same_mm = excluded.same_mm",
            (r.device, r.ts_ms, r.interval_s, r.distance_mm, same),
        )
        try:
            thresholds = reg.thresholds(r.device)
        except NotFoundError:
            return []  # not in the registry: nothing to alert anyone about
        bin_id = reg.bin_at(r.device, r.ts_ms)
        full_pct = None
        municipality = assets.device_municipality(reg, r.device)
        if bin_id is not None:
            b = reg.bin(bin_id)
            full_pct, municipality = b.full_pct, b.municipality_id
        if municipality is None:
            return []
        _clear(reg, r.device, "offline", at_ms)
        for kind, (raised, detail) in conditions(r, thresholds, full_pct, same).items():
            if raised:
                new = open_alert(reg, municipality, r.device, bin_id, kind, detail, r.ts_ms,
                                 channels, at_ms)
                if new is not None:
                    opened.append(new)
            else:
                _clear(reg, r.device, kind, at_ms)
    return opened


def _clear(
    reg: Registry, device_id: str, kind: str, at_ms: int, actor: str = "engine",
    note: str = "condition cleared",
) -> None:
    a = _active(reg, device_id, kind)
    if a is not None:
        set_state(reg, a.id, "resolved", actor, note, at_ms)


def clear(reg: Registry, device_id: str, kind: str, at_ms: int, actor: str, note: str) -> None:
    """Resolve the device's active alert of ``kind``, if any (the condition no longer holds)."""
    _clear(reg, device_id, kind, at_ms, actor, note)


def seed_devices(reg: Registry, latest: dict[str, tuple[int, int]]) -> int:
    """Learn devices the engine has not seen from their newest stored reading (time, interval),
    so that a device that fell silent before the engine first ran is still found offline."""
    rows = [(d, t, i) for d, (t, i) in latest.items()]
    with reg.transaction():
        before = reg.db.total_changes
        reg.db.executemany(
            "INSERT OR IGNORE INTO alert_devices (device_id, last_ts_ms, interval_s)"
            " VALUES (?, ?, ?)",
            rows,
        )
        return reg.db.total_changes - before


def check_offline(reg: Registry, channels: Sequence[str], at_ms: int) -> list[int]:
    """Open an offline alert for each active device silent for OFFLINE_INTERVALS intervals."""
    opened = []
    rows = reg.db.execute(
        "SELECT a.device_id, a.last_ts_ms, a.interval_s FROM alert_devices a"
        " JOIN devices d ON d.id = a.device_id WHERE d.state = 'active'"
        " AND ? - a.last_ts_ms > ? * a.interval_s * 1000",
        (at_ms, OFFLINE_INTERVALS),
    ).fetchall()
    for device_id, last_ts, interval_s in rows:
        municipality = assets.device_municipality(reg, device_id)
        if municipality is None:
            continue
        link = reg.current_link(device_id)
        detail = f"no reading for {(at_ms - last_ts) // 1000} s (interval {interval_s} s)"
        new = open_alert(reg, municipality, device_id, link.bin_id if link else None, "offline",
                         detail, last_ts, channels, at_ms)
        if new is not None:
            opened.append(new)
    return opened


def due(
    reg: Registry, channel: str, at_ms: int, limit: int = 100
) -> list[tuple[int, dict[str, Any]]]:
    """Deliveries of ``channel`` due now: (event id, payload)."""
    rows = reg.db.execute(
        "SELECT o.event_id, e.alert_id, e.state, e.at_ms FROM alert_outbox o"
        " JOIN alert_events e ON e.id = o.event_id"
        " WHERE o.channel = ? AND o.delivered_ms IS NULL AND o.next_ms <= ?"
        " ORDER BY o.event_id LIMIT ?",
        (channel, at_ms, limit),
    ).fetchall()
    return [(ev, payload(alert(reg, alert_id), ev, state, t)) for ev, alert_id, state, t in rows]


def payload(a: Alert, event_id: int, state: str, at: int) -> dict[str, Any]:
    return {"event_id": event_id, "event": state, "at_ms": at, "alert": asdict(a)}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def delivered(reg: Registry, event_id: int, channel: str, at_ms: int) -> None:
    reg.db.execute(
        "UPDATE alert_outbox SET delivered_ms = ?, attempts = attempts + 1"
        " WHERE event_id = ? AND channel = ?",
        (at_ms, event_id, channel),
    )


def failed(reg: Registry, event_id: int, channel: str, at_ms: int, error: str) -> None:
    """Retry later: 1 s, 2 s, 4 s ... up to MAX_BACKOFF_S."""
    row = reg.db.execute(
        "SELECT attempts FROM alert_outbox WHERE event_id = ? AND channel = ?",
        (event_id, channel),
    ).fetchone()
    attempts = (row[0] if row else 0) + 1
    wait_ms = min(2 ** (attempts - 1), MAX_BACKOFF_S) * 1000
    reg.db.execute(
        "UPDATE alert_outbox SET attempts = ?, next_ms = ?, last_error = ?"
        " WHERE event_id = ? AND channel = ?",
        (attempts, at_ms + wait_ms, error[:300], event_id, channel),
    )
