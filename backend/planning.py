"""The planning service: a municipality's collection plan for a day, from the registry and the
readings, through the routing core's forecast -> select -> route.

Reads the bins (with their device-to-bin history), depots, disposal sites and trucks from the
registry and each bin's fill readings from InfluxDB, builds the arrays, and calls
``routing.forecast`` (every bin's level, band and overflow probability) and ``routing.plan``
(``plan_day``: required bins by overflow risk, bins on the way as optional stops with prizes,
one prize-collecting routing with capacity per compartment, disposal trips and shifts). The
policy is the one the closed loop proves (``smartbins evaluate``, docs/forecast.md), trips
included (``routing.select``): streams that share trucks go out only on a day when one of
their bins would otherwise overflow before the next working day, and such a trip takes what
would be at risk before its look-ahead. The result is the plan document the dashboard and
the drivers' route sheets read (``docs/dashboard.md``, "The plan document"), with the risk the
plan accepts for every bin it leaves out. ``smartbins plan`` and the API's
``POST .../plans/generate`` both call :func:`plan`.

Times: a plan's date is a local (Europe/Copenhagen) date; shifts start at each truck's
``shift_start_s`` after local midnight; opportunities are the ends of the shifts of working
days (Monday to Friday): the next one for a stream without a trip today, its look-ahead away
for a stream on a trip.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from routing.forecast import BinForecast, Forecaster
from routing.plan import DayBins, DayPlan, Fleet, plan_day
from routing.plan_params import ForecastParams, SelectParams
from routing.select import lookahead_days, opportunities, stream_groups
from routing.stop import MaxIterations, MaxRuntime
from smartbins import assets, storage
from smartbins.protocol import BLIND_ZONE_FILL_PCT, Flag, SensorError
from smartbins.registry import Bin, Registry, RegistryError, now_ms

TIMEZONE = zoneinfo.ZoneInfo("Europe/Copenhagen")
HOUR_S = 3600
DAY_S = 86_400
#: Readings whose fill cannot be trusted for the forecast (the forecaster drops them).
DISTRUSTED = int(Flag.TILT | Flag.SENSOR_ERROR | Flag.UNCALIBRATED)

Query = Callable[[str], list[dict[str, Any]]]


class PlanningError(RegistryError):
    """A plan that cannot be made as asked; the message names the field and what to fix."""


@dataclass(frozen=True)
class PlanRequest:
    """What to plan. ``stream`` None plans every stream the trucks carry; ``time_limit_s`` is
    the router's budget (``iterations`` > 0 replaces it by an iteration count: reproducible
    plans for tests)."""

    municipality_id: str
    date: str
    stream: str | None = None
    time_limit_s: float = 10.0
    iterations: int = 0
    seed: int = 1
    forecast: ForecastParams = field(default_factory=ForecastParams)
    select: SelectParams = field(default_factory=SelectParams)
    speed_kmh: float = 20.0


# ------------------------------------------------------------------------------ time


def local_midnight_s(date: str) -> int:
    """Local midnight of ``date`` (YYYY-MM-DD) [s UTC]; PlanningError naming ``date``."""
    try:
        d = dt.date.fromisoformat(date)
    except (TypeError, ValueError):
        raise PlanningError(f"date: {date!r} is not a date (YYYY-MM-DD)") from None
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=TIMEZONE).timestamp())


def next_workdays(date: str, n: int = 2) -> list[str]:
    """The ``n`` working days (Monday to Friday) after ``date``."""
    d = dt.date.fromisoformat(date)
    out: list[str] = []
    while len(out) < n:
        d += dt.timedelta(days=1)
        if d.weekday() < 5:
            out.append(d.isoformat())
    return out


# ------------------------------------------------------------------------------ readings


def bin_readings(
    query: Query, reg: Registry, bins: list[Bin], since_ms: int, until_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fill readings of ``bins`` in [since_ms, until_ms) as flat arrays (bin index,
    t [s], fill [%], distrusted flag), each reading given to the bin its device sat on when it
    was measured (the registry's device-to-bin history)."""
    index = {b.id: i for i, b in enumerate(bins)}
    links: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for bin_id in index:
        for device, lo, hi in assets.bin_devices(reg, bin_id):
            if (hi is None or hi > since_ms) and lo < until_ms:
                links[device].append((index[bin_id], lo, hi if hi is not None else until_ms))
    bi: list[np.ndarray] = []
    ts: list[np.ndarray] = []
    fill: list[np.ndarray] = []
    bad: list[np.ndarray] = []
    if not links:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty, empty.astype(bool)
    for s in query(storage.fill_history_query(since_ms, until_ms)):
        spans = links.get(s["tags"][storage.DEVICE_TAG])
        if not spans:
            continue
        # a reading without a fill is left out, unless its sensor answered BLIND_ZONE: the
        # waste is at the sensor, the bin at least full, and its sensor-error flag does not
        # make it distrusted
        rows = [v for v in s["values"]
                if v[1] is not None or SensorError.BLIND_ZONE in storage.stored_errors(v[3])]
        if not rows:
            continue
        t_ms = np.array([int(v[0]) for v in rows], dtype=np.int64)
        blind = np.array([v[1] is None for v in rows], dtype=bool)
        f = np.array([BLIND_ZONE_FILL_PCT if v[1] is None else float(v[1]) for v in rows])
        flags = np.array([int(v[2] or 0) for v in rows], dtype=np.int64)
        flags[blind] &= ~int(Flag.SENSOR_ERROR)
        for b, lo, hi in spans:
            sel = (t_ms >= lo) & (t_ms < hi)
            bi.append(np.full(int(sel.sum()), b, dtype=np.int64))
            ts.append(t_ms[sel] / 1000.0)
            fill.append(f[sel])
            bad.append((flags[sel] & DISTRUSTED) != 0)
    if not bi:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty, empty, empty.astype(bool)
    return np.concatenate(bi), np.concatenate(ts), np.concatenate(fill), np.concatenate(bad)


