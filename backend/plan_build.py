"""A plan for a day from the registry and the latest readings, in the dashboard's plan document.

A stand-in until the planning service (``backend/planning.py``, issue 14: the forecaster,
risk-based selection and prize-collecting routing) lands, so that the demo and the dashboard's
tests have real routes: each bin's fill at the plan day is extrapolated from its current fill
and its recent rate (the median hourly rise over the last two days), with a band that widens
with the horizon; a bin goes on the plan when it is expected over its full threshold or its
chance of overflowing before the day after is above ``risk``. The chosen sites are routed by
the routing core (trucks, compartments, disposal trips, shifts). Bins left out are listed with
their overflow probability.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smartbins import storage
from smartbins.registry import Registry, now_ms

TIMEZONE = zoneinfo.ZoneInfo("Europe/Copenhagen")
DAY_MS = 86_400_000
#: The most a bin's sensor can show: an overfull bin with its lid up [%].
OVERFULL_PCT = 130.0
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class BinOutlook:
    """A bin's fill now [%] at ``at_ms``, and its rate [% per day] (None: unknown)."""

    fill_pct: float
    at_ms: int
    rate_pct_day: float | None


def rates_query(start_ms: int, end_ms: int) -> str:
    """Hourly mean fill per device in [start_ms, end_ms)."""
    return (
        f"SELECT mean(fill) AS fill FROM {storage.MEASUREMENT} "
        f"WHERE time >= {storage.time_ms_literal('start_ms', start_ms)} "
        f"AND time < {storage.time_ms_literal('end_ms', end_ms)} "
        f"GROUP BY time(3600s), {storage.DEVICE_TAG} fill(none)"
    )


def outlooks(series: list[dict[str, Any]], device_bins: Mapping[str, str]) -> dict[str, BinOutlook]:
    """Per bin: the newest hourly fill and the median positive hourly rise x 24 (emptyings and
    noise below zero are left out) from :func:`rates_query`'s answer."""
    out: dict[str, BinOutlook] = {}
    for s in series:
        bin_id = device_bins.get(s["tags"][storage.DEVICE_TAG])
        vals = [(int(v[0]), float(v[1])) for v in s["values"] if v[1] is not None]
        if bin_id is None or not vals:
            continue
        f = np.array([v for _, v in vals])
        rises = np.diff(f)
        rises = rises[rises > 0]
        rate = float(min(100.0, np.median(rises) * 24)) if rises.size >= 3 else None
        out[bin_id] = BinOutlook(float(f[-1]), vals[-1][0], rate)
    return out


def _overflow_probability(expected: float, sd: float) -> float:
    return 0.5 * math.erfc((100.0 - expected) / (sd * math.sqrt(2)))


def _local_midnight_ms(date: str) -> int:
    d = dt.date.fromisoformat(date)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=TIMEZONE).timestamp() * 1000)


def _rows(reg: Registry, sql: str, args: tuple[object, ...]) -> list[Any]:
    return reg.db.execute(sql, args).fetchall()


