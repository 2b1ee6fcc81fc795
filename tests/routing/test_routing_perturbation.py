"""The ruin-and-recreate step with optional stops, on the compiled kernels directly: a ruin
may start at a skipped optional stop, and its repair puts optional stops wherever they fit,
paying or not, so that a group that pays only as a whole can get a route (the local search
then drops what does not pay). Reaches past the public API (routing.solve's compile step)."""

from __future__ import annotations

import numpy as np

import routing.solve as solve_module
from routing import evaluate as ev
from routing.construct import recreate, ruin
from routing.local_search import local_search
from routing.model import Model
from routing.params import RoutingParams


def _kernel(m: Model, params: RoutingParams | None = None):
    data = m.data()
    inst = solve_module._compile_inst(data, params or RoutingParams())
    sol = solve_module._new_sol(data, 1)
    for r in range(data.num_vehicles):
        ev.refresh_route(inst, sol, r)
    return data, inst, sol


def _far_cluster(m: Model) -> None:
    """Ten optional stops 5 km east, 2 km of prize each: alone each costs ~10 km of
    driving, together ~10 km for 20 km of prizes."""
    for k in range(10):
        m.add_stop(5000 + 10 * k, 0, demand=1, required=False, prize=2.0)


def test_forced_repair_opens_a_route_for_optional_stops_that_pay_only_together():
    m = Model()
    m.add_depot(0, 0)
    _far_cluster(m)
    m.add_vehicle_type(num=3, capacity=20, cost_per_km=1.0)
    _, inst, sol = _kernel(m)
    stops = np.arange(10, dtype=np.int64)

    recreate(inst, sol, stops, 10, 0.0, False)  # each must pay alone: none does
    assert (sol.stop_i[ev.I_ROUTE] == -1).all()

    recreate(inst, sol, stops, 10, 0.0, True)
    local_search(inst, sol, np.arange(10, dtype=np.int64), True)
    routes = set(sol.stop_i[ev.I_ROUTE].tolist())
    assert len(routes) == 1 and -1 not in routes  # one route serves all ten
    assert ev.total_cost(inst, sol) < 10.5  # ~10.1 km, against 20 km of prizes skipped


def test_ruin_starts_at_skipped_optional_stops_too():
    """Required stops near the depot, a skipped optional group far away whose neighbour
    lists (K = 3) hold only each other: only a ruin seeded at one of them removes (and so
    offers to the repair) a far stop."""
    m = Model()
    m.add_depot(0, 0)
    for k in range(5):
        m.add_stop(100 * (k + 1), 0, demand=1)
    _far_cluster(m)
    m.add_vehicle_type(num=3, capacity=20, cost_per_km=1.0)
    data, inst, sol = _kernel(m, RoutingParams(num_neighbours=3))
    recreate(inst, sol, np.arange(5, dtype=np.int64), 5, 0.0, False)
    out = np.empty(data.num_stops, dtype=np.int64)
    seen_far = 0
    for _ in range(40):
        n = ruin(inst, sol, 3, 3, 0.0, out)
        seen_far += int((out[:n] >= 5).any())
        recreate(inst, sol, out, n, 0.0, False)  # the required ones go back
        assert (sol.stop_i[ev.I_ROUTE, :5] >= 0).all()
    assert seen_far > 0
