"""One day's collection plan for one or more streams: select the bins, route the trucks.

``plan_day`` is the single implementation of "forecast -> select -> route" that the backend's
planning service and the closed-loop evaluator both call. Inputs are plain arrays and two
small dataclasses, so a caller builds them from a registry or from a simulated city alike:

* :class:`Fleet`: depots, disposal sites (accepted streams, unload time), trucks (depot,
  capacity per stream [L], shift, speed, costs);
* :class:`DayBins`: per bin its position, stream, volume, expected level at today's service and
  its overflow probabilities before the next and the next-but-one opportunity (from
  ``routing.forecast.BinForecast.overflow_probability``, or from perfect knowledge).

Required bins (risk above ``SelectParams.max_risk``) are required stops; bins expected at least
``candidate_min_pct`` full are optional stops with a prize; the router solves both together
(capacity per compartment, disposal trips, shifts). The plan reports, for every bin left out,
the overflow risk it accepts, and has passed the routing core's independent checker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routing.feasibility import check_routes
from routing.model import Model, ProblemData
from routing.params import RoutingParams
from routing.plan_params import SelectParams
from routing.select import candidate_bins, prizes, required_bins
from routing.solve import Result, solve
from routing.stop import StoppingCriterion


@dataclass(frozen=True)
class Fleet:
    """Depots, disposal sites and trucks. Coordinates are (lon, lat) [deg].

    depot_lonlat: (D, 2). disposal_lonlat: (P, 2). disposal_accepts: (P, S) bool.
    unload_s: (P,) [s]. truck_depot: (V,) depot index. capacity_l: (V, S) [L] (0 = no
    compartment). shift_s: (V,) [s]. speed_mps: truck speed [m/s]. cost_per_km, cost_per_h,
    fixed_cost: cost of driving, of time on shift and of using a truck [cost units].
    streams: names of the S streams.
    """

    depot_lonlat: NDArray[np.float64]
    disposal_lonlat: NDArray[np.float64]
    disposal_accepts: NDArray[np.bool_]
    unload_s: NDArray[np.float64]
    truck_depot: NDArray[np.int64]
    capacity_l: NDArray[np.float64]
    shift_s: NDArray[np.float64]
    streams: tuple[str, ...]
    speed_mps: float = 20 / 3.6
    cost_per_km: float = 1.5
    cost_per_h: float = 40.0
    fixed_cost: float = 150.0
    detour_factor: float = 1.3


@dataclass(frozen=True)
class DayBins:
    """The bins that could be emptied today (B,), with what the forecast says about them.

    lonlat: (B, 2) [deg]. stream: (B,) index into ``Fleet.streams``. volume_l: (B,) [L].
    level_at_service_pct: expected level at today's service [%]. p_overflow_next: probability
    of overflowing before the next opportunity after today [-]. p_overflow_after: before the
    one after that [-].
    """

    lonlat: NDArray[np.float64]
    stream: NDArray[np.int64]
    volume_l: NDArray[np.float64]
    level_at_service_pct: NDArray[np.float64]
    p_overflow_next: NDArray[np.float64]
    p_overflow_after: NDArray[np.float64]


@dataclass(frozen=True)
class DayPlan:
    """What to empty today and how.

    bins: bin indices emptied, in stop order of ``data`` (one stop per bin).
    required: (B,) bins that had to be emptied. offered: (B,) bins offered as optional stops.
    accepted_risk: (B,) for bins left out, the overflow probability before the next
        opportunity that the plan accepts; NaN for bins in the plan.
    service_start_s: (len(bins),) when each planned bin is emptied, seconds after shift start.
    truck: (len(bins),) the truck (vehicle index) that empties it.
    result, data: the router's result and instance. planning_s: wall time [s].
    """

    bins: NDArray[np.int64]
    required: NDArray[np.bool_]
    offered: NDArray[np.bool_]
    accepted_risk: NDArray[np.float64]
    service_start_s: NDArray[np.float64]
    truck: NDArray[np.int64]
    result: Result | None
    data: ProblemData | None
    planning_s: float
    violations: tuple[str, ...] = ()

    @property
    def distance_m(self) -> float:
        return 0.0 if self.result is None else self.result.distance

    @property
    def truck_hours(self) -> float:
        return 0.0 if self.result is None else sum(r.duration_s for r in self.result.routes) / 3600

    @property
    def trucks_used(self) -> int:
        return 0 if self.result is None else len(self.result.routes)


def _ref_cost(lonlat: np.ndarray, fleet: Fleet, service_s: np.ndarray) -> np.ndarray:
    """Typical cost of reaching each stop: its mean distance to its 3 nearest other stops
    (driven at the fleet's speed) plus its service time, priced per km and per hour."""
    n = len(lonlat)
    if n < 2:
        return np.full(n, fleet.cost_per_km + fleet.cost_per_h / 60)
    lat = np.radians(lonlat[:, 1])
    lon = np.radians(lonlat[:, 0])
    x = 6_371_000 * lon * np.cos(lat.mean())
    y = 6_371_000 * lat
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None]) * fleet.detour_factor
    np.fill_diagonal(d, np.inf)
    k = min(3, n - 1)
    near = np.sort(d, axis=1)[:, :k].mean(axis=1)
    return (near / 1000 * fleet.cost_per_km
            + (near / fleet.speed_mps + service_s) / 3600 * fleet.cost_per_h)