def build_plan(
    reg: Registry,
    municipality_id: str,
    date: str,
    bins_now: Mapping[str, BinOutlook],
    *,
    risk: float = 0.2,
    iterations: int = 200,
    seed: int = 1,
    created_ms: int | None = None,
) -> dict[str, Any]:
    """The plan document (docs/dashboard.md) for ``date`` (YYYY-MM-DD, local time)."""
    from routing.model import Model
    from routing.solve import solve
    from routing.stop import MaxIterations

    day0 = _local_midnight_ms(date)
    bins = _rows(
        reg,
        """SELECT b.id, b.site_id, b.stream, b.volume_l, s.lat, s.lon, s.name,
                  COALESCE(b.full_pct, 90.0), COALESCE(s.address, '')
           FROM bins b JOIN sites s ON s.id = b.site_id
           WHERE s.municipality_id = ? AND b.retired_ms IS NULL ORDER BY b.id""",
        (municipality_id,),
    )
    rates = [o.rate_pct_day for o in bins_now.values() if o.rate_pct_day is not None]
    typical = float(np.median(rates)) if rates else 10.0
    forecast: dict[str, dict[str, Any]] = {}
    chosen: dict[tuple[str, str], list[Any]] = defaultdict(list)
    passed: list[dict[str, Any]] = []
    at = day0 + 12 * HOUR_MS
    for b in bins:
        o = bins_now.get(b[0])
        if o is None:
            continue
        rate = o.rate_pct_day if o.rate_pct_day is not None else typical
        days = max(0.0, (at - o.at_ms) / DAY_MS)
        # the level a bin can show is bounded (overfull lids, ~130 %); past it the bin overflows
        # (risk 1), and a sensor that jumps (ghost echo, stuck) must not predict absurd levels
        unbounded = o.fill_pct + rate * days
        expected = min(OVERFULL_PCT, unbounded)
        sd = 4.0 + 0.3 * rate * math.sqrt(days + 1.0)
        p_next = _overflow_probability(min(1000.0, unbounded + rate), sd)  # by the next visit
        forecast[b[0]] = {
            "fill_pct": round(expected, 1),
            "lo_pct": round(max(0.0, expected - 1.64 * sd), 1),
            "hi_pct": round(min(OVERFULL_PCT, expected + 1.64 * sd), 1),
            "overflow_probability": round(p_next, 4),
            "at_ms": at,
        }
        row = {"bin": b, "expected": expected, "p": p_next}
        if expected >= b[7] or p_next >= risk:
            chosen[(b[1], b[2])].append(row)  # a stop per site and stream: one truck each
        elif expected >= 30:
            passed.append(row)

    depots = _rows(
        reg, "SELECT id, lat, lon, name FROM depots WHERE municipality_id = ? ORDER BY id",
        (municipality_id,),
    )
    disposal = _rows(
        reg,
        "SELECT id, lat, lon, name FROM disposal_sites WHERE municipality_id = ? ORDER BY id",
        (municipality_id,),
    )
    accepts = defaultdict(set)
    for site_id, stream in _rows(
        reg,
        """SELECT d.disposal_site_id, d.stream FROM disposal_streams d
           JOIN disposal_sites s ON s.id = d.disposal_site_id WHERE s.municipality_id = ?""",
        (municipality_id,),
    ):
        accepts[site_id].add(stream)
    trucks = _rows(
        reg,
        """SELECT t.id, t.name, t.depot_id, t.shift_s FROM trucks t JOIN depots d
           ON d.id = t.depot_id WHERE d.municipality_id = ? ORDER BY t.id""",
        (municipality_id,),
    )
    compartments = defaultdict(dict)
    for truck_id, stream, cap in _rows(
        reg, "SELECT truck_id, stream, capacity_l FROM truck_compartments ORDER BY idx", ()
    ):
        compartments[truck_id][stream] = compartments[truck_id].get(stream, 0.0) + cap

    carried = {s for c in compartments.values() for s in c}
    unloadable = {s for a in accepts.values() for s in a}
    streams = sorted({r["bin"][2] for rows in chosen.values() for r in rows} & carried & unloadable)
    sidx = {s: i for i, s in enumerate(streams)}
    skipped = [
        {**_skip(r), "reason": "no truck or disposal site"}
        for rows in chosen.values() for r in rows if r["bin"][2] not in sidx
    ]
    plan: dict[str, Any] = {
        "date": date, "stream": None, "created_ms": created_ms or now_ms(),
        "source": "backend.plan_build (stand-in for the planning service)",
        "trucks": [], "skipped": [], "forecast": forecast,
    }
    sites = sorted(((k, rows) for k, rows in chosen.items() if k[1] in sidx), key=lambda kv: kv[0])
    usable = [t for t in trucks if any(s in sidx for s in compartments[t[0]])]
    if not sites or not usable or not depots or not disposal:
        plan["skipped"] = [_skip(r) for rows in chosen.values() for r in rows] + [
            _skip(r) for r in passed
        ]
        return plan

    m = Model(streams=tuple(streams))
    depot_idx = {d[0]: m.add_depot(d[2], d[1]) for d in depots}
    for _site, rows in sites:
        demand = {sidx[r["bin"][2]]: r["bin"][3] * max(0.0, r["expected"]) / 100
                  for r in rows}
        m.add_stop(rows[0]["bin"][5], rows[0]["bin"][4], demand, service_s=60 + 30 * len(rows),
                   bin_ids=[r["bin"][0] for r in rows])
    for d in disposal:
        m.add_disposal_site(d[2], d[1], [sidx[s] for s in accepts[d[0]] if s in sidx],
                            unload_s=900)
    for t in usable:
        cap = {sidx[s]: c for s, c in compartments[t[0]].items() if s in sidx}
        m.add_vehicle_type(num=1, capacity=cap, start_depot=depot_idx[t[2]],
                           shift_start_s=6 * 3600, shift_duration_s=t[3], speed_mps=20 / 3.6,
                           cost_per_km=1.0, cost_per_h=30.0)
    data = m.data(metric="haversine")
    result = solve(data, MaxIterations(iterations), seed=seed)

    plan["violations"] = list(result.violations)  # empty: the routing core's checker agrees
    nd, ns = len(depots), len(sites)
    for route in result.routes:
        t = usable[route.vehicle]
        stops: list[dict[str, Any]] = []
        load: dict[str, float] = defaultdict(float)
        for k, loc in enumerate(route.visits):
            eta = day0 + int(route.service_start_s[k] * 1000)
            if nd <= loc < nd + ns:
                rows = sites[loc - nd][1]
                b0 = rows[0]["bin"]
                for r in rows:
                    load[r["bin"][2]] += r["bin"][3] * max(0.0, r["expected"]) / 100
                stops.append({
                    "index": len(stops), "kind": "bin", "site_id": b0[1], "name": b0[6],
                    "address": b0[8] or b0[6], "lat": b0[4], "lon": b0[5], "eta_ms": eta,
                    "bins": [{"bin_id": r["bin"][0], "stream": r["bin"][2],
                              "volume_l": r["bin"][3], "expected_fill_pct": round(r["expected"], 1)}
                             for r in rows],
                    "done_ms": None, "done_by": None,
                })
            elif loc >= nd + ns:
                d = disposal[loc - nd - ns]
                stops.append({
                    "index": len(stops), "kind": "disposal", "disposal_site_id": d[0],
                    "name": d[3], "address": d[3], "lat": d[1], "lon": d[2], "eta_ms": eta,
                    "streams": sorted(accepts[d[0]] & set(compartments[t[0]])),
                })
        plan["trucks"].append({
            "truck_id": t[0], "name": t[1] or t[0], "depot_id": t[2],
            "start_ms": day0 + int(route.start_s * 1000), "end_ms": day0 + int(route.end_s * 1000),
            "km": round(route.distance / 1000, 2), "duration_s": round(route.duration_s),
            "load_l": {s: round(v) for s, v in load.items()},
            "capacity_l": dict(compartments[t[0]]),
            "disposal_trips": sum(1 for s in stops if s["kind"] == "disposal"),
            "stops": stops,
        })
    unrouted = {nd + i for i in result.unvisited}
    plan["skipped"] = (
        skipped
        + [_skip(r) for i, (_s, rows) in enumerate(sites) if nd + i in unrouted for r in rows]
        + [_skip(r) for r in passed]
    )
    plan["skipped"].sort(key=lambda s: -s["overflow_probability"])
    return plan


def _skip(r: dict[str, Any]) -> dict[str, Any]:
    b = r["bin"]
    return {
        "bin_id": b[0], "site_id": b[1], "stream": b[2], "lat": b[4], "lon": b[5],
        "address": b[8] or b[6], "expected_fill_pct": round(r["expected"], 1),
        "overflow_probability": round(r["p"], 4),
    }