def forecast_bins(
    query: Query,
    reg: Registry,
    bins: list[Bin],
    at_s: int,
    params: ForecastParams | None = None,
) -> tuple[BinForecast, np.ndarray]:
    """Every bin's forecast at ``at_s`` from its readings over ``params.history_days``, pooled
    by site and stream, then stream; and how many readings each bin had."""
    params = params or ForecastParams()
    since_ms = int((at_s - params.history_days * DAY_S) * 1000)
    b, t, f, bad = bin_readings(query, reg, bins, since_ms, at_s * 1000 + 1)
    streams = sorted({x.stream for x in bins})
    sites = sorted({x.site_id for x in bins})
    s_idx = np.array([streams.index(x.stream) for x in bins], dtype=np.int64)
    site_idx = np.array([sites.index(x.site_id) for x in bins], dtype=np.int64)
    forecaster = Forecaster(len(bins), params, [site_idx * len(streams) + s_idx, s_idx])
    forecaster.fit(b, t, f, None, bad)
    fc = forecaster.forecast(b, t, f, float(at_s), None, bad)
    return fc, np.bincount(b, minlength=len(bins))


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class _Fleet:
    fleet: Fleet
    trucks: list[assets.Truck]
    depots: list[assets.Depot]
    disposal: list[assets.DisposalSite]
    shift_start_s: int


def _fleet(reg: Registry, municipality_id: str, streams: list[str], speed_kmh: float) -> _Fleet:
    depots = assets.depots(reg, municipality_id)
    disposal = assets.disposal_sites(reg, municipality_id)
    trucks = [
        t for t in assets.trucks(reg, municipality_id)
        if any(c.stream in streams for c in t.compartments)
    ]
    if not depots:
        raise PlanningError(f"municipality_id: {municipality_id!r} has no depot")
    if not trucks:
        raise PlanningError(
            f"stream: no truck of {municipality_id!r} has a compartment for {', '.join(streams)}"
        )
    if not any(set(d.streams) & set(streams) for d in disposal):
        raise PlanningError(
            f"stream: no disposal site of {municipality_id!r} accepts {', '.join(streams)}"
        )
    s_idx = {s: i for i, s in enumerate(streams)}
    depot_idx = {d.id: i for i, d in enumerate(depots)}
    capacity = np.zeros((len(trucks), len(streams)))
    for v, t in enumerate(trucks):
        for c in t.compartments:
            if c.stream in s_idx:
                capacity[v, s_idx[c.stream]] += c.capacity_l
    accepts = np.array(
        [[s in d.streams for s in streams] for d in disposal], dtype=bool
    ).reshape(len(disposal), len(streams))
    start = min(t.shift_start_s for t in trucks)
    fleet = Fleet(
        depot_lonlat=np.array([[d.lon, d.lat] for d in depots]),
        disposal_lonlat=np.array([[d.lon, d.lat] for d in disposal]).reshape(len(disposal), 2),
        disposal_accepts=accepts,
        unload_s=np.full(len(disposal), 900.0),
        truck_depot=np.array([depot_idx[t.depot_id] for t in trucks], dtype=np.int64),
        capacity_l=capacity,
        # a truck that starts later than the first one has that much less of the day
        shift_s=np.array([t.shift_s + t.shift_start_s - start for t in trucks], dtype=float),
        streams=tuple(streams),
        speed_mps=speed_kmh / 3.6,
    )
    return _Fleet(fleet, trucks, depots, disposal, start)


