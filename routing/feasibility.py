"""Independent feasibility checker: re-simulates routes from scratch in plain Python.

It shares no code with the solver's compiled evaluator on purpose: every
result the solver returns is verified by this second implementation of the
rules, so a bug in one shows up as a disagreement.

Rules checked, per truck (route = its visits between leaving and returning to its depot):

* every required stop is visited exactly once over all routes; optional ones at most once;
* per compartment (stream), the load since the last unload never exceeds its capacity;
  a disposal visit empties the compartments whose stream the site accepts;
* when the instance has disposal sites, a route ends with every compartment empty;
* disposal visits per route do not exceed ``max_reloads``;
* service at a stop starts within its time window (waiting when early is allowed);
* the shift (return time minus start time) covers driving, waiting, service and
  unloading and does not exceed ``shift_duration_s``;
* the truck leaves in its start window, as late as it can without waiting at its first
  stop and not before the release of its first trip's stops;
* a trip (the visits after leaving the depot or a disposal site, up to the next
  unload) leaves at or after the release date of each of its stops (the truck waits);
* unloading at a disposal site starts within the site's opening hours;
* the driver's break (``break_s``) is taken before the first leg that would end at or
  after ``break_early_s`` and starts by ``break_late_s``;
* the truck is back by ``return_late_s``; it collects at most ``max_volume`` over the
  day, serves at most ``max_stops`` stops, and only stops it is ``allowed`` to serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routing.model import ProblemData

EPS = 1e-6


@dataclass(frozen=True)
class RouteReport:
    """What a route does, computed from the visits alone. Times in [s], distance [m]."""

    vehicle: int
    visits: tuple[int, ...]
    distance: float
    start_s: float
    end_s: float
    service_start_s: tuple[float, ...]
    trips: tuple[tuple[int, ...], ...]
    trip_loads: tuple[tuple[float, ...], ...]
    cost: float
    violations: tuple[str, ...]
    num_reloads: int = 0  #: disposal visits on this route, the one that ends it included

    @property
    def duration_s(self) -> float:
        """Time on shift [s]: return to depot minus departure."""
        return self.end_s - self.start_s


def simulate_route(data: ProblemData, vehicle: int, visits: Sequence[int]) -> RouteReport:
    """Walk one route (location indices of stops and disposal sites) and report its figures."""
    nd, ns = data.num_depots, data.num_stops
    s_count = data.num_streams
    v = vehicle
    cap = data.capacity[v]
    scale = data.duration_scale[v]
    release = data.resolved("release_s")
    allowed = data.resolved("allowed")
    site_open = data.resolved("disposal_tw_early_s")
    site_close = data.resolved("disposal_tw_late_s")
    brk_len = float(data.resolved("break_s")[v])
    brk_open = float(data.resolved("break_early_s")[v])
    brk_close = float(data.resolved("break_late_s")[v])
    violations: list[str] = []
    visits = [int(x) for x in visits]
    depot = int(data.start_depot[vehicle])

    def is_stop(loc: int) -> bool:
        return nd <= loc < nd + ns

    def trip_release(k: int) -> float:
        """Latest release among the stops from visits[k] up to the next disposal visit."""
        rel = 0.0
        for loc in visits[k:]:
            if not is_stop(loc):
                break
            rel = max(rel, float(release[loc - nd]))
        return rel

    first_rel = trip_release(0)
    want = first_rel
    if visits and is_stop(visits[0]):
        i0 = visits[0] - nd
        want = max(want, data.tw_early_s[i0] - data.duration_s[depot, visits[0]] * scale)
    start = float(data.shift_start_s[v])
    latest_start = float(data.resolved("shift_start_late_s")[v])
    if want > start:
        start = min(want, latest_start)
    t = max(start, first_rel)
    took_break = brk_len <= 0.0

    def drive(t: float, leg_s: float) -> float:
        nonlocal took_break
        if not took_break and t + leg_s >= brk_open:
            begin = max(t, brk_open)
            if begin > brk_close + EPS:
                violations.append(f"vehicle {v}: break starts at {begin:.1f} s, after "
                                  f"{brk_close:.1f} s")
            t = begin + brk_len
            took_break = True
        return t + leg_s

    prev = depot
    dist = 0.0
    load = np.zeros(s_count)
    trip: list[int] = []
    trips: list[tuple[int, ...]] = []
    trip_loads: list[tuple[float, ...]] = []
    starts: list[float] = []
    reloads = 0
    volume = 0.0
    served = 0
    for k, loc in enumerate(visits):
        if not nd <= loc < data.num_locations:
            violations.append(f"vehicle {vehicle}: visit {loc} is not a stop or disposal site")
            continue
        dist += data.distance[prev, loc]
        if is_stop(loc):
            i = loc - nd
            t = drive(t, data.duration_s[prev, loc] * scale)
            if t < data.tw_early_s[i]:
                t = float(data.tw_early_s[i])
            if t > data.tw_late_s[i] + EPS:
                violations.append(
                    f"vehicle {vehicle}: stop {i} served at {t:.1f} s, after its window closes "
                    f"at {data.tw_late_s[i]:.1f} s"
                )
            if not allowed[i, v]:
                violations.append(f"vehicle {v}: may not serve stop {i} (compatibility)")
            starts.append(t)
            t += data.service_s[i]
            load += data.demand[i]
            volume += float(data.demand[i].sum())
            served += 1
            over = np.flatnonzero(load > cap + EPS)
            for kk in over:
                violations.append(
                    f"vehicle {vehicle}: compartment {data.stream_names[kk]!r} holds "
                    f"{load[kk]:g} > capacity {cap[kk]:g} after stop {i}"
                )
            trip.append(i)
        else:
            p = loc - nd - ns
            t = drive(t, data.duration_s[prev, loc] * scale)
            if t < site_open[p]:
                t = float(site_open[p])
            if t > site_close[p] + EPS:
                violations.append(f"vehicle {v}: unloads at site {p} at {t:.1f} s, after it "
                                  f"closes at {site_close[p]:.1f} s")
            starts.append(t)
            t += data.unload_s[p]
            trips.append(tuple(trip))
            trip_loads.append(tuple(float(x) for x in load))
            load[data.disposal_accepts[p]] = 0.0
            trip = []
            reloads += 1
            t = max(t, trip_release(k + 1))  # wait for the next trip's jobs
        prev = loc
    end = int(data.end_depot[vehicle])
    dist += data.distance[prev, end]
    t = drive(t, data.duration_s[prev, end] * scale) if visits else t
    if trip or not trips:
        trips.append(tuple(trip))
        trip_loads.append(tuple(float(x) for x in load))
    if data.num_disposal > 0 and (load > EPS).any():
        violations.append(f"vehicle {vehicle}: returns to the depot with load {load.tolist()}")
    if reloads > data.max_reloads[vehicle]:
        violations.append(
            f"vehicle {vehicle}: {reloads} disposal visits > max_reloads "
            f"{data.max_reloads[vehicle]}"
        )
    if t - start > data.shift_duration_s[vehicle] + EPS:
        violations.append(
            f"vehicle {vehicle}: shift lasts {t - start:.1f} s > shift_duration_s "
            f"{data.shift_duration_s[vehicle]:.1f}"
        )
    if visits and t > data.resolved("return_late_s")[v] + EPS:
        violations.append(f"vehicle {v}: returns at {t:.1f} s, after "
                          f"{data.resolved('return_late_s')[v]:.1f} s")
    if volume > data.resolved("max_volume")[v] + EPS:
        violations.append(f"vehicle {v}: collects {volume:g} over the day > max_volume "
                          f"{data.resolved('max_volume')[v]:g}")
    if served > data.resolved("max_stops")[v]:
        violations.append(f"vehicle {v}: serves {served} stops > max_stops "
                          f"{data.resolved('max_stops')[v]}")
    used = len(visits) > 0
    cost = (
        data.distance_cost[vehicle] * dist
        + data.duration_cost[vehicle] * (t - start)
        + (data.fixed_cost[vehicle] if used else 0.0)
    ) if used else 0.0
    return RouteReport(
        vehicle=vehicle,
        visits=tuple(int(x) for x in visits),
        distance=float(dist) if used else 0.0,
        start_s=start,
        end_s=float(t) if used else start,
        service_start_s=tuple(starts),
        trips=tuple(trips) if used else (),
        trip_loads=tuple(trip_loads) if used else (),
        cost=float(cost),
        violations=tuple(violations),
        num_reloads=reloads,
    )


def check_routes(
    data: ProblemData, routes: Sequence[tuple[int, Sequence[int]]]
) -> tuple[list[str], float, list[RouteReport]]:
    """Check a whole plan given as ``(vehicle, visits)`` pairs.

    Returns (violations, total cost including prizes of skipped optional stops, reports).
    An empty violations list means the plan is feasible.
    """
    violations: list[str] = []
    seen = np.zeros(data.num_stops, dtype=np.int64)
    vehicles_used: set[int] = set()
    reports = []
    for vehicle, visits in routes:
        if not 0 <= vehicle < data.num_vehicles:
            violations.append(f"vehicle {vehicle} does not exist (fleet of {data.num_vehicles})")
            continue
        if vehicle in vehicles_used:
            violations.append(f"vehicle {vehicle} is used by more than one route")
        vehicles_used.add(vehicle)
        rep = simulate_route(data, vehicle, visits)
        reports.append(rep)
        violations.extend(rep.violations)
        for trip in rep.trips:
            for i in trip:
                seen[i] += 1
    for i in np.flatnonzero(seen > 1):
        violations.append(f"stop {i} is visited {seen[i]} times")
    for i in np.flatnonzero((seen == 0) & data.required):
        violations.append(f"required stop {i} is not visited")
    skipped_prize = float(data.prize[(seen == 0) & ~data.required].sum())
    total = sum(r.cost for r in reports) + skipped_prize
    return violations, float(total), reports
