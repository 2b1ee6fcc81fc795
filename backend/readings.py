"""Readings from InfluxDB for the API: each device's latest state (cached, fed incrementally) and
one bin's history (joined through the registry's device-to-bin history, downsampled for long
ranges).

The cache: one full query at start (every device's newest reading), then every
``cache_refresh_s`` a query for readings since the newest time seen minus a margin, merged in
when newer than what is held. A device that comes back after an outage longer than the margin
is caught by its newest (current) reading; only older backfilled readings are skipped, which
the latest state does not need. With ``cache_refresh_s = 0`` every request queries InfluxDB.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smartbins import assets, storage
from smartbins.influx import InfluxClient
from smartbins.protocol import Flag
from smartbins.registry import Bin, Registry, now_ms

#: How far back the incremental refresh looks behind the newest time it has seen [ms]: room
#: for readings that reach InfluxDB a little after newer ones of other devices. Only every
#: MARGIN_EVERY_S does a refresh look back that far; the others ask for readings from the
#: newest time seen on (a city's 10 minutes are thousands of rows to parse and merge every
#: 2 s, which held the API's other requests up by tens of milliseconds).
REFRESH_MARGIN_MS = 600_000
MARGIN_EVERY_S = 30.0
#: The first load looks back this far, then further while devices known to InfluxDB are
#: missing (a query over all of a city's history takes InfluxDB 1.6 tens of seconds; the last
#: hours answer for almost every device). A device silent for longer than the last window
#: shows no reading.
LOAD_WINDOWS_MS = (2 * 3_600_000, 86_400_000, 7 * 86_400_000, 30 * 86_400_000, 90 * 86_400_000)
#: Longest history one request may ask for [ms], and the most points it returns.
MAX_RANGE_MS = 400 * 86_400_000
MAX_POINTS = 2_000
#: Bucket widths a long history is averaged over [s]: the smallest that fits MAX_POINTS.
BUCKETS_S = (300, 900, 3_600, 3 * 3_600, 6 * 3_600, 86_400, 7 * 86_400)
#: A bucketed history of at most this many readings is averaged in the API, not by InfluxDB.
RAW_FOR_BUCKETS = 3 * MAX_POINTS
#: Ranges up to this (three days: 72 hourly readings) are returned raw [ms].
RAW_UP_TO_MS = 3 * 86_400_000


def flag_names(flags: float | None) -> list[str]:
    if flags is None:
        return []
    value = int(flags)
    return [f.name.lower() for f in Flag if f.name and value & f]


@dataclass(frozen=True)
class Latest:
    device: str
    time_ms: int
    values: Mapping[str, Any]


class Readings:
    """Queries InfluxDB with one client per thread (the client is not thread-safe)."""

    def __init__(
        self,
        make_client: Callable[[], InfluxClient],
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_client = make_client
        self._clock = clock
        self._margin_at: float | None = None
        self._local = threading.local()
        self.refresh_s = refresh_s
        self._latest: dict[str, Latest] = {}
        self._newest_ms: int | None = None
        self._lock = threading.Lock()
        self._loaded = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Bumped whenever the cache takes a newer reading: part of an answer cache's key.
        self.generation = 0
        #: Serialised answers of the latest-state route by (municipality, stream, area), each
        #: with the (registry bins version, generation) it was built at.
        self.answers: dict[tuple[str, str | None, str | None], tuple[tuple[int, int], bytes]] = {}

    def client(self) -> InfluxClient:
        c = getattr(self._local, "client", None)
        if c is None:
            c = self._local.client = self._make_client()
        return c

    def query(self, q: str) -> list[dict[str, Any]]:
        return self.client().query(q)

    # --------------------------------------------------------------- latest state

    def load(self, now: int | None = None) -> None:
        """The first load: each device's newest reading, looking back window by window until
        every device InfluxDB knows is found."""
        t = now if now is not None else now_ms()
        known = {v[1] for s in self.query(storage.devices_query()) for v in s["values"]}
        for window in LOAD_WINDOWS_MS:
            self._merge(self.query(storage.latest_query(max(t - window, 0))))
            if known <= set(self._latest):
                break
        with self._lock:
            self._loaded = True

    def refresh(self) -> int:
        """Merge readings newer than the cache holds; returns how many devices changed."""
        if self._newest_ms is None:
            before = self.generation
            self.load()
            return int(self.generation != before)
        now = self._clock()
        since = self._newest_ms + 1  # what is newer than the newest seen (stored times are
        # ts x 10^6 + seq ns: the newest ms itself would match every device's last reading)
        if self._margin_at is None or now - self._margin_at >= MARGIN_EVERY_S:
            since, self._margin_at = self._newest_ms - REFRESH_MARGIN_MS, now
        rows = self.query(storage.recent_query(since))
        newest: dict[str, dict[str, Any]] = {}
        for s in rows:  # one series, in time order: the last row of a device is its newest
            cols = s["columns"]
            for values in s["values"]:
                row = dict(zip(cols, values, strict=True))
                newest[row.pop(storage.DEVICE_TAG)] = row
        return self._merge(
            [{"tags": {storage.DEVICE_TAG: d}, "columns": list(r), "values": [list(r.values())]}
             for d, r in newest.items()]
        )

    def _merge(self, series: list[dict[str, Any]]) -> int:
        changed = 0
        with self._lock:
            for s in series:
                device = s["tags"][storage.DEVICE_TAG]
                row = dict(zip(s["columns"], s["values"][0], strict=True))
                t = int(row.pop("time"))
                held = self._latest.get(device)
                if held is None or t > held.time_ms or (t == held.time_ms and row != held.values):
                    self._latest[device] = Latest(device, t, row)
                    changed += 1
                if self._newest_ms is None or t > self._newest_ms:
                    self._newest_ms = t
            self._loaded = True
            if changed:
                self.generation += 1
        return changed

    def latest(self) -> dict[str, Latest]:
        """Every device's newest reading: from the cache, or a fresh query without one."""
        if self.refresh_s == 0 or not self._loaded:
            if self.refresh_s == 0:
                self._latest, self._newest_ms = {}, None
            self.refresh()
        return self._latest

    def start(self) -> None:
        if self.refresh_s <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="latest-cache", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                self.refresh()
            except Exception:
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def bin_states(
    reg: Registry,
    readings: Readings,
    municipality_id: str,
    *,
    stream: str | None = None,
    area: str | None = None,
) -> list[dict[str, Any]]:
    """The latest state of every (not retired) bin of a municipality: the newest reading of the
    device on it now, if taken since it was put there."""
    the_bins = assets.bins(reg, municipality_id, stream=stream, area=area)
    on = assets.current_devices(reg, municipality_id)
    latest = readings.latest()
    return [_state(b, on.get(b.id), latest) for b in the_bins]


