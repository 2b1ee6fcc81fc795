"""The independent checker (routing.feasibility) held to account, rule by rule.

Each rule gets a plan that breaks it and nothing else, and the same plan mended: the first
must be reported (by a message naming the rule), the second must pass, so dropping a rule from
the checker fails here. Figures are checked by hand on instances on a line, where distances
and times can be read off: speed 1 m/s (a metre takes a second), 1 cost unit per metre.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_check import kernel_cost

from routing.feasibility import check_routes, simulate_route
from routing.model import Model, ProblemData
from routing.solve import solve
from routing.stop import MaxIterations

INF = float("inf")


def line(
    *,
    stops: tuple[float, ...] = (100.0, 200.0, -100.0),
    demand: float | list[float] = 1.0,
    streams: tuple[str, ...] = ("waste",),
    sites: tuple[tuple[float, tuple[int, ...]], ...] = (),
    windows: dict[int, tuple[float, float]] | None = None,
    optional: dict[int, float] | None = None,
    service_s: float = 0.0,
    unload_s: float = 0.0,
    num: int = 2,
    **vehicle: object,
) -> ProblemData:
    """Depot at x = 0, stops at ``stops`` [m] on the x axis, disposal sites likewise."""
    m = Model(streams=streams)
    m.add_depot(0, 0)
    windows = windows or {}
    optional = optional or {}
    for i, x in enumerate(stops):
        early, late = windows.get(i, (0.0, INF))
        m.add_stop(x, 0, demand=demand, service_s=service_s, tw_early_s=early, tw_late_s=late,
                   required=i not in optional, prize=optional.get(i, 0.0))
    for x, accepts in sites:
        m.add_disposal_site(x, 0, accepts=list(accepts), unload_s=unload_s)
    kw: dict[str, object] = {"capacity": 10.0, "speed_mps": 1.0, "cost_per_km": 1000.0}
    kw.update(vehicle)
    m.add_vehicle_type(num=num, **kw)  # type: ignore[arg-type]
    return m.data(detour_factor=1.0)


def stops(data: ProblemData, *idx: int) -> list[int]:
    return [data.stop_location(i) for i in idx]


def only(violations: list[str], words: str) -> None:
    """Exactly one violation, and it names its rule."""
    assert len(violations) == 1, violations
    assert words in violations[0], violations


# ---------------------------------------------------------------- the plan as a whole


def test_a_feasible_plan_has_no_violations_and_its_cost_by_hand() -> None:
    data = line()
    violations, cost, reports = check_routes(data, [(0, stops(data, 0, 1)), (1, stops(data, 2))])
    assert violations == []
    assert cost == pytest.approx(400 + 200)  # 0 -> 100 -> 200 -> 0, and 0 -> -100 -> 0
    assert [r.distance for r in reports] == pytest.approx([400, 200])
    assert [r.duration_s for r in reports] == pytest.approx([400, 200])


def test_an_unknown_vehicle_is_reported() -> None:
    data = line()
    plan = [(0, stops(data, 0, 1)), (1, stops(data, 2))]
    for bad in (2, -1):
        bad_plan = [plan[0], (bad, plan[1][1])]
        violations, _, _ = check_routes(data, bad_plan)
        assert f"vehicle {bad} does not exist" in violations[0], violations
    assert check_routes(data, plan)[0] == []


def test_a_vehicle_used_by_two_routes_is_reported() -> None:
    data = line()
    violations, _, _ = check_routes(data, [(0, stops(data, 0, 1)), (0, stops(data, 2))])
    only(violations, "vehicle 0 is used by more than one route")
    assert check_routes(data, [(0, stops(data, 0, 1)), (1, stops(data, 2))])[0] == []


@pytest.mark.parametrize(
    "where",
    [
        "depot",
        "negative",
        "beyond the last location",
    ],
)  # fmt: skip
def test_a_visit_that_is_not_a_stop_or_disposal_site_is_reported(where: str) -> None:
    data = line()
    bad = {"depot": 0, "beyond the last location": data.num_locations, "negative": -1}[where]
    violations, _, _ = check_routes(
        data, [(0, [*stops(data, 0), bad, *stops(data, 1)]), (1, stops(data, 2))]
    )
    only(violations, f"visit {bad} is not a stop or disposal site")


def test_a_stop_visited_twice_is_reported() -> None:
    data = line()
    violations, _, _ = check_routes(data, [(0, stops(data, 0, 1)), (1, stops(data, 2, 0))])
    only(violations, "stop 0 is visited 2 times")


def test_a_required_stop_left_out_is_reported_an_optional_one_costs_its_prize() -> None:
    data = line(optional={2: 5000.0})
    violations, _, _ = check_routes(data, [(0, stops(data, 0))])
    only(violations, "required stop 1 is not visited")
    # Stop 2 is optional: leaving it out is allowed and costs its prize.
    violations, cost, _ = check_routes(data, [(0, stops(data, 0, 1))])
    assert violations == [] and cost == pytest.approx(400 + 5000)
    violations, cost, _ = check_routes(data, [(0, stops(data, 0, 1)), (1, stops(data, 2))])
    assert violations == [] and cost == pytest.approx(400 + 200)


# ---------------------------------------------------------------- per truck


def test_capacity_is_checked_per_compartment() -> None:
    data = line(demand=[4.0, 2.0], streams=("residual", "glass"), capacity=[20.0, 5.0])
    violations, _, _ = check_routes(data, [(0, stops(data, 0, 1, 2))])
    only(violations, "compartment 'glass' holds 6 > capacity 5 after stop 2")
    violations, _, _ = check_routes(data, [(0, stops(data, 0, 1)), (1, stops(data, 2))])
    assert violations == []


def test_a_disposal_visit_empties_only_the_streams_its_site_accepts() -> None:
    data = line(
        demand=[4.0, 2.0], streams=("residual", "glass"), capacity=[10.0, 5.0],
        sites=((150.0, (0,)), (-150.0, (1,))),
    )  # fmt: skip
    residual_site, glass_site = data.disposal_location(0), data.disposal_location(1)
    # Residual is unloaded after two stops, but glass (2 + 2 + 2) only at the end: too much.
    plan = [(0, [*stops(data, 0, 1), residual_site, *stops(data, 2), residual_site, glass_site])]
    violations, _, reports = check_routes(data, plan)
    only(violations, "compartment 'glass' holds 6 > capacity 5 after stop 2")
    assert reports[0].trip_loads[0] == (8.0, 4.0)
    # Both unloaded mid-route: fine.
    plan = [(0, [*stops(data, 0, 1), residual_site, glass_site, *stops(data, 2),
                 residual_site, glass_site])]  # fmt: skip
    assert check_routes(data, plan)[0] == []


def test_with_disposal_sites_a_truck_must_return_empty() -> None:
    data = line(sites=((300.0, (0,)),))
    site = data.disposal_location(0)
    violations, _, _ = check_routes(data, [(0, stops(data, 0, 1, 2))])
    only(violations, "returns to the depot with load [3.0]")
    assert check_routes(data, [(0, [*stops(data, 0, 1, 2), site])])[0] == []


def test_max_reloads_counts_every_disposal_visit() -> None:
    data = line(sites=((300.0, (0,)),), capacity=2.0, max_reloads=1)
    site = data.disposal_location(0)
    plan = [(0, [*stops(data, 0, 1), site, *stops(data, 2), site])]
    violations, _, _ = check_routes(data, plan)
    only(violations, "2 disposal visits > max_reloads 1")
    # The same route is fine for a truck allowed two.
    data2 = line(sites=((300.0, (0,)),), capacity=2.0, max_reloads=2)
    assert check_routes(data2, plan)[0] == []


def test_num_reloads_counts_the_disposal_visits() -> None:
    data = line(sites=((300.0, (0,)),), capacity=2.0)
    site = data.disposal_location(0)
    rep = simulate_route(data, 0, [*stops(data, 0, 1), site, *stops(data, 2), site])
    assert rep.num_reloads == 2


def test_the_shift_covers_driving_waiting_service_and_unloading() -> None:
    # 0 -> 100 -> 200 -> site at 300 -> 0: 600 s driving, 2 x 30 s service, 100 s unloading,
    # and a wait at stop 1 until 500 s (it opens then; the truck is there at 230 s).
    kw = {"stops": (100.0, 200.0), "sites": ((300.0, (0,)),), "service_s": 30.0,
          "unload_s": 100.0, "windows": {1: (500.0, INF)}}
    data = line(**kw, shift_duration_s=500 + 30 + 100 + 300 + 100)  # type: ignore[arg-type]
    route = [*stops(data, 0, 1), data.disposal_location(0)]
    rep = simulate_route(data, 0, route)
    assert rep.service_start_s == pytest.approx((100, 500, 630))
    assert rep.duration_s == pytest.approx(1030)
    assert rep.violations == ()
    tight = line(**kw, shift_duration_s=1029)  # type: ignore[arg-type]
    violations, _, _ = check_routes(tight, [(0, route)])
    only(violations, "shift lasts 1030.0 s > shift_duration_s 1029.0")


def test_the_shift_starts_at_the_trucks_start_time() -> None:
    data = line(stops=(100.0,), windows={0: (0.0, 1100.0)}, shift_start_s=1000.0)
    rep = simulate_route(data, 0, stops(data, 0))
    assert (rep.start_s, rep.service_start_s, rep.end_s) == (1000.0, (1100.0,), 1200.0)
    late = line(stops=(100.0,), windows={0: (0.0, 1099.0)}, shift_start_s=1000.0)
    only(check_routes(late, [(0, stops(late, 0))])[0], "after its window closes at 1099.0 s")


def test_time_windows_wait_when_early_and_fail_when_late() -> None:
    data = line(windows={0: (300.0, 400.0), 1: (0.0, 350.0)})
    # Stop 0 first: wait until 300, then stop 1 at 400 > 350.
    violations, _, reports = check_routes(data, [(0, stops(data, 0, 1)), (1, stops(data, 2))])
    only(violations, "stop 1 served at 400.0 s, after its window closes at 350.0 s")
    assert reports[0].service_start_s == pytest.approx((300, 400))
    # Stop 1 first (at 200), then back to stop 0 at 300: both in time.
    violations, _, reports = check_routes(data, [(0, stops(data, 1, 0)), (1, stops(data, 2))])
    assert violations == []
    assert reports[0].service_start_s == pytest.approx((200, 300))


def test_route_cost_is_distance_duration_and_fixed_cost_an_idle_truck_costs_nothing() -> None:
    data = line(stops=(100.0,), windows={0: (500.0, INF)}, cost_per_h=3600.0, fixed_cost=70.0)
    rep = simulate_route(data, 0, stops(data, 0))
    # 200 m, on shift 600 s (waiting 400 s at the stop), 1 per s, 70 for using the truck.
    assert rep.cost == pytest.approx(200 + 600 + 70)
    idle = simulate_route(data, 1, [])
    assert (idle.cost, idle.distance, idle.trips) == (0.0, 0.0, ())
    assert check_routes(data, [(0, stops(data, 0)), (1, [])])[1] == pytest.approx(870)


def test_a_slower_truck_takes_longer() -> None:
    m = Model()
    m.add_depot(0, 0)
    m.add_stop(100, 0, demand=1.0, tw_late_s=250.0)
    m.add_vehicle_type(num=1, capacity=5.0, speed_mps=1.0, cost_per_km=1000.0)
    m.add_vehicle_type(num=1, capacity=5.0, speed_mps=0.25, cost_per_km=1000.0)
    data = m.data(detour_factor=1.0)
    assert simulate_route(data, 0, stops(data, 0)).violations == ()
    slow = simulate_route(data, 1, stops(data, 0))
    assert slow.duration_s == pytest.approx(800)
    only(list(slow.violations), "stop 0 served at 400.0 s")


# ---------------------------------------------------------------- the kernel agrees


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kernels_cost_equals_the_checkers_on_rich_instances(seed: int) -> None:
    """Fixed and per-hour costs, windows, two streams, disposal sites, reload limits,
    optional stops: the compiled kernel's own cost of the plan it returns equals the checker's
    (conftest.py checks this after every solve; asserted here too, on instances made to use
    every cost term)."""
    rng = np.random.default_rng(seed)
    m = Model(streams=("residual", "glass"))
    m.add_depot(0, 0)
    for i in range(12):
        x, y = rng.uniform(-2000, 2000, 2)
        early = float(rng.choice([0.0, 1800.0]))
        m.add_stop(x, y, demand=[float(rng.integers(1, 4)), float(rng.integers(0, 3))],
                   service_s=60, tw_early_s=early, tw_late_s=early + 4 * 3600,
                   required=i % 4 != 0, prize=float(rng.uniform(0, 4000)))
    m.add_disposal_site(1500, 0, accepts=[0], unload_s=600)
    m.add_disposal_site(-1500, 0, accepts=[1], unload_s=300)
    m.add_vehicle_type(num=2, capacity=[8.0, 5.0], shift_duration_s=8 * 3600, speed_mps=7.0,
                       cost_per_km=2.0, cost_per_h=40.0, fixed_cost=150.0, max_reloads=6)
    m.add_vehicle_type(num=1, capacity=[12.0, 0.0], shift_duration_s=6 * 3600, speed_mps=5.0,
                       cost_per_km=1.5, cost_per_h=30.0, fixed_cost=90.0, max_reloads=4)
    data = m.data()
    res = solve(data, MaxIterations(40), seed=seed)
    assert res.is_feasible, res.violations
    assert kernel_cost(data, res) == pytest.approx(res.cost, rel=1e-9)
