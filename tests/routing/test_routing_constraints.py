"""The waste-collection constraints of round two, each in the model, the solver and the
checker: start windows, release dates, site opening hours, breaks, day volume, max stops,
stop-vehicle compatibility; and optional stops kept exactly when they pay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.feasibility import check_routes, simulate_route
from routing.model import Model
from routing.params import RoutingParams
from routing.solve import solve
from routing.stop import MaxIterations


def _line_city(**vehicle) -> Model:
    """Depot at 0, stops at 1 km and 2 km east; 1 m/s so metres are seconds."""
    m = Model()
    m.add_depot(0, 0)
    m.add_stop(1000, 0, demand=1, service_s=100, tw_early_s=5000, tw_late_s=6000)
    m.add_stop(2000, 0, demand=1, service_s=100)
    m.add_vehicle_type(num=1, capacity=10, speed_mps=1.0, **vehicle)
    return m


def test_waiting_before_the_first_stop_does_not_count_with_a_start_window():
    fixed = _line_city(shift_duration_s=4500).data()
    window = _line_city(shift_duration_s=4500, shift_start_late_s=10_000).data()
    plan = [(0, [1, 2])]
    v_fixed, _, _ = check_routes(fixed, plan)
    v_window, _, reps = check_routes(window, plan)
    assert any("shift lasts" in v for v in v_fixed)  # left at 0, waited 4000 s
    assert v_window == []
    assert reps[0].start_s == pytest.approx(4000.0)  # leaves to arrive at 5000 exactly
    assert reps[0].duration_s == pytest.approx(1000 + 100 + 1000 + 100 + 2000)
    assert solve(window, MaxIterations(20), seed=1).is_feasible


def test_start_window_caps_the_departure():
    data = _line_city(shift_duration_s=3000, shift_start_late_s=1000).data()
    rep = simulate_route(data, 0, [1, 2])
    assert rep.start_s == pytest.approx(1000.0)
    assert any("shift lasts" in v for v in rep.violations)


def test_latest_return():
    data = _line_city(return_late_s=5000).data()
    assert any("returns at" in v for v in simulate_route(data, 0, [1, 2]).violations)
    assert simulate_route(data, 0, [2]).violations == ()


def _multi_trip(release: float, site_open: float = 0.0, site_close: float = np.inf) -> Model:
    m = Model()
    m.add_depot(0, 0)
    m.add_stop(100, 0, demand=5, release_s=0.0)
    m.add_stop(200, 0, demand=5, release_s=release)
    m.add_disposal_site(0, 10, accepts=[0], tw_early_s=site_open, tw_late_s=site_close)
    m.add_vehicle_type(num=1, capacity=5, speed_mps=1.0)
    return m


def test_release_date_makes_the_trip_wait():
    data = _multi_trip(release=1000).data()
    # stop 0, unload, stop 1 (released at 1000), final unload
    rep = simulate_route(data, 0, [1, 3, 2, 3])
    assert rep.violations == ()
    assert rep.service_start_s[2] == pytest.approx(1000 + np.hypot(200, 10))  # waited
    # released stops first: the first trip must wait for its latest job
    rep2 = simulate_route(data, 0, [2, 3, 1, 3])
    assert rep2.start_s == 0.0 and rep2.service_start_s[0] == pytest.approx(1000 + 200)
    res = solve(data, MaxIterations(30), seed=1)
    assert res.is_feasible
    assert [rep.visits for rep in res.routes] == [(1, 3, 2, 3)]
    assert res.cost == pytest.approx(rep.cost)


def test_release_date_with_a_deadline_is_infeasible_when_it_cannot_be_met():
    m = _multi_trip(release=1000)
    m.stops[1].tw_late_s = 500.0
    data = m.data()
    assert any("window closes" in v for v in simulate_route(data, 0, [1, 3, 2, 3]).violations)
    assert not solve(data, MaxIterations(10), seed=1).is_feasible


def test_disposal_site_opening_hours():
    data = _multi_trip(release=0, site_open=2000).data()
    rep = simulate_route(data, 0, [1, 3, 2, 3])
    assert rep.violations == ()
    assert rep.service_start_s[1] == pytest.approx(2000.0)  # waited for the site to open
    closed = _multi_trip(release=0, site_close=50).data()
    assert any("closes" in v for v in simulate_route(closed, 0, [1, 3, 2, 3]).violations)
    assert not solve(closed, MaxIterations(10), seed=1).is_feasible


def test_break_is_placed_in_its_window():
    data = _line_city(break_s=600, break_early_s=500, break_late_s=900).data()
    rep = simulate_route(data, 0, [2, 1])
    # leg depot->2 km would end at 2000 >= 500: the break comes first, at 500 (after waiting)
    assert rep.violations == ()
    assert rep.start_s == pytest.approx(0.0)
    assert rep.service_start_s[0] == pytest.approx(500 + 600 + 2000)
    late = _line_city(break_s=600, break_early_s=2500, break_late_s=2600).data()
    # depot->1 km (1000), wait to 5000, serve to 5100, leg to 2 km would end 6100: break at
    # 5100 > 2600: the break window is missed
    bad = simulate_route(late, 0, [1, 2])
    assert any("break starts" in v for v in bad.violations)
    res = solve(data, MaxIterations(20), seed=1)
    assert res.is_feasible


def test_day_volume_and_max_stops_per_truck():
    m = Model()
    m.add_depot(0, 0)
    for x in (100, 200, 300):
        m.add_stop(x, 0, demand=4)
    m.add_disposal_site(0, 0, accepts=[0])
    m.add_vehicle_type(num=2, capacity=4, max_volume=8, max_stops=2)
    data = m.data()
    rep = simulate_route(data, 0, [1, 4, 2, 4, 3, 4])
    assert any("max_volume" in v for v in rep.violations)
    assert any("max_stops" in v for v in rep.violations)
    res = solve(data, MaxIterations(30), seed=1)
    assert res.is_feasible and len(res.routes) == 2


def test_stop_vehicle_compatibility():
    m = Model()
    m.add_depot(0, 0)
    small = 1  # type index of the small truck, added second
    m.add_stop(100, 0, demand=1, vehicle_types=[small])  # narrow street
    m.add_stop(100, 50, demand=1)
    m.add_vehicle_type(num=1, capacity=10, cost_per_km=1.0)
    m.add_vehicle_type(num=1, capacity=10, cost_per_km=3.0)
    data = m.data()
    assert data.allowed.tolist() == [[False, True], [True, True]]
    assert any("compatibility" in v for v in check_routes(data, [(0, [1, 2])])[0])
    res = solve(data, MaxIterations(30), seed=1)
    assert res.is_feasible
    assert [r.vehicle for r in res.routes if 1 in r.visits] == [1]
    with pytest.raises(ValueError, match="vehicle type 5"):
        m.add_stop(0, 0, demand=1, vehicle_types=[5])
        m.data()


def test_optional_stop_kept_exactly_when_its_prize_beats_its_detour():
    """Stop 1 lies 100 m off the depot-A-depot line: detour 2*sqrt(500^2+100^2)-1000 m."""
    detour = 2 * np.hypot(500, 100) - 1000  # ~19.8 m at 1 cost per m

    def plan(prize: float):
        m = Model()
        m.add_depot(0, 0)
        m.add_stop(1000, 0, demand=1)
        m.add_stop(500, 100, demand=1, required=False, prize=prize)
        m.add_vehicle_type(num=2, capacity=10, cost_per_km=1000.0)
        return solve(m.data(), MaxIterations(30), seed=3)

    kept = plan(detour + 1.0)
    skipped = plan(detour - 1.0)
    assert kept.unvisited == () and skipped.unvisited == (1,)
    assert kept.cost == pytest.approx(2000 + detour - 0.0, abs=1e-6)
    assert skipped.cost == pytest.approx(2000 + detour - 1.0, abs=1e-6)


def test_cluster_of_optional_stops_that_pays_only_as_a_whole_gets_a_route():
    """Ten optional stops 5 km out: each alone costs ~10 km, prize 2 km each; together
    they pay (10 km + a little for 20 km of prizes)."""
    m = Model()
    m.add_depot(0, 0)
    for k in range(10):
        m.add_stop(5000 + 10 * k, 0, demand=1, required=False, prize=2.0)
    m.add_stop(-5000, 0, demand=1, required=False, prize=2.0)  # alone: never pays
    m.add_vehicle_type(num=3, capacity=20, cost_per_km=1.0)
    res = solve(m.data(), MaxIterations(40), seed=1)
    assert res.is_feasible
    assert res.unvisited == (10,)


def test_optional_stops_inserted_by_the_search_after_ruin():
    """Optional stops along a corridor are all worth taking; the result keeps them all."""
    m = Model()
    m.add_depot(0, 0)
    m.add_stop(10_000, 0, demand=1)
    rng = np.random.default_rng(0)
    for x in rng.uniform(500, 9500, 30):
        m.add_stop(float(x), float(rng.uniform(-20, 20)), demand=1, required=False, prize=1.0)
    m.add_vehicle_type(num=2, capacity=100, cost_per_km=1.0)
    res = solve(m.data(), MaxIterations(60), seed=2)
    assert res.is_feasible and res.unvisited == ()


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 14))
def test_generated_instances_with_the_new_constraints_stay_feasible(seed, n):
    """Generous instances (each constraint binding, none impossible): plans are feasible,
    and the checker's cost equals the sum of the route costs plus skipped prizes."""
    rng = np.random.default_rng(seed)
    m = Model(streams=("residual", "glass"))
    m.add_depot(0, 0)
    for i in range(n):
        x, y = rng.uniform(-3000, 3000, 2)
        m.add_stop(x, y, demand=[float(rng.integers(1, 4)), float(rng.integers(0, 2))],
                   service_s=60, tw_early_s=float(rng.choice([0, 3600])),
                   tw_late_s=float(rng.choice([np.inf, 6 * 3600])),
                   release_s=float(rng.choice([0, 0, 1800])),
                   required=bool(i % 4), prize=float(rng.uniform(0, 5)),
                   vehicle_types=None if i % 3 else [0])
    m.add_disposal_site(2000, 0, accepts=[0], unload_s=300, tw_early_s=600)
    m.add_disposal_site(-2000, 0, accepts=[1], unload_s=300)
    m.add_vehicle_type(num=2, capacity=[8.0, 3.0], shift_duration_s=5 * 3600,
                       shift_start_late_s=3600, speed_mps=5.0, cost_per_km=1.0,
                       break_s=900, break_early_s=3 * 3600, break_late_s=4 * 3600,
                       max_volume=60, max_stops=20)
    m.add_vehicle_type(num=2, capacity=[6.0, 3.0], shift_duration_s=5 * 3600,
                       speed_mps=5.0, cost_per_km=1.5, return_late_s=8 * 3600)
    data = m.data()
    res = solve(data, MaxIterations(30), seed=seed, params=RoutingParams(num_neighbours=8))
    assert res.violations == ()
    skipped = sum(data.prize[i] for i in res.unvisited)
    assert res.cost == pytest.approx(sum(r.cost for r in res.routes) + skipped)
    visited = sorted(i for r in res.routes for t in r.trips for i in t)
    assert sorted(visited + list(res.unvisited)) == list(range(n))