@dataclass(frozen=True)
class _Inputs:
    """What a plan reads: the bins, the streams the trucks carry, the fleet, and every bin's
    forecast with its reading count."""

    bins: list[Bin]
    streams: list[str]
    fl: _Fleet
    fc: BinForecast
    counts: np.ndarray


def _read(reg: Registry, query: Query, req: PlanRequest, now_s: int | None) -> _Inputs:
    """The registry and the readings for ``req``; the forecast is made at the earlier of now
    and the shift's start on ``req.date``. PlanningError naming the field when it cannot be."""
    day0 = local_midnight_s(req.date)
    try:
        bins = assets.bins(reg, req.municipality_id, stream=req.stream)
    except RegistryError as e:
        raise PlanningError(str(e)) from None
    carried = sorted({c.stream for t in assets.trucks(reg, req.municipality_id)
                      for c in t.compartments})
    streams = sorted({b.stream for b in bins} & set(carried))
    if req.stream is not None and not streams:
        raise PlanningError(f"stream: no truck of {req.municipality_id!r} carries {req.stream!r}")
    if not bins:
        raise PlanningError(f"municipality_id: {req.municipality_id!r} has no bins to plan")
    fl = _fleet(reg, req.municipality_id, streams, req.speed_kmh)
    now = int(time.time()) if now_s is None else int(now_s)
    fc, counts = forecast_bins(query, reg, bins, min(now, day0 + fl.shift_start_s), req.forecast)
    return _Inputs(bins, streams, fl, fc, counts)


def plan(
    reg: Registry, query: Query, req: PlanRequest, *, now_s: int | None = None
) -> dict[str, Any]:
    """The plan document for ``req`` (not stored: :func:`plan_and_store` stores it)."""
    t0 = time.perf_counter()
    return _plan_day(reg, req, _read(reg, query, req, now_s), t0)


def plans_until_collection(
    reg: Registry, query: Query, req: PlanRequest, *, now_s: int | None = None
) -> Iterator[dict[str, Any]]:
    """The plan documents of ``req.date`` and the working days after it, in turn, up to the
    first that sends a truck out (:func:`next_collection_days`). The registry and the readings
    are read, and the forecast made, once, for the first day."""
    t0 = time.perf_counter()
    inputs = _read(reg, query, req, now_s)
    for date in next_collection_days(req.date):
        doc = _plan_day(reg, replace(req, date=date), inputs, t0)
        yield doc
        if doc["trucks"]:
            return
        t0 = time.perf_counter()


def planned_days(
    reg: Registry, query: Query, req: PlanRequest, *, now_s: int | None = None,
    next_collection: bool = False,
) -> Iterator[dict[str, Any]]:
    """The plan of ``req.date``, or with ``next_collection`` those of every day up to the next
    collection (:func:`plans_until_collection`); the last is the one asked for."""
    if next_collection:
        return plans_until_collection(reg, query, req, now_s=now_s)
    return iter([plan(reg, query, req, now_s=now_s)])