def plan_day(
    bins: DayBins,
    fleet: Fleet,
    stop: StoppingCriterion,
    params: SelectParams | None = None,
    seed: int = 1,
    routing_params: RoutingParams | None = None,
    required: NDArray[np.bool_] | None = None,
    available: NDArray[np.bool_] | None = None,
) -> DayPlan:
    """Select and route one day. ``required`` overrides the risk rule (a fixed schedule or
    an 80 % rule passes its own choice and offers nothing optional). ``available`` (B,):
    the bins a truck can reach today (their stream makes a trip, ``routing.select.opened``);
    the others are left out with their risk (default: all)."""
    t0 = time.perf_counter()
    params = params or SelectParams()
    n = len(bins.stream)
    lvl = np.nan_to_num(np.asarray(bins.level_at_service_pct, float), nan=100.0)
    if required is None:
        req = required_bins(bins.p_overflow_next, params)
        cand = candidate_bins(lvl, req, params)
        if available is not None:
            req &= np.asarray(available, bool)
            cand &= np.asarray(available, bool)
    else:
        req = np.asarray(required, bool)
        cand = np.zeros(n, bool)
    chosen = np.flatnonzero(req | cand)
    risk = np.nan_to_num(np.asarray(bins.p_overflow_next, float), nan=1.0)
    if chosen.size == 0:
        return DayPlan(np.zeros(0, np.int64), req, cand, risk.copy(), np.zeros(0),
                       np.zeros(0, np.int64), None, None, time.perf_counter() - t0)
    service = params.service_s_base + params.service_s_per_m3 * bins.volume_l[chosen] / 1000
    ref = _ref_cost(bins.lonlat[chosen], fleet, service)
    prize = prizes(lvl[chosen], bins.p_overflow_after[chosen], ref, params)
    m = Model(streams=fleet.streams)
    for lon, lat in fleet.depot_lonlat:
        m.add_depot(float(lon), float(lat))
    s_count = len(fleet.streams)
    for j, b in enumerate(chosen):
        demand = np.zeros(s_count)
        demand[int(bins.stream[b])] = bins.volume_l[b] * float(np.clip(lvl[b], 5.0, 130.0)) / 100
        m.add_stop(float(bins.lonlat[b, 0]), float(bins.lonlat[b, 1]), demand,
                   service_s=float(service[j]), required=bool(req[b]),
                   prize=0.0 if req[b] else float(prize[j]), bin_ids=(str(int(b)),))
    for (lon, lat), acc, un in zip(fleet.disposal_lonlat, fleet.disposal_accepts,
                                   fleet.unload_s, strict=True):
        m.add_disposal_site(float(lon), float(lat), [int(k) for k in np.flatnonzero(acc)],
                            float(un))
    for v in range(len(fleet.truck_depot)):
        m.add_vehicle_type(1, fleet.capacity_l[v], int(fleet.truck_depot[v]),
                           shift_duration_s=float(fleet.shift_s[v]), speed_mps=fleet.speed_mps,
                           cost_per_km=fleet.cost_per_km, cost_per_h=fleet.cost_per_h,
                           fixed_cost=fleet.fixed_cost)
    data = m.data(metric="haversine", detour_factor=fleet.detour_factor)
    result = solve(data, stop, seed=seed, params=routing_params)
    # the routing core's independent checker has the last word on every plan
    violations, _, _ = check_routes(data, [(r.vehicle, list(r.visits)) for r in result.routes])
    nd = data.num_depots
    stops, starts, trucks = [], [], []
    for r in result.routes:
        for loc, st in zip(r.visits, r.service_start_s, strict=True):
            if nd <= loc < nd + data.num_stops:
                stops.append(loc - nd)
                starts.append(st)
                trucks.append(r.vehicle)
    planned = chosen[np.asarray(stops, dtype=np.int64)] if stops else np.zeros(0, np.int64)
    accepted = risk.copy()
    accepted[planned] = np.nan
    return DayPlan(planned, req, cand, accepted, np.asarray(starts, float),
                   np.asarray(trucks, np.int64), result, data, time.perf_counter() - t0,
                   tuple(violations))
