"""The solver: optimality on tiny instances, feasibility on generated ones, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.cvrplib import read_vrp
from routing.feasibility import check_routes
from routing.model import Model, ProblemData
from routing.solve import solve
from routing.stop import MaxIterations, MaxRuntime


def score(data: ProblemData, vehicle: int, route: tuple[int, ...]) -> float | None:
    """The cost of one truck's route of stops (no disposal sites), or None if it breaks a
    rule: this test's own few lines, independent of routing.feasibility, so brute force does
    not grade the solver with the checker the solver is reported by."""
    if not route:
        return 0.0
    scale = data.duration_scale[vehicle]
    at, t, dist, load = int(data.start_depot[vehicle]), data.shift_start_s[vehicle], 0.0, 0.0
    for i in route:
        here = data.num_depots + i
        dist += data.distance[at, here]
        t = max(t + data.duration_s[at, here] * scale, data.tw_early_s[i])
        if t > data.tw_late_s[i] + 1e-6:
            return None
        t += data.service_s[i]
        load += data.demand[i, 0]
        at = here
    home = int(data.end_depot[vehicle])
    dist += data.distance[at, home]
    t += data.duration_s[at, home] * scale
    shift = t - data.shift_start_s[vehicle]
    if load > data.capacity[vehicle, 0] + 1e-6 or shift > data.shift_duration_s[vehicle] + 1e-6:
        return None
    return (data.distance_cost[vehicle] * dist + data.duration_cost[vehicle] * shift
            + data.fixed_cost[vehicle])  # fmt: skip


def brute_force(data: ProblemData) -> float:
    """Cheapest feasible plan by enumerating every assignment of stops to trucks (or to
    nobody, for optional stops) and every order, scored by ``score``; on the way, the checker
    must agree with ``score`` on every plan's feasibility and cost. Reload visits are not
    enumerated, so only use it on instances without disposal sites (one stream)."""
    assert data.num_disposal == 0 and data.num_streams == 1
    n, v = data.num_stops, data.num_vehicles
    best = np.inf
    choices = [range(v + (0 if data.required[i] else 1)) for i in range(n)]
    for assign in itertools.product(*choices):
        groups = [[i for i in range(n) if assign[i] == k] for k in range(v)]
        if any(groups[k] and not groups[k - 1] for k in range(1, v)
               if np.array_equal(data.capacity[k], data.capacity[k - 1])):
            continue  # identical trucks: only fill them in order
        skipped = sum(data.prize[i] for i in range(n) if assign[i] == v)
        perms = [list(itertools.permutations(g)) for g in groups]
        for combo in itertools.product(*perms):
            costs = [score(data, k, combo[k]) for k in range(v)]
            cost = None if None in costs else sum(costs) + skipped  # type: ignore[arg-type]
            plan = [(k, [data.stop_location(i) for i in combo[k]]) for k in range(v) if combo[k]]
            violations, checker_cost, _ = check_routes(data, plan)
            assert (not violations) == (cost is not None), (plan, violations)
            if cost is not None:
                assert checker_cost == pytest.approx(cost, rel=1e-9)
            if cost is not None and cost < best:
                best = cost
    return best


def test_ok_small_is_solved_to_optimality(ok_small):
    res = solve(ok_small, MaxIterations(50), seed=1)
    assert res.is_feasible
    # one truck each side of the depot: 2 * (0->1->2->0) = 2 * 4
    assert res.cost == pytest.approx(8.0)
    assert sorted(sorted(r) for r in res.customer_routes(ok_small)) == [[1, 2], [3, 4]]


def _tiny_instance(seed: int) -> ProblemData:
    """5 stops, 2 trucks with a shift limit; windows, service times, one optional stop."""
    rng = np.random.default_rng(seed)
    m = Model()
    m.add_depot(0, 0)
    for i in range(5):
        x, y = rng.uniform(-1000, 1000, 2)
        early = float(rng.choice([0, 600]))
        m.add_stop(x, y, demand=float(rng.integers(1, 5)), service_s=60,
                   tw_early_s=early, tw_late_s=early + 3600,
                   required=i != 4, prize=float(rng.uniform(0, 3000)))
    m.add_vehicle_type(num=2, capacity=8, shift_duration_s=3 * 3600, speed_mps=5.0,
                       cost_per_km=1000.0, cost_per_h=100.0)
    return m.data()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tiny_instances_match_brute_force(seed):
    data = _tiny_instance(seed)
    optimum = brute_force(data)
    res = solve(data, MaxIterations(100), seed=seed)
    assert res.is_feasible
    assert res.cost == pytest.approx(optimum, rel=1e-9)


def test_same_seed_same_iterations_same_result(cvrplib_dir):
    data = read_vrp(cvrplib_dir / "X-n101-k25.vrp").to_data()
    a = solve(data, MaxIterations(60), seed=7)
    b = solve(data, MaxIterations(60), seed=7)
    assert [r.visits for r in a.routes] == [r.visits for r in b.routes]
    assert a.cost == b.cost and a.num_iterations == b.num_iterations == 60


def test_cvrp_quality_on_a_n32(cvrplib_dir):
    data = read_vrp(cvrplib_dir / "A-n32-k5.vrp").to_data()
    res = solve(data, MaxIterations(1000), seed=1)
    assert res.is_feasible
    assert res.cost == 784  # the optimum (BKS, proven optimal)


class StepClock:
    """Advances 0.5 s each time it is read: a time budget without real waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def test_time_limit_counts_from_the_call_and_stops(cvrplib_dir):
    data = read_vrp(cvrplib_dir / "E-n51-k5.vrp").to_data()
    clock = StepClock()
    stop = MaxRuntime(3.0, clock=clock)
    res = solve(data, stop, seed=1)
    assert res.is_feasible  # the construction alone is already a feasible plan
    # start() reads the clock once, each check reads it twice: a handful of chunks
    assert 0 < clock.now <= 3.0 + 2 * 0.5 + 0.5 * 4