def _plan_day(reg: Registry, req: PlanRequest, inputs: _Inputs, t0: float) -> dict[str, Any]:
    bins, streams, fl, fc, counts = (inputs.bins, inputs.streams, inputs.fl, inputs.fc,
                                     inputs.counts)
    shift0 = local_midnight_s(req.date) + fl.shift_start_s
    known = (counts > 0) & np.isfinite(fc.level_pct)
    routable = np.array([b.stream in streams for b in bins])
    usable = np.flatnonzero(known & routable)
    mid = shift0 + float(np.median(fl.fleet.shift_s)) / 2
    level = fc.expected_level_pct(mid)
    lo, hi = fc.level_band_pct(mid)
    s_idx = {s: i for i, s in enumerate(streams)}
    stream = np.array([s_idx.get(b.stream, -1) for b in bins], dtype=np.int64)
    op = _opportunities(req, fl, fc, stream, usable)
    p_next = fc.overflow_probability(op.next_s)
    p_after = fc.overflow_probability(op.after_s)
    day = DayBins(
        lonlat=np.array([[bins[i].lon, bins[i].lat] for i in usable]).reshape(len(usable), 2),
        stream=stream[usable],
        volume_l=np.array([bins[i].volume_l for i in usable], dtype=float),
        level_at_service_pct=level[usable],
        p_overflow_next=p_next[usable],
        p_overflow_after=p_after[usable],
    )
    stop = MaxIterations(req.iterations) if req.iterations > 0 else MaxRuntime(req.time_limit_s)
    dp = (plan_day(day, fl.fleet, stop, req.select, seed=req.seed, available=op.trip[usable])
          if len(usable) else None)

    doc: dict[str, Any] = {
        "municipality_id": req.municipality_id,
        "date": req.date,
        "stream": req.stream,
        "created_ms": now_ms(),
        "source": "backend.planning (forecast, risk-based selection, prize-collecting routing)",
        "trucks": [],
        "skipped": [],
        "violations": [],
        "max_risk": req.select.max_risk,
        "trips": {
            name: {"trip": bool(op.stream_trip[k]), "lookahead_days": int(op.stream_look[k]),
                   "next_opportunity": op.stream_next[k]}
            for k, name in enumerate(streams)
        },
        "forecast": {
            b.id: {
                "fill_pct": round(float(level[i]), 1),
                "lo_pct": round(float(max(lo[i], -100.0)), 1),
                "hi_pct": round(float(min(hi[i], 1000.0)), 1),
                "overflow_probability": round(float(p_next[i]), 4),
                "at_ms": int(mid * 1000),
            }
            for i, b in enumerate(bins)
            if known[i]
        },
    }
    if dp is not None and dp.result is not None:  # None: nothing to empty today
        _routes_into(doc, reg, dp, fl, [bins[i] for i in usable], level[usable], shift0)
    planned = {b["bin_id"] for t in doc["trucks"] for s in t["stops"] for b in s["bins"]}
    for i, b in enumerate(bins):
        if b.id in planned:
            continue
        if not known[i]:
            reason, risk = "no readings to forecast from", 1.0
        elif not routable[i]:
            reason, risk = "no truck carries its stream", float(p_next[i])
        elif not op.trip[i]:
            reason, risk = (f"no {b.stream} trip today: none of its bins is due before "
                            f"{op.stream_next[stream[i]]}"), float(p_next[i])
        else:
            reason, risk = (f"not needed before the next opportunity "
                            f"({op.stream_next[stream[i]]})"), float(p_next[i])
        doc["skipped"].append(_skip(reg, b, level[i] if known[i] else None, risk, reason))
    doc["skipped"].sort(key=lambda s: (-s["overflow_probability"], s["bin_id"]))
    doc["source"] += f", planned in {time.perf_counter() - t0:.1f} s"
    return doc


@dataclass(frozen=True)
class _Opportunities:
    trip: np.ndarray  #: (B,) the bin's stream goes out today
    next_s: np.ndarray  #: (B,) end of the shift of its next opportunity [s UTC]
    after_s: np.ndarray  #: (B,) and of the one after
    stream_trip: np.ndarray  #: (S,) the stream goes out today
    stream_look: np.ndarray  #: (S,) its look-ahead [working days]
    stream_next: list[str]  #: (S,) its next opportunity: the look-ahead away on a trip