MAX_CACHED_ANSWERS = 256


def bin_states_json(
    reg: Registry,
    readings: Readings,
    municipality_id: str,
    *,
    stream: str | None = None,
    area: str | None = None,
) -> bytes:
    """:func:`bin_states` as JSON, served from the answer cache while neither the registry's
    bins nor the readings cache changed (a whole city's answer is about 1.5 MB to build)."""
    if readings.refresh_s == 0:
        return json.dumps(bin_states(reg, readings, municipality_id, stream=stream, area=area),
                          separators=(",", ":")).encode()
    readings.latest()  # loaded before the key is taken
    key = (municipality_id, stream, area)
    stamp = (reg.bins_version(), readings.generation)
    held = readings.answers.get(key)
    if held is not None and held[0] == stamp:
        return held[1]
    body = json.dumps(bin_states(reg, readings, municipality_id, stream=stream, area=area),
                      separators=(",", ":")).encode()
    if len(readings.answers) >= MAX_CACHED_ANSWERS:
        readings.answers.clear()
    readings.answers[key] = (stamp, body)
    return body


def _state(b: Bin, on: tuple[str, int] | None, latest: Mapping[str, Latest]) -> dict[str, Any]:
    device = on[0] if on else None
    r = latest.get(device) if device else None
    if r is not None and on is not None and r.time_ms < on[1]:
        r = None  # that reading was taken on another bin
    v = r.values if r else {}
    fill = v.get("fill")
    return {
        "bin_id": b.id,
        "stream": b.stream,
        "area": b.area,
        "lat": b.lat,
        "lon": b.lon,
        "device_id": device,
        "fill_pct": fill,
        "temp_c": v.get("temp"),
        "battery_mv": v.get("bat"),
        "rssi_dbm": v.get("rssi"),
        "tilt_deg": v.get("tilt"),
        "last_seen_ms": r.time_ms if r else None,
        "flags": flag_names(v.get("flags")),
        "full": fill is not None and fill >= b.full_pct,
    }