def test_zero_time_limit_still_returns_the_construction(cvrplib_dir):
    data = read_vrp(cvrplib_dir / "A-n32-k5.vrp").to_data()
    res = solve(data, MaxRuntime(0.0), seed=1)
    assert res.is_feasible and res.num_iterations == 0


def test_too_small_fleet_is_reported_not_hidden(ok_small):
    data = ProblemData(**{**ok_small.__dict__, "capacity": ok_small.capacity[:1],
                          **{k: getattr(ok_small, k)[:1] for k in (
                              "start_depot", "end_depot", "shift_start_s", "shift_duration_s",
                              "duration_scale", "distance_cost", "duration_cost",
                              "fixed_cost", "max_reloads")}})
    res = solve(data, MaxIterations(10), seed=1)
    assert not res.is_feasible
    assert any("holds 20" in v for v in res.violations)


@st.composite
def rich_instances(draw) -> ProblemData:
    """Random small cities where a feasible plan always exists: one truck per stop, and
    each stop alone fits a truck, its window and its shift."""
    n = draw(st.integers(2, 9))
    n_streams = draw(st.integers(1, 2))
    n_sites = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    m = Model(streams=[f"s{k}" for k in range(n_streams)])
    m.add_depot(0, 0)
    cap = rng.uniform(5, 10, n_streams)
    for _ in range(n):
        x, y = rng.uniform(-3000, 3000, 2)
        dem = rng.uniform(0, 1, n_streams) * cap
        early = float(rng.uniform(0, 3600))
        m.add_stop(x, y, demand=dem, service_s=float(rng.uniform(30, 300)),
                   tw_early_s=early, tw_late_s=early + float(rng.uniform(1800, 7200)),
                   required=bool(rng.random() < 0.8), prize=float(rng.uniform(0, 50)))
    for k in range(n_sites):
        x, y = rng.uniform(-3000, 3000, 2)
        accepts = list(range(n_streams)) if k == n_sites - 1 else [0]
        m.add_disposal_site(x, y, accepts=accepts, unload_s=float(rng.uniform(60, 900)))
    m.add_vehicle_type(num=n, capacity=cap, shift_duration_s=8 * 3600, speed_mps=25 / 3.6,
                       cost_per_km=2.0, cost_per_h=40.0, max_reloads=4)
    return m.data()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(rich_instances())
def test_generated_rich_instances_give_feasible_plans(data):
    res = solve(data, MaxIterations(30), seed=3)
    assert res.violations == ()
    seen = [i for r in res.routes for trip in r.trips for i in trip]
    assert len(seen) == len(set(seen))
    required = set(np.flatnonzero(data.required).tolist())
    assert required <= set(seen)
    assert set(res.unvisited) == set(range(data.num_stops)) - set(seen)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_degenerate_sizes(n):
    m = Model()
    m.add_depot(0, 0)
    for i in range(n):
        m.add_stop(100 * (i + 1), 0, demand=1)
    m.add_vehicle_type(num=1, capacity=5, cost_per_km=1.0)
    res = solve(m.data(), MaxIterations(5), seed=1)
    assert res.is_feasible
    assert res.cost == pytest.approx(0.2 * n)  # out and back to the farthest stop [km]
    assert len(res.routes) == (1 if n else 0)