def _opportunities(req: PlanRequest, fl: _Fleet, fc: BinForecast, stream: np.ndarray,
                   usable: np.ndarray) -> _Opportunities:
    """Which streams make a trip today and every bin's next two opportunities
    (``routing.select``), as the closed loop does: a stream's look-ahead comes from the rates
    of its forecast bins, and a group of streams that share trucks goes out when one of its
    bins would overflow before the next working day with more than ``trip_risk`` probability.
    Bins not routable today (``stream`` -1, or no forecast) count as on no trip."""
    n_streams = len(fl.fleet.streams)
    group = stream_groups(fl.fleet.capacity_l)
    st = stream[usable]
    look = lookahead_days(fc.rate_pct_day[usable], st, group, req.select)  # (S,)
    workdays = next_workdays(req.date, int(2 * look.max(initial=1)))
    ends = np.array([local_midnight_s(d) + fl.shift_start_s + float(np.median(fl.fleet.shift_s))
                     for d in workdays])
    n = len(stream)
    p_day = fc.overflow_probability(np.full(n, ends[0]))
    trip_u, k_next, k_after = opportunities(p_day[usable], st, group, look[st], req.select)
    trip = np.zeros(n, bool)
    k1, k2 = np.ones(n, np.int64), np.full(n, 2, np.int64)
    trip[usable], k1[usable], k2[usable] = trip_u, k_next, k_after
    stream_trip = np.zeros(n_streams, bool)
    stream_trip[st[trip_u]] = True
    stream_next = [workdays[int(k) - 1] for k in np.where(stream_trip, look, 1)]
    return _Opportunities(trip, ends[k1 - 1], ends[k2 - 1], stream_trip, look, stream_next)


def _site(reg: Registry, site_id: str) -> assets.Site:
    return assets.site(reg, site_id)


def _skip(reg: Registry, b: Bin, level: float | None, risk: float, reason: str) -> dict[str, Any]:
    s = _site(reg, b.site_id)
    return {
        "bin_id": b.id, "site_id": b.site_id, "stream": b.stream, "lat": b.lat, "lon": b.lon,
        "address": s.address or s.name,
        "expected_fill_pct": None if level is None else round(float(level), 1),
        "overflow_probability": round(float(np.clip(risk, 0.0, 1.0)), 4),
        "reason": reason,
    }


def _routes_into(
    doc: dict[str, Any],
    reg: Registry,
    dp: DayPlan,
    fl: _Fleet,
    bins: list[Bin],
    level_pct: np.ndarray,
    shift0: int,
) -> None:
    """The router's routes as the document's trucks and stops (one stop per bin); loads as
    plan_day priced them (the expected level at service, within 5..130 %)."""
    assert dp.result is not None and dp.data is not None
    chosen = np.flatnonzero(dp.required | dp.offered)
    nd, ns = dp.data.num_depots, dp.data.num_stops
    level = np.clip(np.nan_to_num(level_pct, nan=100.0), 5.0, 130.0)
    doc["violations"] = list(dp.violations)
    for route in dp.result.routes:
        t = fl.trucks[route.vehicle]
        stops: list[dict[str, Any]] = []
        load: dict[str, float] = defaultdict(float)
        for loc, start in zip(route.visits, route.service_start_s, strict=True):
            eta = int((shift0 + float(start)) * 1000)
            if nd <= loc < nd + ns:
                k = int(chosen[loc - nd])
                b = bins[k]
                site = _site(reg, b.site_id)
                load[b.stream] += b.volume_l * float(level[k]) / 100
                stops.append({
                    "index": len(stops), "kind": "bin", "site_id": b.site_id,
                    "name": site.name, "address": site.address or site.name,
                    "lat": b.lat, "lon": b.lon, "eta_ms": eta,
                    "bins": [{"bin_id": b.id, "stream": b.stream, "volume_l": b.volume_l,
                              "expected_fill_pct": round(float(level[k]), 1)}],
                    "done_ms": None, "done_by": None,
                })
            elif loc >= nd + ns:
                d = fl.disposal[loc - nd - ns]
                stops.append({
                    "index": len(stops), "kind": "disposal", "disposal_site_id": d.id,
                    "name": d.name, "address": d.name, "lat": d.lat, "lon": d.lon,
                    "eta_ms": eta, "bins": [],
                    "streams": sorted(set(d.streams) & {c.stream for c in t.compartments}),
                })
        doc["trucks"].append({
            "truck_id": t.id, "name": t.name or t.id, "depot_id": t.depot_id,
            "start_ms": int((shift0 + route.start_s) * 1000),
            "end_ms": int((shift0 + route.end_s) * 1000),
            "km": round(route.distance / 1000, 2), "duration_s": round(route.duration_s),
            "load_l": {s: round(v) for s, v in load.items()},
            "capacity_l": {c.stream: c.capacity_l for c in t.compartments},
            "disposal_trips": sum(1 for s in stops if s["kind"] == "disposal"),
            "stops": stops,
        })


