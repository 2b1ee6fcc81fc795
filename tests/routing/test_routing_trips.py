"""Trips on the compiled kernels directly (reaches past the public API: routing.solve's
compile step).

* Whole trips as route elements: a trip (the stops between two unloads) can move to
  another place in its truck's day or trade places with a trip of another truck in one
  move, with its unload. On Kim's 102-stop instance this is what takes a small trip from
  the start of one truck's day to the end of the other's (PyVRP's plan); stop by stop
  the search has to pass through worse plans.
* A day with a fixed number of trips (``max_reloads``, counting the final unload): once
  the trips are used up the truck goes on loaded, and what it carries over its
  compartment is priced as overload. Each unit moved off the truck then lowers the
  penalty, which is the gradient a search needs to pack trips to the last unit (Kim's
  444-stop instance: ten trucks must fill twenty trips to 99.8 %)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import routing.solve as solve_module
from routing import evaluate as ev
from routing.feasibility import check_routes
from routing.local_search import local_search, local_search_steps
from routing.model import Model
from routing.params import RoutingParams

# four groups of two stops, each group a full load (5 + 5 = capacity 10); two trucks of
# two trips each; one disposal site in the south-west corner
GROUPS = ((3000, -4500), (-3500, -3000), (-3500, 3000), (3500, 500))
SITE = (-5000, -4500)


def _kernel():
    m = Model()
    m.add_depot(0, 0)
    for x, y in GROUPS:
        for dy in (-100, 100):
            m.add_stop(x, y + dy, demand=5)
    m.add_disposal_site(*SITE, accepts=[0])
    m.add_vehicle_type(num=2, capacity=10, max_reloads=2)
    data = m.data()
    # one neighbour: the stop-level moves only ever pair the two stops of a group
    inst = solve_module._compile_inst(data, RoutingParams(num_neighbours=1))
    sol = solve_module._new_sol(data, 1)
    return data, inst, sol


def _set_plan(inst, sol, routes: list[list[int]]) -> float:
    for r, stops in enumerate(routes):
        sol.seq[r, : len(stops)] = stops
        sol.route_i[ev.R_LEN, r] = len(stops)
        sol.stop_i[ev.I_UNLOAD, stops] = -1
    ev.refresh_all(inst, sol)
    return ev.total_cost(inst, sol)


def _best_arrangement(inst, sol) -> float:
    """Brute force: every order of the four groups over the two days, both directions
    inside each group."""
    best = np.inf
    for perm in itertools.permutations(range(4)):
        for flip in itertools.product((0, 1), repeat=4):
            g = [[2 * k + f, 2 * k + 1 - f] for k, f in zip(perm, flip, strict=True)]
            best = min(best, _set_plan(inst, sol, [g[0] + g[1], g[2] + g[3]]))
    return best


def _start(inst, sol) -> float:
    return _set_plan(inst, sol, [[0, 1, 2, 3], [4, 5, 6, 7]])


def test_stop_moves_alone_stay_above_the_best_arrangement_of_trips():
    _, inst, sol = _kernel()
    best = _best_arrangement(inst, sol)
    start = _start(inst, sol)
    state = np.zeros(3, dtype=np.int64)
    local_search_steps(inst, sol, np.arange(8, dtype=np.int64), True, state, 1 << 40)
    assert ev.total_cost(inst, sol) > best + 1e-6
    assert ev.total_cost(inst, sol) <= start


def test_trip_moves_reach_the_best_arrangement_and_the_checker_agrees():
    data, inst, sol = _kernel()
    best = _best_arrangement(inst, sol)
    _start(inst, sol)
    local_search(inst, sol, np.arange(8, dtype=np.int64), True)
    assert abs(ev.total_cost(inst, sol) - best) < 1e-9
    plan = [(r, solve_module._visits(inst, sol, r, np.zeros(64, dtype=np.int64)))
            for r in range(2)]
    violations, cost, _ = check_routes(data, plan)
    assert violations == []
    assert abs(cost - best) < 1e-6
    site = data.num_depots + data.num_stops
    assert [vis.count(site) for _, vis in plan] == [2, 2]  # two full trips per truck


def _two_trip_truck(demands: list[float]):
    """Stops 100 m apart east of the depot, a site at the depot, capacity 10, two trips."""
    m = Model()
    m.add_depot(0, 0)
    for k, d in enumerate(demands):
        m.add_stop(100 * (k + 1), 0, demand=d)
    m.add_disposal_site(0, 0, accepts=[0], unload_s=60)
    m.add_vehicle_type(num=1, capacity=10, max_reloads=2)
    data = m.data()
    inst = solve_module._compile_inst(data, RoutingParams())
    sol = solve_module._new_sol(data, 1)
    sol.seq[0, : len(demands)] = np.arange(len(demands))
    sol.route_i[ev.R_LEN, 0] = len(demands)
    ev.refresh_route(inst, sol, 0)
    return data, inst, sol


def _visits(inst, sol) -> list[int]:
    ev.set_seg(sol.segs, 0, 0, 0, sol.route_i[ev.R_LEN, 0] - 1, 0)
    out = np.zeros(64, dtype=np.int64)
    _, n = ev.walk(inst, sol, np.int64(0), np.int64(1), np.int64(0), out)
    return [int(x) for x in out[:n]]


@pytest.mark.parametrize(("demands", "over"), [([6, 6, 6], 2.0), ([6, 6, 7], 3.0),
                                                ([6, 6, 6, 6], 8.0)])
def test_a_third_trip_is_not_driven_and_the_load_over_two_is_overload(demands, over):
    data, inst, sol = _two_trip_truck(demands)
    # the day's load over what two trips can carry, priced per unit as overload
    assert sol.rpen[0, 0] == pytest.approx(inst.c[ev.C_PENL] * over)
    assert sol.rpen[1, 0] == 0.0  # not a time penalty for an extra trip
    visits = _visits(inst, sol)
    site = data.num_depots + data.num_stops
    assert visits.count(site) == 2  # one unload between the trips, the day's last one
    violations, _, _ = check_routes(data, [(0, visits)])
    assert any("> capacity" in v for v in violations)
    assert not any("max_reloads" in v for v in violations)


def test_what_fits_in_two_trips_is_feasible():
    data, inst, sol = _two_trip_truck([6, 4, 6, 4])
    assert sol.rpen[0, 0] == 0.0 and sol.rpen[1, 0] == 0.0
    violations, _, _ = check_routes(data, [(0, _visits(inst, sol))])
    assert violations == []
