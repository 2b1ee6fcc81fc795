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
  unloading and does not exceed ``shift_duration_s``.
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

    @property
    def duration_s(self) -> float:
        """Time on shift [s]: return to depot minus departure."""
        return self.end_s - self.start_s

    @property
    def num_reloads(self) -> int:
        """Disposal visits on this route."""
        return len(self.trips) - 1 if self.trips else 0


def simulate_route(data: ProblemData, vehicle: int, visits: Sequence[int]) -> RouteReport:
    """Walk one route (location indices of stops and disposal sites) and report its figures."""
    nd, ns = data.num_depots, data.num_stops
    s_count = data.num_streams
    cap = data.capacity[vehicle]
    scale = data.duration_scale[vehicle]
    violations: list[str] = []
    prev = int(data.start_depot[vehicle])
    t = float(data.shift_start_s[vehicle])
    start = t
    dist = 0.0
    load = np.zeros(s_count)
    trip: list[int] = []
    trips: list[tuple[int, ...]] = []
    trip_loads: list[tuple[float, ...]] = []
    starts: list[float] = []
    reloads = 0
    for loc in visits:
        loc = int(loc)
        dist += data.distance[prev, loc]
        t += data.duration_s[prev, loc] * scale
        if nd <= loc < nd + ns:
            i = loc - nd
            if t < data.tw_early_s[i]:
                t = float(data.tw_early_s[i])
            if t > data.tw_late_s[i] + EPS:
                violations.append(
                    f"vehicle {vehicle}: stop {i} served at {t:.1f} s, after its window closes "
                    f"at {data.tw_late_s[i]:.1f} s"
                )
            starts.append(t)
            t += data.service_s[i]
            load += data.demand[i]
            over = np.flatnonzero(load > cap + EPS)
            for k in over:
                violations.append(
                    f"vehicle {vehicle}: compartment {data.stream_names[k]!r} holds {load[k]:g} "
                    f"> capacity {cap[k]:g} after stop {i}"
                )
            trip.append(i)
        elif loc >= nd + ns and loc < data.num_locations:
            p = loc - nd - ns
            starts.append(t)
            t += data.unload_s[p]
            trips.append(tuple(trip))
            trip_loads.append(tuple(float(x) for x in load))
            load[data.disposal_accepts[p]] = 0.0
            trip = []
            reloads += 1
        else:
            violations.append(f"vehicle {vehicle}: visit {loc} is not a stop or disposal site")
            continue
        prev = loc
    end = int(data.end_depot[vehicle])
    dist += data.distance[prev, end]
    t += data.duration_s[prev, end] * scale
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