#: A bin the plan leaves out with at least this chance of overflowing before the next
#: opportunity, and more than the plan's ``max_risk``, raises a forecast-overflow alert [-].
ALERT_RISK = 0.5


def raise_forecast_alerts(
    reg: Registry, doc: dict[str, Any], channels: tuple[str, ...], at_ms: int | None = None
) -> list[int]:
    """Open a ``forecast_overflow`` alert for every bin the plan leaves out although it will
    probably overflow before the next opportunity (a truck short, a stream nobody carries),
    and resolve it for bins the plan now takes or no longer fears for. Alerts are per device
    (the bin's device now), deduplicated like the engine's; the engine delivers them."""
    from backend import alerts

    t = at_ms if at_ms is not None else now_ms()
    on = assets.current_devices(reg, doc["municipality_id"])
    # the plan accepts risks up to its max_risk by design; only what it could not take alerts
    floor = doc.get("max_risk") or 0.0
    risky = {s["bin_id"]: s for s in doc["skipped"]
             if s["overflow_probability"] >= ALERT_RISK and s["overflow_probability"] > floor
             and s["expected_fill_pct"] is not None}
    opened: list[int] = []
    for bin_id, (device, _) in sorted(on.items()):
        if doc.get("stream") and reg.bin(bin_id).stream != doc["stream"]:
            continue
        s = risky.get(bin_id)
        if s is None:
            alerts.clear(reg, device, "forecast_overflow", t, "planning",
                         f"not feared in the plan for {doc['date']}")
            continue
        detail = (f"bin {bin_id}: {s['overflow_probability']:.0%} chance of overflowing before "
                  f"the next collection, not in the plan for {doc['date']} ({s['reason']})")
        a = alerts.open_alert(reg, doc["municipality_id"], device, bin_id, "forecast_overflow",
                              detail, None, channels, t)
        if a is not None:
            opened.append(a)
    return opened


def plan_and_store(
    reg: Registry,
    query: Query,
    req: PlanRequest,
    *,
    now_s: int | None = None,
    channels: tuple[str, ...] = (),
    next_collection: bool = False,
) -> dict[str, Any]:
    """Make the plan and store it (one per municipality, date and stream), replacing an
    earlier one for the same day: the dashboard and the route sheets read the stored one.
    Raises the forecast-overflow alerts the plan calls for (delivered on ``channels`` by the
    alert engine). ``next_collection``: plan the first day from ``req.date`` on that sends a
    truck out (:func:`plans_until_collection`); every day planned is stored, the last
    returned."""
    from backend import plan_store

    for day in planned_days(reg, query, req, now_s=now_s, next_collection=next_collection):
        doc = plan_store.save(reg, day)
    raise_forecast_alerts(reg, doc, channels)
    return doc


#: How far :func:`next_collection_days` looks for a day that sends a truck out [working days].
NEXT_COLLECTION_DAYS = 10


def next_collection_days(date: str) -> list[str]:
    """The days a search for the next collection from ``date`` plans in turn: ``date`` (on a
    weekend, the working day after it: "tomorrow" on a Friday is Monday's collection, not a
    Saturday one), then the following working days. A stream goes out only on a day when one
    of its bins is due (trips), so a quiet day has no routes; the plan of such a day says when
    each stream goes out next, and the search takes the first day that sends a truck."""
    local_midnight_s(date)  # a PlanningError naming ``date`` when it is not one
    first = date if dt.date.fromisoformat(date).weekday() < 5 else next_workdays(date, 1)[0]
    return [first, *next_workdays(first, NEXT_COLLECTION_DAYS)]