def test_params_from_dict_checks_types_and_keys():
    assert RoutingParams.from_dict({"route_elimination": 0, "restart_after": 100}) \
        .restart_after == 100
    with pytest.raises(ValueError, match="unknown key 'restrat_after'"):
        RoutingParams.from_dict({"restrat_after": 100})
    with pytest.raises(ValueError, match=r"restart_after.*int"):
        RoutingParams.from_dict({"restart_after": 1.5})
    with pytest.raises(ValueError, match=r"swap_star.*bool"):
        RoutingParams.from_dict({"swap_star": 1})
    with pytest.raises(ValueError, match="target_feasible"):
        RoutingParams(target_feasible=1.5)


def test_the_search_unloads_early_when_passing_a_site():
    """Unloading only when full costs 8 km (A, B, back to the site before C); unloading
    right after A, at the site on the way, costs 6 km."""
    m = Model()
    m.add_depot(0, 0)
    m.add_stop(900, 0, demand=6)  # A
    m.add_stop(2000, 0, demand=3)  # B
    m.add_stop(3000, 0, demand=3)  # C
    m.add_disposal_site(1000, 0, accepts=[0])
    m.add_disposal_site(5000, 5000, accepts=[0])  # far: never the right choice
    m.add_vehicle_type(num=1, capacity=10, cost_per_km=1000.0)
    data = m.data()
    when_full = simulate_route(data, 0, [1, 2, 4, 3, 4])
    assert when_full.violations == () and when_full.cost == pytest.approx(8000.0)
    res = solve(data, MaxIterations(20), seed=1)
    assert res.is_feasible
    assert res.cost == pytest.approx(6000.0)
    assert res.routes[0].visits == (1, 4, 2, 3, 4)


def test_a_binding_day_limit_leaves_the_plain_cvrp_fast_path():
    def data(**vehicle):
        m = Model()
        m.add_depot(0, 0)
        for x in (100, 200, 300):
            m.add_stop(x, 0, demand=1)
        m.add_vehicle_type(num=3, capacity=10, **vehicle)
        return m.data()

    assert data().is_plain_cvrp
    assert data(max_stops=100).is_plain_cvrp  # never binding
    limited = data(max_stops=1)
    assert not limited.is_plain_cvrp
    res = solve(limited, MaxIterations(10), seed=1)
    assert res.is_feasible and len(res.routes) == 3
