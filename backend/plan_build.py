"""A plan for a day from the registry and the forecasts, in the dashboard's plan document.

A stand-in until the planning service (``backend/planning.py``, issue 14: risk-based selection
and prize-collecting routing, ``routing.plan.plan_day``) serves plans, so that the demo and the
dashboard's tests have real routes. Each bin's level at noon of the plan day, its band and its
chance of overflowing before the day after come from the forecaster (``backend.forecasts``,
``routing.forecast``); a bin goes on the plan when it is expected over its full threshold or
that chance is ``risk`` or more. A stop per site and stream is routed by the routing core
(trucks and their compartments, disposal trips, shifts). Bins left out are listed with their
overflow probability.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from typing import Any

import numpy as np

from backend.forecasts import CityForecast
from smartbins.registry import Registry, now_ms

TIMEZONE = zoneinfo.ZoneInfo("Europe/Copenhagen")
DAY_MS = 86_400_000
#: The most a bin's sensor can show: an overfull bin with its lid up [%].
OVERFULL_PCT = 130.0
HOUR_MS = 3_600_000


def _local_midnight_ms(date: str) -> int:
    d = dt.date.fromisoformat(date)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=TIMEZONE).timestamp() * 1000)


def _rows(reg: Registry, sql: str, args: tuple[object, ...]) -> list[Any]:
    return reg.db.execute(sql, args).fetchall()


def build_plan(
    reg: Registry,
    municipality_id: str,
    date: str,
    city: CityForecast,
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
    forecast: dict[str, dict[str, Any]] = {}
    chosen: dict[tuple[str, str], list[Any]] = defaultdict(list)
    passed: list[dict[str, Any]] = []
    at = day0 + 12 * HOUR_MS
    fc = city.forecast
    at_s = at / 1000
    # the level a bin can show is bounded (overfull lids, ~130 %); past it the bin overflows
    mid = np.minimum(fc.expected_level_pct(at_s), OVERFULL_PCT)
    lo, hi = fc.level_band_pct(at_s)
    p_next = fc.overflow_probability(at_s + DAY_MS / 1000)  # before the next day's visit
    pos = {bin_id: i for i, bin_id in enumerate(city.bin_ids)}
    for b in bins:
        i = pos.get(b[0])
        if i is None:
            continue
        if not np.isfinite(mid[i]):
            continue  # no reading ever: nothing to plan on
        expected, p = float(mid[i]), float(p_next[i])
        forecast[b[0]] = {
            "fill_pct": round(expected, 1),
            "lo_pct": round(float(np.clip(lo[i], 0.0, OVERFULL_PCT)), 1),
            "hi_pct": round(float(np.clip(hi[i], 0.0, OVERFULL_PCT)), 1),
            "overflow_probability": round(p, 4),
            "at_ms": at,
        }
        row = {"bin": b, "expected": expected, "p": p}
        if expected >= b[7] or p >= risk:
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