def bucket_for(start_ms: int, end_ms: int, every_s: int | None) -> int | None:
    """The bucket width for a history request: the one asked for, none for short ranges, else
    the smallest of BUCKETS_S that keeps the points under MAX_POINTS."""
    if every_s is not None:
        return every_s
    span = end_ms - start_ms
    if span <= RAW_UP_TO_MS:
        return None
    for b in BUCKETS_S:
        if span / (b * 1000) <= MAX_POINTS:
            return b
    return BUCKETS_S[-1]


def history(
    reg: Registry,
    readings: Readings,
    bin_id: str,
    start_ms: int,
    end_ms: int,
    every_s: int | None = None,
) -> dict[str, Any]:
    """One bin's readings in [start_ms, end_ms) from each device that sat on it then."""
    bucket = bucket_for(start_ms, end_ms, every_s)
    points: list[dict[str, Any]] = []
    for device, from_ms, to_ms in assets.bin_devices(reg, bin_id):
        lo, hi = max(start_ms, from_ms), min(end_ms, to_ms if to_ms is not None else end_ms)
        if lo >= hi:
            continue
        for t, fill, temp, bat, rssi, tilt in _device_history(readings, device, lo, hi, bucket):
            points.append(
                {
                    "time_ms": t,
                    "device_id": device,
                    "fill_pct": fill,
                    "temp_c": temp,
                    "battery_mv": bat,
                    "rssi_dbm": rssi,
                    "tilt_deg": tilt,
                }
            )
    points.sort(key=lambda p: p["time_ms"])
    return {
        "bin_id": bin_id,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "every_s": bucket,
        "points": points,
    }


def _rows(series: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for s in series:
        index = [s["columns"].index(c) for c in ("time", *storage.HISTORY_FIELDS)]
        rows += [(int(v[index[0]]), *(v[k] for k in index[1:])) for v in s["values"]]
    return rows


def _device_history(
    readings: Readings, device: str, lo: int, hi: int, bucket: int | None
) -> list[tuple[Any, ...]]:
    """One device's points in [lo, hi): raw, or per bucket. A bucketed range of at most
    RAW_FOR_BUCKETS readings is fetched raw and averaged here (InfluxDB 1.6 answers the raw
    rows about three times faster than its GROUP BY time() over five aggregates); a denser one
    is averaged by InfluxDB."""
    if bucket is None:
        return _rows(readings.query(storage.history_query(device, lo, hi)))
    raw = _rows(readings.query(storage.history_query(device, lo, hi, limit=RAW_FOR_BUCKETS + 1)))
    if len(raw) <= RAW_FOR_BUCKETS:
        return storage.history_buckets(raw, bucket)  # type: ignore[arg-type]
    return _rows(readings.query(storage.history_query(device, lo, hi, bucket)))


def default_range(start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    end = end_ms if end_ms is not None else now_ms()
    start = start_ms if start_ms is not None else end - 7 * 86_400_000
    return start, end
