"""Fleet health for technicians: per device its battery and trend, signal, last seen, reboots,
buffered backlog, firmware, sensor faults and dead letters by reason, and a visit priority
(devices to visit, worst first).

From InfluxDB (readings and dead letters over a window), the gateway's status store (online or
lost, buffered backlog, reported firmware) when configured, and the registry (bin, state,
installed firmware, thresholds). The priority is a plain sum of weighted problems, so the
reasons it lists explain the order.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from backend.readings import Readings, flag_names
from smartbins import assets, storage
from smartbins.registry import Registry

#: A device is offline after this many report intervals without a reading (the alert rule too).
OFFLINE_INTERVALS = 3
#: Weights of the visit priority, by problem.
WEIGHTS = {
    "offline": 100.0,
    "sensor_faults": 50.0,  # times the share of faulty readings
    "low_battery": 40.0,
    "battery_falling": 10.0,  # at least 50 mV/day down
    "dead_letters": 5.0,  # each, at most 6
    "reboots": 5.0,  # each beyond one, at most 6
    "weak_signal": 10.0,  # mean under -85 dBm
    "dropped": 10.0,  # the device's buffer overflowed
}


def status_rows(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        db.row_factory = sqlite3.Row
        return {r["device"]: dict(r) for r in db.execute("SELECT * FROM device_status")}
    except sqlite3.OperationalError:  # the gateway has not created it yet
        return {}
    finally:
        db.close()


def fleet_health(
    reg: Registry,
    readings: Readings,
    municipality_id: str,
    *,
    now_ms: int,
    days: int,
    status_path: Path | None = None,
) -> list[dict[str, Any]]:
    since = now_ms - days * 86_400_000
    devices = assets.municipality_devices(reg, municipality_id)
    wanted = set(devices)
    window: dict[str, dict[str, Any]] = {}
    for s in readings.query(storage.health_query(since)):
        d = s["tags"][storage.DEVICE_TAG]
        if d in wanted:
            window[d] = dict(zip(s["columns"], s["values"][0], strict=True))
    dead: dict[str, dict[str, int]] = {}
    for s in readings.query(storage.deadletters_query(since)):
        d = s["tags"][storage.DEVICE_TAG]
        if d in wanted:
            dead.setdefault(d, {})[s["tags"]["reason"]] = int(s["values"][0][1])
    latest = readings.latest()
    status = status_rows(status_path)
    out = [
        _one(reg, d, window.get(d, {}), dead.get(d, {}), latest.get(d), status.get(d), now_ms,
             days)
        for d in devices
    ]
    out.sort(key=lambda r: (-r["priority"], r["device_id"]))
    return out


def _one(
    reg: Registry,
    device_id: str,
    w: dict[str, Any],
    dead: dict[str, int],
    latest: Any,
    status: dict[str, Any] | None,
    now_ms: int,
    days: int,
) -> dict[str, Any]:
    device = reg.device(device_id)
    thresholds = reg.thresholds(device_id)
    link = reg.current_link(device_id)
    v = latest.values if latest else {}
    last_seen = latest.time_ms if latest else None
    if status and status.get("last_reading_ts_ms"):
        last_seen = max(last_seen or 0, int(status["last_reading_ts_ms"]))
    interval_s = int(v.get("interval") or thresholds["interval_s"])
    offline = device.state == "active" and (
        last_seen is None or now_ms - last_seen > OFFLINE_INTERVALS * interval_s * 1000
    )
    battery = v.get("bat")
    trend = None
    if w.get("bat_first") is not None and w.get("bat_last") is not None:
        trend = round((w["bat_last"] - w["bat_first"]) / days, 1)
    readings_n = int(w.get("readings") or 0)
    faults = int(w.get("errors") or 0)
    reboots = max(int(w["boot_max"] - w["boot_min"]), 0) if w.get("boot_max") is not None else 0
    rssi = round(w["rssi"], 1) if w.get("rssi") is not None else v.get("rssi")
    dropped = int(v.get("dropped") or 0)
    reasons: list[str] = []
    priority = 0.0

    def add(reason: str, weight: float) -> None:
        nonlocal priority
        reasons.append(reason)
        priority += weight

    if offline:
        add("offline", WEIGHTS["offline"])
    if faults:
        add("sensor faults", WEIGHTS["sensor_faults"] * faults / max(readings_n, 1))
    if battery is not None and battery < thresholds["low_battery_mv"]:
        add("low battery", WEIGHTS["low_battery"])
    if trend is not None and trend <= -50:
        add("battery falling", WEIGHTS["battery_falling"])
    if dead:
        add("dead letters", WEIGHTS["dead_letters"] * min(sum(dead.values()), 6))
    if reboots > 1:
        add("reboots", WEIGHTS["reboots"] * min(reboots - 1, 6))
    if rssi is not None and rssi < -85:
        add("weak signal", WEIGHTS["weak_signal"])
    if dropped:
        add("readings dropped", WEIGHTS["dropped"])
    return {
        "device_id": device_id,
        "bin_id": link.bin_id if link else None,
        "state": device.state,
        "online": (status or {}).get("state"),
        "firmware_installed": reg.db.execute(
            "SELECT firmware FROM devices WHERE id = ?", (device_id,)
        ).fetchone()[0],
        "firmware_reported": v.get("fw") or (status or {}).get("fw"),
        "last_seen_ms": last_seen,
        "battery_mv": battery,
        "battery_trend_mv_per_day": trend,
        "rssi_dbm": rssi,
        "reboots": reboots,
        "buffered": (status or {}).get("buffered"),
        "dropped": dropped,
        "readings": readings_n,
        "sensor_faults": faults,
        "flags": flag_names(v.get("flags")),
        "dead_letters": dead,
        "priority": round(priority, 1),
        "reasons": reasons,
    }
